"""The static markup of each page (``pages.render_page`` wraps it): headings, empty containers
and forms, each key element with an id that its script (and the browser tests) find it by.

No data goes in here: the scripts fill the containers from the API. The functions
(``not_found``, ``token_form``) escape what they are given.
"""

from __future__ import annotations

import html
from collections.abc import Sequence


def _metric(label: str, element_id: str) -> str:
    return (
        f'<div class="metric"><span class="metric-label">{label}</span>'
        f'<span class="metric-value" id="{element_id}">–</span></div>'
    )


def not_found(message: str) -> str:
    return f"""    <section class="card" id="not-found">
      <p class="error-text">{html.escape(message)}</p>
      <p><a href="/">Back to the runs</a></p>
    </section>"""


def token_form(message_html: str, action: str, query: Sequence[tuple[str, str]]) -> str:
    """The token page's body: ``message_html`` is ours (never a client's); ``action`` (a path
    on this server) and ``query`` (the other fields of the address asked for) are escaped."""
    hidden = "".join(
        f'\n        <input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in query
    )
    return f"""    <section class="card" id="token-card">
      <p id="token-message">{message_html}</p>
      <form class="form-row" id="token-form" method="get" action="{html.escape(action)}">
        <label for="token-input">Token</label>
        <input type="password" id="token-input" name="token" required autocomplete="off"
          spellcheck="false" aria-describedby="token-help">{hidden}
        <button type="submit" id="token-submit">Use this token</button>
      </form>
      <p class="muted small" id="token-help">The token is the part after <code>?token=</code> in the
        address <code>sightline serve</code> printed. This browser keeps it in a cookie for this
        server only; no page script can read it.</p>
    </section>"""


RUNS = """    <div class="error-box" id="runs-error" role="alert" hidden></div>
    <p class="muted" id="runs-loading">Loading runs…</p>
    <section class="card empty" id="runs-empty" hidden>
      <h2>No runs yet</h2>
      <p>Train one on the command line, for example <code>sightline train fashion-mnist</code>,
        or start a training job on the <a href="/train">Train page</a>.</p>
      <p class="muted">Runs appear here as soon as they start.</p>
    </section>
    <section class="card" id="runs-card" hidden>
      <div class="toolbar">
        <input type="search" id="runs-filter" placeholder="Filter by name, dataset, model, status" aria-label="Filter runs">
        <button type="button" id="compare-runs" disabled>Compare</button>
        <span class="muted" id="runs-count"></span>
      </div>
      <div class="table-wrap"><table id="runs-table" class="table stack"></table></div>
    </section>
    <section class="card" id="compare-panel" hidden>
      <div class="card-head">
        <h2>Comparison</h2>
        <button type="button" class="secondary" id="compare-close">Close</button>
      </div>
      <div class="charts">
        <div class="chart" id="compare-accuracy"></div>
        <div class="chart" id="compare-loss"></div>
      </div>
    </section>"""

