"""The Train page's markup (/train; ``static/train.js`` fills it) and the names its fields go by.

``FIELD_LABELS`` is the one mapping from a ``sightline train`` option to the Train form's field
that sets it. The form's labels are made from it, and every page that shows text written for the
command line (a plan's notes, a job's messages and errors) gets it as ``data-option-labels``, so
``static/words.js`` writes "--pretrained" as the field the user sees: “Start from pretrained
(ImageNet) weights”. An option the form lacks reads as "the <name> option".

Kept apart from ``bodies.py`` (the same rules: ids its script and the browser tests find, no data).
"""

from __future__ import annotations

import html
import json
from typing import Any

from sightline.plan import DataOptions, TrainConfig, declared_option

# ``sightline train`` option (its flag without the dashes; a checkbox by the name its --no- flag
# negates: --no-eval unchecks "eval") → the Train form's label for it.
FIELD_LABELS: dict[str, str] = {
    "recipe": "Recipe",
    "model": "Model",
    "pretrained": "Start from pretrained (ImageNet) weights",
    "classes": "Classes",
    "epochs": "Epochs",
    "batch-size": "Batch size",
    "lr": "Learning rate",
    "patience": "Early-stopping patience",
    "optimizer": "Optimizer",
    "weight-decay": "Weight decay",
    "seed": "Seed",
    "balance": "Loss for imbalanced classes",
    "augment": "Augmentation policy",
    "mixup": "Mixup strength",
    "cutmix": "Cutmix strength",
    "track": "Experiment tracker",
    "val-split": "Validation split",
    "calibration-split": "Calibration split",
    "name": "Run name",
    "eval": "Evaluate on the test split",
    "report": "Write plots and the report",
    "channels": "Channels",
    "size": "Input size",
    "resize": "Resize",
}


def _label(option: str) -> str:
    return html.escape(FIELD_LABELS[option])


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _bounds(cls: type, name: str) -> str:
    """A number field's min and max, from its option's declaration (hints for the browser's
    spinner: the server's check answers, open bounds and all, with the option's message)."""
    spec = declared_option(cls, name).spec
    pairs = (("min", spec.low), ("max", spec.high))
    return "".join(f' {attr}="{_num(v)}"' for attr, v in pairs if v is not None)


def _choices(cls: type, name: str, shown: dict[Any, str] | None = None) -> str:
    """A select's options: the option's declared choices, each shown as ``shown`` says."""
    return "".join(
        f'<option value="{html.escape(str(c))}">{html.escape((shown or {}).get(c, str(c)))}</option>'
        for c in declared_option(cls, name).spec.choices
    )


def _help(cls: type, name: str, field: str) -> str:
    """A field's help: its option's, as every face shows it (``static/words.js`` writes the
    flags it names as the fields' labels)."""
    text = html.escape(declared_option(cls, name).spec.help)
    return f'<p class="muted" data-cli-text>{_label(field)}: {text}</p>'


def option_labels() -> dict[str, str]:
    """``render_page``'s ``data`` for a page whose script shows text written for the command
    line: ``data-option-labels`` (read by ``static/words.js``)."""
    return {"option-labels": json.dumps(FIELD_LABELS, ensure_ascii=False)}


