"""``Run``: a run folder opened, the unit a user sees. Every face reads runs through it.

Its files are named in ``sightline.run.layout`` (``Run.files``).

Run ids from callers (a web client, a config file) are names under the runs folder:
``load_run`` never leaves it. A ``pathlib.Path`` is a folder the program itself chose (the CLI
passes the folders its user typed) and is opened where it is.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sightline.errors import PathRefusedError, RunError, RunNotFoundError
from sightline.fileio import file_sha256, inside, open_inside, read_json_inside
from sightline.run import evaluations as store
from sightline.run.folders import (
    training_process_gone,
)
from sightline.run.layout import CHECKPOINTS, CONFIG, RunLayout

ENDED = ("finished", "early_stopped", "max_steps")  # a run in one of these states can't resume


class Run:
    """A training run on disk. ``sightline.load_run(name)`` returns one; so does ``fit``.

    >>> run = sightline.load_run("fashion-mnist-airnet-20261122-101500")
    >>> run.history[-1]["val_accuracy"]
    >>> metrics = run.evaluate()          # test split of the data it was trained on
    >>> probs = run.predict(["boot.jpg"])  # same preprocessing as in training

    ``Run(path)`` opens any folder. With ``strict=False`` a damaged folder still opens, with
    ``problem`` saying what is wrong (listings show it as broken instead of failing).
    ``root``: the runs folder it was found in; a run folder there that is a symbolic link is
    refused (nothing is read through it). Inside a run folder no link is ever followed
    (``fileio.inside``): a file that is one is refused (``folders.link_entries`` names them).
    """

    def __init__(
        self, path: str | os.PathLike, *, strict: bool = True, root: str | os.PathLike | None = None
    ) -> None:
        self.path = Path(path)
        self.problem: str | None = None
        self.config: dict[str, Any] = {}
        self._models: dict[tuple[str, str], Any] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self.data = None  # the in-memory Dataset, when this Run came from fit() in this process
        self.last_evaluation: dict[str, Any] = {}  # the record of this object's latest evaluate()
        try:
            if root is not None:
                inside(root, self.path)
            if not self.path.is_dir():
                raise RunNotFoundError(f"run folder not found: {self.path.resolve()}")
            if not os.path.lexists(self.files.config):
                raise RunError(
                    f"{self.path.resolve()} is not a sightline run folder (no config.json)"
                )
            try:
                self.config = read_json_inside(self.path, CONFIG)
            except PathRefusedError as e:
                raise RunError(str(e)) from None
            except (OSError, ValueError) as e:
                raise RunError(
                    f"{self.path.resolve() / 'config.json'} is unreadable ({e})"
                ) from None
            if not isinstance(self.config, dict) or not {"model", "data", "train"} <= set(
                self.config
            ):
                raise RunError(f"{self.path.resolve() / 'config.json'} is not a run configuration")
        except (RunError, PathRefusedError) as e:
            if strict:
                raise
            self.problem, self.config = str(e), {}

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, status={self.status.get('status')!r})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def files(self) -> RunLayout:
        """The paths of this run's files (``sightline.run.layout``)."""
        return RunLayout(self.path)

    @property
    def status(self) -> dict[str, Any]:
        if self.problem:
            return {"status": "broken", "error": self.problem}
        p = self.files.status
        try:
            status = read_json_inside(self.path, p) if os.path.lexists(p) else {"status": "created"}
        except PathRefusedError as e:  # a link: refused, never read
            return {"status": "broken", "error": str(e)}
        except (OSError, ValueError) as e:
            return {"status": "broken", "error": f"{p.resolve()} is unreadable ({e})"}
        process = status.pop("process", None)  # never shown: a pid is this machine's business
        if status.get("status") == "running" and training_process_gone(process):
            # Its trainer was killed (kill -9, a crash, a reboot): not "running" forever.
            status.update(status="interrupted", note="its training process is gone; resume it")
        return status

    @property
    def tracking(self) -> dict[str, dict[str, Any]]:
        """Where ``--track`` logs this run too, by tracker (``run/tracking.py``); {} if none."""
        from sightline.run.tracking import read_tracking

        return read_tracking(self.path)

    @property
    def study(self) -> dict[str, Any] | None:
        """The sweep this run is a trial of (name, trial number); None for a run of its own."""
        from sightline.run.tracking import study_of

        return study_of(self.tracking)

    @property
    def history(self) -> list[dict[str, Any]]:
        """Per-epoch metrics as dicts (numbers as floats, missing values as None).
        ``LinkRefusedError`` when metrics.csv is a symbolic link (never read through)."""
        p = self.files.metrics
        if not os.path.lexists(p):
            return []
        rows = []
        with open_inside(self.path, p, "r", newline="") as f:
            for raw in csv.DictReader(f):
                rows.append({k: _cell(k, v) for k, v in raw.items()})
        return rows

    # ------------------------------------------------------------------ model files
    def model_file(self, which: str = "best") -> Path:
        """The model file of checkpoint ``which`` (best falls back to last before there is a best);
        ``LinkRefusedError`` when it is a symbolic link."""
        if which not in CHECKPOINTS:
            raise RunError(f"checkpoint must be 'best' or 'last', not {which!r}")
        for p in (self.files.model(w) for w in dict.fromkeys((which, "last"))):
            if os.path.lexists(p):
                return inside(self.path, p)  # a link is refused, not skipped for the next
        raise RunError(
            f"{self.path.resolve()} has no saved model yet (training never finished an epoch)"
        )

    def load_model(self, which: str = "best", device: Any = "cpu"):
        """The trained model, in eval mode (cached per checkpoint and device)."""
        from sightline.run import checkpoint as ckpt

        key = (which, str(device))
        if key not in self._models:
            self._models[key] = ckpt.load_model(self.model_file(which), device)
            self._meta.setdefault(
                which, self._models[key][1]
            )  # just read: classes need no second read
        return self._models[key][0]

    def inference_model(
        self,
        which: str = "best",
        device: Any = "cpu",
        images: int | None = None,
        backbone_engine: bool = True,
        note: Any = None,
    ):
        """The trained model for forward passes only (``evaluate``, ``predict*``, the server):
        ``inference.inference_copy`` of ``load_model``'s (BatchNorms folded where the model can;
        with ``backbone_engine``, a pretrained backbone in ONNX Runtime where that is faster here
        and its export exists, or is worth making for ``images`` images), cached per checkpoint,
        device and engine. ``note`` hears the backbone's engine. Hooks, training and export take
        ``load_model``'s."""
        from sightline.infer.backbone import EXPORT_PAYS
        from sightline.infer.batched import inference_copy

        pays = backbone_engine and images is not None and images >= EXPORT_PAYS
        key = ("inference", which, str(device), backbone_engine, pays)
        if key not in self._models:
            model = self.load_model(which, device)
            pre = self.preprocess if backbone_engine else None
            copy = inference_copy(model, pre, device, images if pays else None, note)
            self._models[key] = (copy, None)
        return self._models[key][0]

    def predictor(
        self,
        which: str = "best",
        engine: str = "auto",
        device: Any = "auto",
        images: int | None = None,
        needs_score: bool = True,
    ):
        """The ``Predictor`` every face predicts with (``sightline.run.predictor``: the engine
        chosen once, by one rule; ``engine``: ``sightline.run.ENGINES``). ``images``: how many
        images the caller will pass, if known; ``needs_score``: False when the "none of these"
        answer is never asked for. Kept for the next call (a run trained on since: load it again)."""
        from sightline.infer.backbone import EXPORT_PAYS
        from sightline.run.predictor import open_predictor

        pays = images is not None and images >= EXPORT_PAYS
        key = ("predictor", which, engine, str(device), pays, needs_score)
        if key not in self._models:
            self._models[key] = (
                open_predictor(self, which, engine, device, images, needs_score),
                None,
            )
        return self._models[key][0]

    def metadata(self, which: str = "best") -> dict[str, Any]:
        """The model file's metadata (architecture, classes, preprocessing), read once."""
        from sightline.run import checkpoint as ckpt

        if which not in self._meta:
            self._meta[which] = ckpt.read_model_file(self.model_file(which))[1]
        return self._meta[which]

    def calibrator(self, which: str = "best"):
        """The ``Calibrator`` the model's logits go through (the identity: not calibrated)."""
        from sightline.run.checkpoint import calibrator_in

        return calibrator_in(self.metadata(which))

    def calibrate(self, data=None, which: str = "best", device: str = "auto") -> dict[str, Any]:
        """Fit the calibrator on the validation split of ``data`` (default: the run's own
        dataset) and save it in the model file: every face reports calibrated probabilities
        from then on (``sightline.run.calibrate``). Returns the record saved."""
        from sightline.run.calibrate import calibrate_run

        record = calibrate_run(self, data, which, device)
        self._models.clear()  # loaded models and metadata are of the file as it was
        self._meta.clear()
        return record

    @property
    def classes(self) -> list[str]:
        return self.metadata()["classes"]

    @property
    def preprocess(self):
        from sightline.data.preprocess import Preprocess

        return Preprocess.from_dict(self.metadata()["preprocess"])

    # ------------------------------------------------------------------ evaluations
    @property
    def evaluation(self) -> dict[str, Any] | None:
        """The run's own test result (test split, best checkpoint), or None."""
        return store.read_test_evaluation(self.path)

    def evaluations(self) -> dict[str, dict[str, Any]]:
        """Every saved evaluation, by source key (``test``, ``val``, ``folder-…``)."""
        return store.list_evaluations(self.path)

    def load_data(self, **overrides: Any):
        """The dataset this run was trained on, loaded again with the same options."""
        from sightline.data import load_dataset

        if self.data is not None and not overrides:
            return self.data
        opts = {**self.config["data"], **{k: v for k, v in overrides.items() if v is not None}}
        if opts.pop("in_memory", False):
            raise RunError(
                f"run {self.name} was trained on an in-memory Dataset ({opts.get('name_or_path')!r}) that "
                "sightline cannot load again: pass it, e.g. run.evaluate(data=...) or write_report(run, data=...)"
            )
        source = opts.pop("name_or_path")
        return load_dataset(source, **opts)

    def evaluate(
        self,
        data=None,
        split: str = "test",
        which: str = "best",
        device: str = "auto",
        batch_size: int = 1000,
        save: bool = True,
        logits=None,
    ):
        """Metrics on a split of ``data`` (default: the run's own dataset) → ``Metrics``.

        ``data`` may be a ``Dataset``, a dataset name or an image folder (its ``split`` when it
        has train/val/test subfolders, else all of it), or an ``ImageSet`` (never saved: it does
        not say where it came from). Each source is saved under its own name in
        ``evaluations/`` with what was evaluated, so another source never replaces the run's
        test result. ``logits``: the model's logits for those images, computed elsewhere (by the
        ranks of a torchrun job, each on its share).
        """
        from sightline.run.evaluate import evaluate_run

        return evaluate_run(self, data, split, which, device, batch_size, save, logits)

    def saved_results(self, split: str = "test", which: str = "best"):
        """``Metrics`` of the run's own ``split`` from its saved evaluation, when that is of the
        current model file; else None. Needs neither the data nor a forward pass."""
        from sightline.infer.metrics import compute_metrics

        key = store.source_key("split", split, which)
        record = store.read_evaluation(self.path, key)
        saved = store.load_logits(self.path, key) if record else None
        if saved is None or record.get("model_sha256") != file_sha256(self.model_file(which)):
            return None
        return compute_metrics(saved[0], saved[1], self.classes, calibrator=self.calibrator(which))

    def split_results(
        self, split: str = "test", which: str = "best", data=None, device: str = "auto"
    ):
        """(metrics, images) of the run's own ``split``: the saved evaluation when it is of the
        current model file and these images (no forward pass), else a fresh one, saved."""
        data = data if data is not None else self.load_data()
        splits = data.splits()
        if split not in splits:
            raise RunError(f"the run's data has no {split!r} split; it has: {', '.join(splits)}")
        images = splits[split]
        saved = self.saved_results(split, which)
        if (
            saved is not None
            and saved.count == len(images)
            and bool((saved.labels == images.labels.cpu()).all())
        ):
            return saved, images
        return self.evaluate(data, split=split, which=which, device=device), images

    # ------------------------------------------------------------------ prediction
    def predict(self, images, which: str = "best", device: str = "auto", engine: str = "auto"):
        """Class probabilities (N, K) for images: paths, bytes, file objects, PIL images,
        arrays or a uint8 tensor, prepared with the run's own preprocessing."""
        many = isinstance(images, (list, tuple)) or getattr(images, "ndim", 0) == 4
        return self.predictor(which, engine, device, len(images) if many else 1).probabilities(
            images
        )

    def export(
        self,
        formats: str | Sequence[str] = "onnx",
        which: str = "best",
        accept_drop: float | None = None,
        **kwargs: Any,
    ):
        """This run's model in ``formats`` (``sightline.run.EXPORT_FORMATS``; ``run/exports.py``,
        which also takes ``images`` and ``calibration``), each checked against PyTorch on the
        test split and reported in ``export/report.json``. The predictors kept are dropped: the
        engine is chosen again with the new exports."""
        from sightline.run.exports import export

        report = export(self, formats, which, accept_drop, **kwargs)
        self._models = {k: v for k, v in self._models.items() if k[0] != "predictor"}
        return report

    def predict_files(
        self,
        inputs: list[str],
        top_k: int = 3,
        which: str = "best",
        device: str = "auto",
        keep_seen: bool = False,
        unknown: Any = "auto",
        engine: str = "auto",
    ):
        """Files, folders or globs → ``PredictionReport`` (bad files skipped and listed).
        ``unknown``: "auto" answers "unknown" for an image unlike the training data (the
        closest class still given), "off" never, a number is a threshold of one's own.
        ``keep_seen``: each prediction keeps what the model saw (``Prediction.seen``; write them
        with ``sightline.infer.predict.save_seen``); for one image, ``run.preprocess.prepare_image``."""
        predictor = self.predictor(which, engine, device, needs_score=unknown != "off")
        return predictor.predict_files(inputs, top_k, keep_seen, unknown)

    def predict_images(
        self,
        images: list[tuple[str, Any]],
        top_k: int = 3,
        which: str = "best",
        device: str = "auto",
        keep_seen: bool = False,
        unknown: Any = "auto",
        engine: str = "auto",
    ):
        """(name, image) pairs — bytes of uploads, file objects, PIL images… — → ``PredictionReport``
        naming each by its name (bad images skipped with their reason, the rest classified).
        ``keep_seen``, ``unknown``: as for ``predict_files``."""
        predictor = self.predictor(which, engine, device, len(images), unknown != "off")
        return predictor.predict_images(images, top_k, keep_seen, unknown)

    def summary(self):
        from sightline.models.summary import summary

        return summary(self.load_model())

    # ------------------------------------------------------------------ listing
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary for listings (the CLI's ``runs`` and the web UI)."""
        from sightline.run.summary import run_summary

        return run_summary(self)


def _cell(key: str, v: str | None) -> Any:
    if v in ("", None):
        return None
    if v in ("True", "False"):
        return v == "True"
    return int(v) if key == "epoch" else float(v)