RUN = f"""    <div class="run-head">
      <span id="run-status"></span>
      <span class="muted" id="run-created"></span>
      <a class="muted" id="run-study" hidden></a>
    </div>
    <div class="error-box" id="run-error" role="alert" hidden></div>
    <div class="actions" id="run-actions"></div>
    <section class="card" id="run-summary-card">
      <h2>Summary</h2>
      <div class="metrics" id="run-metrics">
        {_metric("Test accuracy", "metric-test-accuracy")}
        {_metric("Test loss", "metric-test-loss")}
        {_metric("Calibration error", "metric-test-ece")}
        {_metric("Best epoch", "metric-best")}
        {_metric("Epochs", "metric-epochs")}
        {_metric("Model", "metric-model")}
        {_metric("Dataset", "metric-dataset")}
        {_metric("Parameters", "metric-parameters")}
      </div>
      <p class="muted" id="run-classes"></p>
    </section>
    <section class="card" id="curves-card">
      <h2>Training curves</h2>
      <div class="charts">
        <div class="chart" id="chart-loss"></div>
        <div class="chart" id="chart-accuracy"></div>
      </div>
    </section>
    <section class="card" id="per-class-card">
      <h2>Per class (test split)</h2>
      <div id="per-class"></div>
    </section>
    <section class="card" id="confusion-card">
      <h2>Confusion matrix</h2>
      <p class="muted">Rows: the true class; columns: the predicted one. Click a cell to see its test images.</p>
      <div id="confusion"></div>
      <div id="confusion-images"></div>
    </section>
    <section class="card" id="top-losses-card">
      <h2>Largest losses</h2>
      <p class="muted">The test images with the largest loss (the surest mistakes first); click one to inspect it.</p>
      <div id="top-losses"></div>
    </section>
    <section class="card" id="plots-card">
      <h2>Plots</h2>
      <div class="plots" id="run-plots"></div>
    </section>
    <section class="card" id="export-card">
      <h2>Export</h2>
      <p class="muted">Each format is checked beside PyTorch on the run's test images before it is written; INT8 is refused when it keeps under 99 % of PyTorch's answers or loses over 0.5 points of accuracy.</p>
      <div class="checks" id="export-formats"></div>
      <div class="form-row">
        <label for="export-accept-drop">INT8: accept an accuracy drop up to (points)</label>
        <input type="number" id="export-accept-drop" min="0" max="100" step="any" placeholder="0.5">
        <button type="button" id="export-start">Export</button>
      </div>
      <p class="muted" id="export-state" role="status"></p>
      <div class="error-box" id="export-error" role="alert" hidden></div>
      <div id="export-report"></div>
      <div class="actions" id="export-files"></div>
    </section>
    <section class="card" id="model-card">
      <h2>Model</h2>
      <div id="model-summary"></div>
    </section>
    <section class="card" id="config-card">
      <h2>Configuration</h2>
      <pre class="code" id="run-config"></pre>
    </section>"""

CLASSIFY = """    <section class="card">
      <div class="form-row">
        <label for="run-select">Run</label>
        <select id="run-select"></select>
        <a id="run-link" href="/">run details</a>
      </div>
      <label class="drop-zone" id="drop-zone" for="file-input">
        <input type="file" id="file-input" accept="image/*" class="visually-hidden">
        <span class="drop-title">Drop an image here, paste one (Ctrl+V), or click to choose a file</span>
        <span class="muted">PNG, JPEG, GIF, BMP, WebP, TIFF</span>
      </label>
      <div class="toolbar">
        <button type="button" id="random-test" disabled aria-describedby="random-test-why">Random test image</button>
        <span class="muted small" id="random-test-why"></span>
        <span class="muted" id="classify-status"></span>
      </div>
    </section>
    <div class="error-box" id="classify-error" role="alert" hidden></div>
    <section id="inspect-result" hidden>
      <div class="card result-head">
        <div class="figures">
          <figure><img id="original-image" alt="the image given"><figcaption>Original</figcaption></figure>
          <figure><img id="seen-image" alt="what the model sees"><figcaption>What the model sees</figcaption></figure>
          <figure><img id="saliency-image" alt="saliency map"><figcaption id="saliency-caption">Saliency</figcaption></figure>
        </div>
        <div class="prediction">
          <p class="muted" id="result-file"></p>
          <p class="result-line"><span id="result-label"></span> <span class="muted" id="result-confidence"></span></p>
          <p class="muted" id="result-unknown" hidden></p>
          <p id="result-truth" hidden></p>
          <p class="note" id="result-note" hidden></p>
          <div class="bars" id="top-k"></div>
          <p class="muted small" id="top-k-caption"></p>
        </div>
      </div>
      <div class="card">
        <h2>Layer activations</h2>
        <div class="activations" id="activations"></div>
      </div>
    </section>"""

