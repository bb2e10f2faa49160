"""Run folders: the unit a user sees. Every face reads and writes runs through this module.

```
runs/<name>/
  config.json        how the run was made: model, data options, resolved training config
  metrics.csv        one row per epoch (loss, accuracy, val_loss, val_accuracy, lr, time, ...)
  status.json        running / finished / early_stopped / interrupted, best epoch and value
  best.safetensors   weights of the best epoch, with model + preprocessing metadata inside
  last.safetensors   weights at the last save
  resume.pt          full training state for --resume (tensors only, weights_only load)
  evaluation.json    test metrics (after evaluate), and evaluation.txt, the printed report
```
"""

from __future__ import annotations

import csv
import os
import re
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sightline import checkpoint as ckpt
from sightline.data.preprocess import Preprocess
from sightline.errors import RunError
from sightline.fileio import atomic_write_json, read_json

RUNS_DIR_ENV = "SIGHTLINE_RUNS_DIR"


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_DIR_ENV) or "runs")


def new_run_dir(root: str | os.PathLike | None, name: str) -> Path:
    """A fresh folder ``root/name``; ``name-2``, ``name-3``… if taken."""
    root = Path(root) if root is not None else default_runs_dir()
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "run"
    path, n = root / name, 1
    while path.exists():
        n += 1
        path = root / f"{name}-{n}"
    path.mkdir(parents=True)
    return path


def default_run_name(dataset: str, model: str) -> str:
    return f"{dataset}-{model}-{time.strftime('%Y%m%d-%H%M%S')}"


def write_run_config(path: Path, model_config: dict, data_options: dict, train) -> None:
    from sightline import __version__

    atomic_write_json(path / "config.json", {
        "sightline_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": model_config,
        "data": data_options,
        "train": train.to_dict(),
    })  # fmt: skip


class Run:
    """A training run on disk. ``sightline.load_run(path)`` returns one; so does ``fit``.

    >>> run = sightline.load_run("runs/fashion-mnist-fastcnn")
    >>> run.history[-1]["val_accuracy"]
    >>> metrics = run.evaluate()          # test split of the data it was trained on
    >>> probs = run.predict(["boot.jpg"])  # same preprocessing as in training
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise RunError(f"run folder not found: {self.path}")
        if not (self.path / "config.json").is_file():
            raise RunError(f"{self.path} is not a sightline run folder (no config.json)")
        self.config: dict[str, Any] = read_json(self.path / "config.json")
        self._models: dict[tuple[str, str], tuple[nn.Module, dict]] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self.data = None  # the in-memory Dataset, when this Run came from fit() in this process

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, status={self.status.get('status')!r})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def train_config(self):
        """The resolved ``TrainConfig`` this run was trained with."""
        from sightline.train.config import TrainConfig

        return TrainConfig.from_dict(self.config["train"])

    @property
    def status(self) -> dict[str, Any]:
        p = self.path / "status.json"
        return read_json(p) if p.is_file() else {"status": "created"}

    @property
    def history(self) -> list[dict[str, Any]]:
        """Per-epoch metrics as dicts (numbers as floats, missing values as None)."""
        p = self.path / "metrics.csv"
        if not p.is_file():
            return []
        rows = []
        with open(p, newline="") as f:
            for raw in csv.DictReader(f):
                row: dict[str, Any] = {}
                for k, v in raw.items():
                    if v in ("", None):
                        row[k] = None
                    elif v in ("True", "False"):
                        row[k] = v == "True"
                    else:
                        row[k] = int(v) if k == "epoch" else float(v)
                rows.append(row)
        return rows

    def model_file(self, which: str = "best") -> Path:
        if which not in ("best", "last"):
            raise RunError(f"checkpoint must be 'best' or 'last', not {which!r}")
        p = self.path / f"{which}.safetensors"
        if not p.is_file() and which == "best":
            p = self.path / "last.safetensors"
        if not p.is_file():
            raise RunError(f"{self.path} has no saved model yet (training never finished an epoch)")
        return p

    def load_model(self, which: str = "best", device: str | torch.device = "cpu") -> nn.Module:
        """The trained model, in eval mode (cached per checkpoint and device)."""
        key = (which, str(device))
        if key not in self._models:
            self._models[key] = ckpt.load_model(self.model_file(which), device)
        return self._models[key][0]

    def metadata(self, which: str = "best") -> dict[str, Any]:
        """The model file's metadata (architecture, classes, preprocessing), read once."""
        if which not in self._meta:
            self._meta[which] = ckpt.read_model_file(self.model_file(which))[1]
        return self._meta[which]

    @property
    def classes(self) -> list[str]:
        return self.metadata()["classes"]

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess.from_dict(self.metadata()["preprocess"])

    @property
    def evaluation(self) -> dict[str, Any] | None:
        p = self.path / "evaluation.json"
        return read_json(p) if p.is_file() else None

    # ------------------------------------------------------------------ workflow
    def load_data(self, **overrides: Any):
        """The dataset this run was trained on, loaded again with the same options."""
        from sightline.data import load_dataset

        if self.data is not None and not overrides:
            return self.data
        opts = {**self.config["data"], **{k: v for k, v in overrides.items() if v is not None}}
        source = opts.pop("name_or_path")
        return load_dataset(source, **opts)

    def evaluate(self, data=None, split: str = "test", which: str = "best", device: str = "auto",
                 batch_size: int = 1000, save: bool = True):  # fmt: skip
        """Metrics on a split of ``data`` (default: the run's own dataset) → ``Metrics``.

        ``data`` may be a ``Dataset``, an ``ImageSet``, or a dataset name / folder path.
        Saved to ``evaluation.json`` / ``evaluation.txt`` unless ``save=False``.
        """
        from sightline.data import Dataset, ImageSet
        from sightline.devices import resolve_device
        from sightline.evaluate import evaluate_model

        classes = self.classes
        if data is None:
            data = self.load_data()
        elif isinstance(data, (str, os.PathLike)):
            data, _ = _load_for_eval(data, self, split)
        if isinstance(data, Dataset):
            if data.classes != classes:
                raise RunError(f"the data's classes {data.classes} differ from the model's {classes}")
            splits = data.splits()
            if split not in splits:
                raise RunError(f"the data has no {split!r} split; it has: {', '.join(splits)}")
            images = splits[split]
        elif isinstance(data, ImageSet):
            images = data
        else:
            raise RunError(f"cannot evaluate on a {type(data).__name__}; pass a Dataset, ImageSet, name or folder")
        dev = resolve_device(device)
        model = self.load_model(which, dev)
        metrics = evaluate_model(model, images.images, images.labels, self.preprocess, classes, device=dev, batch_size=batch_size)
        if save:
            atomic_write_json(self.path / "evaluation.json", {"split": split, "checkpoint": which, **metrics.to_dict()})
            (self.path / "evaluation.txt").write_text(metrics.format_table() + "\n")
        return metrics

    def predict(self, images, top_k: int = 3, which: str = "best", device: str = "auto"):
        """Class probabilities (N, K) for images: paths, PIL images, arrays or a uint8 tensor."""
        from sightline.devices import resolve_device
        from sightline.predict import predict_tensor

        dev = resolve_device(device)
        return predict_tensor(self.load_model(which, dev), self.preprocess, images, device=dev)

    def predict_files(self, inputs: list[str], top_k: int = 3, which: str = "best", device: str = "auto"):
        """Files, folders or globs → ``PredictionReport`` (bad files skipped and listed)."""
        from sightline.devices import resolve_device
        from sightline.predict import predict_files

        dev = resolve_device(device)
        return predict_files(self.load_model(which, dev), self.preprocess, self.classes, inputs, top_k=top_k, device=dev)

    def summary(self):
        from sightline.models.summary import summary

        return summary(self.load_model())