TRAIN = f"""    <form class="card form" id="train-form" novalidate>
      <fieldset>
        <legend>Data</legend>
        <div class="radio-row">
          <label class="check"><input type="radio" name="source" value="builtin" id="source-builtin" checked> Built-in dataset</label>
          <label class="check"><input type="radio" name="source" value="folder" id="source-folder" aria-describedby="source-folder-why"> Folder (--data-dir)</label>
        </div>
        <p class="muted small" id="source-folder-why" hidden>No image folder to train on: start the server with <code>--data-dir FOLDER</code> (one subfolder per class).</p>
        <label class="field" id="dataset-field">Dataset <select id="train-dataset"></select></label>
        <label class="field" id="folder-field" hidden>Folder <select id="train-folder"></select></label>
        <label class="field" id="labels-field" hidden>Labels <select id="train-labels"></select></label>
        <div class="field">
          <span class="field-label">{_label("classes")} <span class="muted">(none checked: all of them)</span></span>
          <div class="checks" id="train-classes"></div>
        </div>
      </fieldset>
      <fieldset>
        <legend>Model</legend>
        <label class="field">{_label("recipe")} <select id="train-recipe"><option value="">none: choose the model and options</option></select></label>
        <p class="muted" id="recipe-description"></p>
        <label class="field">{_label("model")} <select id="train-model"></select></label>
        <label class="field" id="model-other-field" hidden>timm model <input type="text" id="train-model-other" maxlength="200" autocomplete="off" spellcheck="false" placeholder="e.g. convnext_nano or timm:resnet50.a1_in1k"></label>
        <p class="muted" id="model-description"></p>
        <label class="check"><input type="checkbox" id="train-pretrained" disabled aria-describedby="pretrained-why"> {_label("pretrained")}</label>
        <p class="muted small" id="pretrained-why"></p>
      </fieldset>
      <fieldset>
        <legend>Training</legend>
        <div class="form-grid">
          <label class="field">{_label("epochs")} <input type="number" id="train-epochs"{_bounds(TrainConfig, "epochs")} step="1"></label>
          <label class="field">{_label("batch-size")} <input type="number" id="train-batch-size"{_bounds(TrainConfig, "batch_size")} step="1"></label>
          <label class="field">{_label("lr")} <input type="number" id="train-lr"{_bounds(TrainConfig, "lr")} step="any"></label>
          <label class="field">{_label("patience")} <input type="number" id="train-patience"{_bounds(TrainConfig, "patience")} step="1" placeholder="off"></label>
        </div>
        <p class="muted">Filled with what this job would train with: the model's defaults and, for a folder, its recipe.
          Only the fields you change are sent.</p>
        <p class="muted" id="train-plan" aria-live="polite"></p>
        <p class="note" id="train-steps-warning" role="status" hidden></p>
        <ul class="muted small" id="train-plan-notes"></ul>
      </fieldset>
      <details id="train-advanced">
        <summary>Advanced</summary>
        <div class="form-grid">
          <label class="field">{_label("optimizer")} <select id="train-optimizer">{_choices(TrainConfig, "optimizer")}</select></label>
          <label class="field">{_label("weight-decay")} <input type="number" id="train-weight-decay"{_bounds(TrainConfig, "weight_decay")} step="any"></label>
          <label class="field">{_label("seed")} <input type="number" id="train-seed"{_bounds(TrainConfig, "seed")} step="1"></label>
          <label class="field">{_label("balance")} <select id="train-balance"><option value="true">on: predict as if balanced</option><option value="false">off: the plain loss</option></select></label>
          <label class="field">{_label("augment")} <select id="train-augment">{_choices(TrainConfig, "augment")}</select></label>
          <label class="field">{_label("mixup")} <input type="number" id="train-mixup"{_bounds(TrainConfig, "mixup")} step="any"></label>
          <label class="field">{_label("cutmix")} <input type="number" id="train-cutmix"{_bounds(TrainConfig, "cutmix")} step="any"></label>
          <label class="field">{_label("track")} <select id="train-track"><option value="">none</option>{_choices(TrainConfig, "track", {"tensorboard": "TensorBoard (events in the run)", "mlflow": "MLflow (the server's store)"})}</select></label>
          <label class="field">{_label("val-split")} <input type="text" id="train-val-split" placeholder="default" inputmode="decimal"></label>
          <label class="field">{_label("calibration-split")} <input type="number" id="train-calibration-split"{_bounds(DataOptions, "calibration_split")} step="any" placeholder="none"></label>
          <label class="field">{_label("name")} <input type="text" id="train-name" placeholder="dataset-model-time" pattern="[A-Za-z0-9_][A-Za-z0-9._\\-]*"></label>
        </div>
        {_help(TrainConfig, "balance", "balance")}
        {_help(TrainConfig, "augment", "augment")}
        {_help(TrainConfig, "mixup", "mixup")}
        {_help(TrainConfig, "cutmix", "cutmix")}
        {_help(TrainConfig, "track", "track")}
        {_help(DataOptions, "val_split", "val-split")}
        {_help(DataOptions, "calibration_split", "calibration-split")}
        <div class="radio-row">
          <label class="check"><input type="checkbox" id="train-evaluate" checked> {_label("eval")}</label>
          <label class="check"><input type="checkbox" id="train-report" checked> {_label("report")}</label>
        </div>
        <div class="form-grid" id="folder-options" hidden>
          <label class="field">{_label("channels")} <select id="train-channels">
            <option value="">detect</option>{_choices(DataOptions, "channels", {1: "1 (gray)", 3: "3 (colour)"})}
          </select></label>
          <label class="field">{_label("size")} <input type="text" id="train-size" placeholder="e.g. 64 or 64x48"></label>
          <label class="field">{_label("resize")} <select id="train-resize">
            <option value="">default</option>{_choices(DataOptions, "resize")}
          </select></label>
        </div>
      </details>
      <div class="error-box" id="train-error" role="alert" hidden></div>
      <div class="toolbar">
        <button type="submit" id="submit-train" disabled>Start training</button>
        <span class="muted" id="train-status"></span>
      </div>
    </form>"""
