"""A run's ONNX export as a file of the run: where it lives (``<run>/export/<which>.onnx``), and
loading it into ONNX Runtime (``infer/onnx.py``) only while it matches the run's checkpoint, so
a stale export is never used silently. Writing it is ``run/export.py``'s."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch

from sightline.errors import NotExportedError, RunError, SightlineError
from sightline.fileio import (
    atomic_write_json,
    file_sha256,
    inside,
    is_file_inside,
    read_json_inside,
)
from sightline.infer.batched import INFERENCE_PATH
from sightline.infer.engine import EngineChoice, faster_engine
from sightline.infer.onnx import OnnxModel
from sightline.run.layout import RunLayout

# ``run``: a ``sightline.run.Run`` (not imported: Run.predictor calls into here)
Run = Any


def export_path(run: Run, which: str = "best") -> Path:
    """Where ``sightline export`` puts a run's model by default: ``<run>/export/<which>.onnx``."""
    if which not in ("best", "last"):
        raise RunError(f"checkpoint must be 'best' or 'last', not {which!r}")
    return RunLayout(run.path).onnx(which)


def load_exported(
    run: Run, which: str = "best", device: str | torch.device | None = "auto"
) -> OnnxModel:
    """A run's ``export/<which>.onnx``, named after the run. ``NotExportedError`` when there is
    none, or when it was exported from another checkpoint than the run's current one (the run
    trained on since): a stale export is never used silently."""
    path = export_path(run, which)
    again = f"sightline export {run.name}" + ("" if which == "best" else f" --checkpoint {which}")
    inside(run.path, path)  # a symbolic link there is refused, not loaded
    if not path.is_file():
        raise NotExportedError(
            f"run {run.name!r} has no ONNX export ({path}): make one with `{again}`"
        )
    model = OnnxModel.load(path, device, name=run.name)
    if model.metadata.get("source_sha256") != file_sha256(run.model_file(which)):
        raise NotExportedError(
            f"{path} was exported from an older {which} checkpoint of run {run.name!r}: "
            f"export it again with `{again}`"
        )
    return model


def auto_engine(
    run: Run,
    which: str = "best",
    device: str | torch.device | None = "auto",
    needs_score: bool = True,
) -> tuple[OnnxModel | None, EngineChoice | None]:
    """``--engine auto``'s choice for ``run``: (its export, the timing that chose it) when a
    current export predicts faster than PyTorch here; (None, the timing) when PyTorch does;
    (None, None) without ONNX Runtime or a current export. The timing (``infer/engine.py``) is
    kept beside the export, for this export, machine and thread count, so it is measured once.
    ``needs_score``: an export made before exports gave the "none of these" score (logits
    only) is not used for a run that has one: PyTorch, which answers unknown, is chosen."""
    from sightline.devices import resolve_device
    from sightline.infer.onnx import runs_beside_torch

    if not runs_beside_torch(device) or not is_file_inside(run.path, export_path(run, which)):
        return None, None
    dev = resolve_device(device or "auto")
    try:
        model = load_exported(run, which, str(dev))
    except NotExportedError:  # exported from an older checkpoint: PyTorch runs the current one
        return None, None
    if needs_score and model.sightline_ood is None and run.metadata(which).get("ood"):
        reason = "the run's export gives no 'none of these' score (export it again)"
        return None, EngineChoice("torch", {}, reason)
    key = {
        "export_sha256": model.metadata.get("source_sha256"),
        "machine": _machine(),
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "inference_path": INFERENCE_PATH,  # PyTorch's side of the timing as it runs today
    }
    cache = RunLayout(run.path).engine_choice(which)
    try:
        saved = read_json_inside(run.path, cache)
        choice = (
            EngineChoice(saved["engine"], saved["per_image_ms"]) if saved["key"] == key else None
        )
    except (OSError, ValueError, KeyError, TypeError, SightlineError):  # a link: refused
        choice = None
    if choice is None:
        from sightline.infer.batched import batched_logits

        net, pre = run.inference_model(which, dev), run.preprocess
        engines = {"torch": lambda x: batched_logits(net, x, pre, dev), "onnx": model.logits}
        choice = faster_engine(engines, pre.input_shape)
        with contextlib.suppress(OSError):  # a read-only runs folder: measured again next time
            atomic_write_json(cache, {"key": key, **choice.to_dict()}, root=run.path)
    return (model if choice.engine == "onnx" else None), choice


def _machine() -> str:
    """The CPU's model name (the GPU's, on CUDA, is in the device): what the timing holds for."""
    import platform

    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
