"""The static markup of the Label page (/datasets/label; ``static/label.js`` fills it), apart
from ``bodies.py`` as the Build page's is: ids its script and the browser tests find, no data."""

from __future__ import annotations

LABEL = """    <p class="lead">Label the images waiting in a folder's <code>unlabelled/</code>, the ones that matter first: the model asks
      about the images it is least sure of, spread over the folder, and suggests a class for each. Every label moves the file into
      its class folder; Undo (<kbd>z</kbd>) puts back the last change. Nothing is deleted: "not any class" keeps an image apart.</p>
    <div class="error-box" id="label-error" role="alert" hidden></div>
    <section class="card form">
      <div class="radio-row">
        <label class="field">Folder <select id="label-folder"></select></label>
      </div>
      <div class="metrics" id="label-facts"></div>
      <div class="button-row">
        <button type="button" id="label-accept" class="secondary" disabled>Label the rest</button>
        <button type="button" id="label-undo" class="secondary" title="z">Undo (z)</button>
        <button type="button" id="label-mode" class="secondary" title="g">Grid (g)</button>
        <a class="button secondary" id="label-train" href="/train">Train on this folder</a>
        <a class="button secondary" id="label-health" href="/datasets/health">Check its health</a>
      </div>
      <p class="muted" id="label-status" aria-live="polite"></p>
      <p id="label-empty" hidden></p>
    </section>
    <section class="card" id="label-one" hidden>
      <div class="review">
        <figure><img id="label-image" class="large" alt="the image to label"><figcaption class="wrap" id="label-caption"></figcaption></figure>
        <div class="label-actions">
          <p id="label-suggestion"></p>
          <div class="button-row" id="label-classes"></div>
          <form class="inline-form" id="label-new-form" novalidate>
            <label class="field">New class <input type="text" id="label-new" maxlength="64" autocomplete="off" placeholder="n: type a name"></label>
            <button type="submit" class="secondary" id="label-new-add">Add and label</button>
          </form>
          <div class="button-row">
            <button type="button" class="secondary" id="label-apart" title="x">Not any class (x)</button>
            <button type="button" class="secondary" id="label-skip" title="s">Skip (s)</button>
          </div>
          <p class="muted small">Keys: <kbd>a</kbd> the suggestion, <kbd>1</kbd>–<kbd>9</kbd> a class, <kbd>n</kbd> new class,
            <kbd>x</kbd> not any class, <kbd>s</kbd> skip, <kbd>z</kbd> undo, <kbd>g</kbd> grid.</p>
        </div>
      </div>
    </section>
    <section class="card" id="label-grid" hidden>
      <h2>A page of suggestions</h2>
      <p class="muted">Ticked: the suggestion is taken. Change a class, untick what you are not sure of, then label them all at once (one Undo).</p>
      <div class="thumbs" id="label-grid-items"></div>
      <div class="button-row"><button type="button" id="label-grid-accept">Label the ticked</button></div>
    </section>
    <section class="card" id="label-unlike" hidden>
      <h2>Unlike anything labelled</h2>
      <p class="muted">A class not made yet, or not any class: label them in a new class, or keep them apart.</p>
      <div class="thumbs" id="label-unlike-items"></div>
    </section>
    <section class="card" id="label-progress" hidden>
      <h2>Estimated accuracy as labels grow</h2>
      <p class="muted" id="label-estimate"></p>
      <div class="chart" id="label-curve"></div>
    </section>"""