def _load_for_eval(source: str | os.PathLike, run: Run, split: str):
    """A dataset name or image folder → the ImageSet to evaluate, labelled in the model's classes.

    A folder is read with the run's own preprocessing; its class subfolders are matched to the
    model's classes by name. A folder with a train/val/test layout contributes its ``split``;
    a plain folder is evaluated whole.
    """
    from sightline.data import ImageSet, load_dataset

    classes = run.classes
    if Path(source).exists():
        pre = run.preprocess
        data = load_dataset(source, channels=pre.channels, size=pre.size, resize=pre.resize, val_split=0)
        part = data.splits().get(split) or data.train
    else:
        data = load_dataset(str(source), classes=run.config["data"].get("classes"), val_split=0)
        if split not in data.splits():
            raise RunError(f"{source} has no {split!r} split; it has: {', '.join(data.splits())}")
        part = data.splits()[split]
    lower = {c.lower(): i for i, c in enumerate(classes)}
    unknown = [c for c in data.classes if c.lower() not in lower]
    if unknown:
        raise RunError(f"{source}: class(es) {', '.join(unknown)} unknown to this model; it knows: {', '.join(classes)}")
    mapping = torch.tensor([lower[c.lower()] for c in data.classes])
    return ImageSet(part.images, mapping[part.labels], part.paths), data.skipped


def load_run(path: str | os.PathLike, runs_dir: str | os.PathLike | None = None) -> Run:
    """Open a run folder, or a run by name under ``runs_dir`` (default ./runs)."""
    p = Path(path)
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    if not p.exists() and not p.is_absolute() and (root / p).is_dir():
        p = root / p
    return Run(p)


def list_runs(root: str | os.PathLike | None = None) -> list[Run]:
    """Runs under ``root`` (default ./runs), newest first."""
    root = Path(root) if root is not None else default_runs_dir()
    if not root.is_dir():
        return []
    runs = [Run(p) for p in root.iterdir() if (p / "config.json").is_file()]
    return sorted(runs, key=lambda r: (r.path / "config.json").stat().st_mtime, reverse=True)


def latest_run(root: str | os.PathLike | None = None) -> Run:
    runs = list_runs(root)
    if not runs:
        raise RunError(f"no runs in {Path(root) if root else default_runs_dir()}: train one with `sightline train`")
    return runs[0]
