"""Checkpoints that never execute code on load, written atomically.

* Model files (``best.safetensors``, ``last.safetensors``) are safetensors: weights and buffers,
  plus the model metadata as JSON inside the file's header — architecture, options, class names
  and the full preprocessing spec. One file is enough to rebuild the model and to prepare any
  image exactly as in training.
* The resume state (``resume.pt``) holds model, optimiser, AMP scaler, every RNG state, the
  position in the epoch, early-stopping state and the metric history. It is read with
  ``torch.load(weights_only=True)``, which only accepts tensors and plain containers.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from sightline.errors import RunError
from sightline.fileio import atomic_write_bytes

META_KEY = "sightline"
FORMAT = "sightline-model/1"


def model_metadata(
    model: nn.Module, classes: list[str], preprocess: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """What a model file needs besides weights. ``model`` must come from ``create_model``."""
    cfg = getattr(model, "sightline_config", None)
    if cfg is None:
        raise RunError(
            "this model was not built by sightline.create_model, so it cannot be saved with its architecture"
        )
    from sightline._version import __version__

    return {
        "format": FORMAT,
        "model": cfg,
        "classes": list(classes),
        "preprocess": preprocess,
        "sightline_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        **extra,
    }


def save_model(path: str | os.PathLike, model: nn.Module, meta: dict[str, Any]) -> None:
    """Atomically write weights + metadata as one safetensors file."""
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    blob = st_save(tensors, metadata={META_KEY: json.dumps(meta)})
    atomic_write_bytes(path, blob)


def read_model_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state_dict, metadata) from a sightline safetensors file; RunError for anything wrong."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"model file not found: {path}")
    try:
        data = path.read_bytes()
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        meta = json.loads(header.get("__metadata__", {}).get(META_KEY, "null"))
    except (SafetensorError, ValueError, OSError, json.JSONDecodeError) as e:
        raise RunError(f"{path}: not a readable safetensors model file ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RunError(
            f"{path}: a safetensors file, but not one written by sightline (no model metadata)"
        )
    return tensors, meta


def build_model(meta: dict[str, Any]) -> nn.Module:
    """Rebuild the architecture described by a model file's metadata (weights not loaded).

    A model trained from pretrained weights is rebuilt with ``pretrained=False``: its saved
    weights replace them anyway, so predicting never needs (or reads) the ImageNet weights."""
    from sightline.models.registry import WEIGHT_OPTIONS, architecture_options, create_model

    m = meta["model"]
    options = dict(m.get("options", {}))
    # Its initial weights are replaced by the saved ones: loading a model never moves the
    # caller's random state (training calibrates its run at the end, with the user's RNG).
    with torch.random.fork_rng(devices=[]):
        model = create_model(
            m["name"], tuple(m["input_shape"]), m["num_classes"], **architecture_options(options)
        )
    # The record still says how the weights began.
    model.sightline_config["options"].update(  # type: ignore[union-attr]
        {k: options[k] for k in WEIGHT_OPTIONS if k in options}
    )
    return model


def load_model(
    path: str | os.PathLike, device: torch.device | str = "cpu", calibrated: bool = True
) -> tuple[nn.Module, dict[str, Any]]:
    """Model (eval mode, on ``device``) and its metadata from a sightline safetensors file.
    ``calibrated``: its logits mapped by the calibrator the file holds, if any (see
    ``sightline.infer.calibration``); False: the network's own logits."""
    tensors, meta = read_model_file(path)
    from sightline.infer.ood import PREFIX, Detector

    detector = Detector.from_file(tensors, meta)
    tensors = {k: v for k, v in tensors.items() if not k.startswith(PREFIX)}
    model = build_model(meta)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise RunError(
            f"{path}: weights don't match the {meta['model']['name']!r} architecture: {e}"
        ) from None
    model = model.to(device).eval()
    if calibrated and meta.get("calibration"):
        from sightline.infer.calibration import set_calibrator

        set_calibrator(model, calibrator_in(meta))
    object.__setattr__(model, "sightline_ood", detector)  # read by infer.ood.detector_of
    return model, meta


def calibrator_in(meta: dict[str, Any]) -> Any:
    """The ``Calibrator`` a model file's metadata holds (the identity: not calibrated)."""
    from sightline.infer.calibration import Calibrator

    return Calibrator.from_dict(meta.get("calibration"))


_KEEP: Any = object()  # set_fitted: leave this part of the file as it is


def set_fitted(path: str | os.PathLike, calibration: Any = _KEEP, detector: Any = _KEEP) -> None:
    """Rewrite a model file, in one atomic replacement, with what was fitted after training:
    ``calibration`` (a record in the metadata) and ``detector`` (an ``infer.ood.Detector``: its
    tensors and its record); None removes one, an omitted one is kept. The weights are kept
    byte for byte."""
    from sightline.infer.ood import PREFIX

    tensors, meta = read_model_file(path)
    if calibration is not _KEEP:
        meta.pop("calibration", None)
        if calibration is not None:
            meta["calibration"] = calibration
    if detector is not _KEEP:
        tensors = {k: v for k, v in tensors.items() if not k.startswith(PREFIX)}
        meta.pop("ood", None)
        if detector is not None:
            tensors.update(detector.tensors())
            meta["ood"] = detector.record()
    atomic_write_bytes(path, st_save(tensors, metadata={META_KEY: json.dumps(meta)}))


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Atomically write the full training state for exact resume."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise RunError(
            f"no resume state at {path}: the run never finished a checkpoint, so start it again"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file to the user
        raise RunError(f"{path}: resume state is unreadable ({type(e).__name__}: {e})") from None