CLASSIFY_MANY = """    <section class="card">
      <form id="many-form">
        <div class="form-row">
          <label for="run-select">Run</label>
          <select id="run-select"></select>
        </div>
        <label class="drop-zone" id="many-drop" for="files-input">
          <input type="file" id="files-input" multiple accept="image/*,.zip,application/zip" class="visually-hidden">
          <span class="drop-title">Drop images, .zip archives or folders here, or click to choose files</span>
          <span class="muted">PNG, JPEG, GIF, BMP, WebP, TIFF; a zip or a folder: all the images in it</span>
        </label>
        <input type="file" id="folder-input" webkitdirectory multiple class="visually-hidden" tabindex="-1" aria-hidden="true">
        <div class="toolbar">
          <button type="button" class="secondary" id="choose-folder">Choose a folder…</button>
          <span class="muted" id="many-picked">No files chosen.</span>
        </div>
        <div class="toolbar">
          <button type="submit" id="classify-many-submit" disabled>Classify</button>
          <button type="button" class="secondary" id="download-csv" disabled>Download CSV</button>
          <button type="button" class="secondary" id="many-reset">Start over</button>
        </div>
      </form>
    </section>
    <div class="error-box" id="many-error" role="alert" hidden></div>
    <p class="summary" id="many-summary" hidden></p>
    <section class="card" id="many-results" hidden>
      <h2>Results</h2>
      <div class="table-wrap"><table class="table stack" id="many-table"></table></div>
    </section>
    <section class="card" id="many-bad" hidden>
      <div class="card-head">
        <h2>Not classified <span class="muted small" id="bad-count"></span></h2>
        <button type="button" class="secondary small" id="bad-clear">Clear this list</button>
      </div>
      <p class="muted">Kept until you clear it or start over, whatever you classify next.</p>
      <div class="table-wrap"><table class="table stack" id="bad-table"></table></div>
    </section>"""

DATASETS = """    <p class="lead">The built-in datasets, and the image folders this server was started with (--data-dir).
      Open one to see its classes, counts and samples.</p>
    <div class="error-box" id="datasets-error" role="alert" hidden></div>
    <h2>Built-in</h2>
    <div class="cards" id="builtin-datasets"><p class="muted">Loading…</p></div>
    <h2>Folders</h2>
    <div class="cards" id="folder-datasets"></div>"""

HEALTH = """    <p class="lead">Check a data folder for what makes a model learn the wrong thing or a test score lie:
      unreadable files, copies (one image under two classes), near copies, test images copied from training, images filed in the wrong class.
      Nothing is deleted: a fix moves a file to another class or into the folder's quarantine, and Undo puts it back.</p>
    <div class="error-box" id="health-error" role="alert" hidden></div>
    <section class="card form">
      <div class="radio-row">
        <label class="field">Folder <select id="health-folder"></select></label>
        <label class="check"><input type="checkbox" id="health-labels" checked> Look for images filed in the wrong class</label>
      </div>
      <div class="button-row">
        <button type="button" id="health-check" disabled>Check</button>
        <button type="button" id="health-apply" class="secondary" disabled title="Check the folder first">Apply the recommended fixes</button>
        <button type="button" id="health-review-start" class="secondary" disabled title="Check the folder first">Review suspects</button>
        <button type="button" id="health-undo" class="secondary" disabled title="No fix to undo">Undo last fix</button>
        <a class="button secondary" id="health-train" href="/train">Train on this folder</a>
      </div>
      <p class="muted" id="health-status" aria-live="polite"></p>
    </section>
    <section class="card" id="health-review" hidden>
      <h2>Review <span id="review-position"></span></h2>
      <div class="review">
        <figure><img id="review-image" alt="the suspect image"><figcaption id="review-caption"></figcaption></figure>
        <div>
          <p id="review-message"></p>
          <div class="button-row">
            <button type="button" id="review-move" class="secondary" title="m">Move to <span id="review-to"></span> (m)</button>
            <select id="review-class" aria-label="class to move to"></select>
            <button type="button" id="review-quarantine" class="secondary" title="q">Quarantine (q)</button>
            <button type="button" id="review-keep" class="secondary" title="k">Keep as it is (k)</button>
            <button type="button" id="review-next" class="secondary" title="n">Next (n)</button>
            <button type="button" id="review-close" class="secondary">Close</button>
          </div>
          <h3>Most alike in each class</h3>
          <div class="neighbours" id="review-neighbours"></div>
        </div>
      </div>
    </section>
    <div id="health-summary"></div>
    <div id="health-groups"></div>
    <section class="card" id="health-kept" hidden>
      <h2>Kept as they are</h2>
      <p class="muted">Findings a person decided are right as they are: not counted above. Revoke one to see it again; Undo takes back the last decision.</p>
      <ul class="findings" id="health-kept-list"></ul>
    </section>"""

JOBS = """    <div class="error-box" id="jobs-error" role="alert" hidden></div>
    <section class="card empty" id="jobs-empty" hidden>
      <p>No training jobs yet: start one on the <a href="/train">Train page</a>.</p>
    </section>
    <section class="card" id="jobs-card" hidden>
      <div class="card-head">
        <p class="muted">Clearing a job forgets it and its log; its run stays on the Runs page.</p>
        <button type="button" class="secondary" id="jobs-clear-ended">Clear ended jobs</button>
      </div>
      <div class="table-wrap"><table class="table" id="jobs-table"></table></div>
    </section>"""

JOB = f"""    <section class="card">
      <div class="metrics">
        {_metric("State", "job-state")}
        {_metric("Epoch", "job-epoch")}
        {_metric("Step", "job-step")}
        {_metric("Loss", "job-loss")}
        {_metric("Accuracy", "job-accuracy")}
        {_metric("Images/s", "job-speed")}
        {_metric("Time left", "job-eta")}
      </div>
      <progress id="job-progress" max="1" value="0"></progress>
      <p class="muted" id="job-what"></p>
      <div class="toolbar">
        <button type="button" class="danger" id="job-stop" hidden>Stop</button>
        <button type="button" id="job-resume" hidden>Resume</button>
        <span class="muted" id="job-connection"></span>
      </div>
    </section>
    <div class="error-box" id="job-error" role="alert" hidden></div>
    <section class="card result" id="job-result" hidden>
      <p id="job-result-text"></p>
      <a class="button" id="job-run-link" href="/">Open the run</a>
    </section>
    <section class="card">
      <h2>Curves</h2>
      <div class="charts">
        <div class="chart" id="job-chart-loss"></div>
        <div class="chart" id="job-chart-accuracy"></div>
      </div>
    </section>
    <section class="card">
      <h2>Log</h2>
      <pre class="log" id="job-log"></pre>
    </section>"""


STUDIES = """    <div class="error-box" id="studies-error" role="alert" hidden></div>
    <section class="card empty" id="studies-empty" hidden>
      <h2>No sweeps yet</h2>
      <p>Start one on the command line, for example
        <code>sightline tune fashion-mnist --recipe fashion-mnist-fast --trials 20 --time 40m</code>:
        every trial is a run, and its study shows here.</p>
    </section>
    <section class="card" id="studies-card" hidden>
      <div class="table-wrap"><table class="table" id="studies-table"></table></div>
    </section>"""

STUDY = f"""    <div class="error-box" id="study-error" role="alert" hidden></div>
    <section class="card">
      <div class="metrics">
        {_metric("Trials", "study-trials")}
        {_metric("Best validation accuracy", "study-best")}
        {_metric("Best trial", "study-best-trial")}
        {_metric("Model", "study-model")}
        {_metric("Data", "study-data")}
      </div>
      <p class="muted" id="study-best-params"></p>
      <p class="muted">Retrain the best on train + validation: <code id="study-retrain"></code></p>
    </section>
    <section class="card" id="study-figures" hidden>
      <h2>Optimisation history and importance</h2>
      <div class="study-figures" id="study-figure-list"></div>
    </section>
    <section class="card">
      <h2>Trials</h2>
      <div class="table-wrap"><table class="table stack" id="study-table"></table></div>
    </section>"""
