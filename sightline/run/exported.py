"""A run's float exports as engines: where each lives (``<run>/export/<which>.onnx``, the
OpenVINO IR, the .tflite), loading one into its runtime only while it matches the run's
checkpoint, so a stale export is never used silently, and ``--engine auto``'s timed choice among
them and PyTorch. Writing them is ``run/exports.py``'s."""

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
from sightline.run.layout import ENGINE_EXPORTS, RunLayout

# ``run``: a ``sightline.run.Run`` (not imported: Run.predictor calls into here)
Run = Any


EXPORT_NAMES = {"onnx": "ONNX", "openvino": "OpenVINO", "litert": "LiteRT"}


def export_path(run: Run, which: str = "best", engine: str = "onnx") -> Path:
    """Where ``sightline export`` puts a run's model for ``engine`` (``ENGINE_EXPORTS``):
    ``<run>/export/<which>.onnx`` by default."""
    if which not in ("best", "last"):
        raise RunError(f"checkpoint must be 'best' or 'last', not {which!r}")
    return ENGINE_EXPORTS[engine](RunLayout(run.path), which)


def load_exported(
    run: Run, which: str = "best", device: str | torch.device | None = "auto", engine: str = "onnx"
) -> OnnxModel:
    """A run's export for ``engine`` (ONNX Runtime, OpenVINO or LiteRT), named after the run.
    ``NotExportedError`` when there is none, or when it was exported from another checkpoint
    than the run's current one (the run trained on since): a stale export is never used
    silently."""
    path = export_path(run, which, engine)
    fmt = engine  # each engine's file is made by the --format of its name
    again = (
        f"sightline export {run.name}"
        + ("" if fmt == "onnx" else f" --format {fmt}")
        + ("" if which == "best" else f" --checkpoint {which}")
    )
    inside(run.path, path)  # a symbolic link there is refused, not loaded
    if not path.is_file():
        raise NotExportedError(
            f"run {run.name!r} has no {EXPORT_NAMES[engine]} export ({path}): make one with `{again}`"
        )
    model = open_export(path, engine, device, run.name)
    if model.metadata.get("source_sha256") != file_sha256(run.model_file(which)):
        raise NotExportedError(
            f"{path} was exported from an older {which} checkpoint of run {run.name!r}: "
            f"export it again with `{again}`"
        )
    return model


def open_export(
    path: str | Path, engine: str, device: Any = "auto", name: str | None = None
) -> OnnxModel:
    """A file of ``sightline export`` in ``engine``'s runtime (onnx, openvino, litert)."""
    if engine == "openvino":
        from sightline.infer.openvino import load_openvino

        return load_openvino(path, name)
    if engine == "litert":
        from sightline.infer.litert import load_litert

        return load_litert(path, name)
    return OnnxModel.load(path, device, name=name)


def _runtime_here(engine: str, device: str | torch.device | None) -> bool:
    """Whether ``engine``'s runtime is installed and runs where PyTorch runs on ``device``
    (OpenVINO and LiteRT are timed on the CPU only: a GPU's PyTorch is no match for them)."""
    import importlib.util

    from sightline.devices import resolve_device
    from sightline.infer.onnx import runs_beside_torch

    if engine == "onnx":
        return runs_beside_torch(device)
    module = {"openvino": "openvino", "litert": "ai_edge_litert"}[engine]
    return (
        importlib.util.find_spec(module) is not None
        and resolve_device(device or "auto").type == "cpu"
    )


def auto_engine(
    run: Run,
    which: str = "best",
    device: str | torch.device | None = "auto",
    needs_score: bool = True,
) -> tuple[OnnxModel | None, EngineChoice | None]:
    """``--engine auto``'s choice for ``run``: (the export, the timing that chose it) when one of
    its current float exports (``layout.ENGINE_EXPORTS``) predicts faster than PyTorch here; (None, the
    timing) when PyTorch does; (None, None) with no current export whose runtime runs here. The
    timing (``infer/engine.py``) is kept beside the exports, for these exports, machine and
    thread count, so it is measured once. ``needs_score``: an export made before exports gave
    the "none of these" score (logits only) is not used for a run that has one."""
    from sightline.devices import resolve_device

    dev = resolve_device(device or "auto")
    models: dict[str, OnnxModel] = {}
    for engine in ENGINE_EXPORTS:
        if not _runtime_here(engine, dev) or not is_file_inside(
            run.path, export_path(run, which, engine)
        ):
            continue
        try:
            models[engine] = load_exported(run, which, str(dev), engine)
        except (NotExportedError, RunError):  # older than the checkpoint, or unreadable
            continue
    if not models:
        return None, None
    if needs_score and run.metadata(which).get("ood"):
        if all(m.sightline_ood is None for m in models.values()):
            reason = "the run's export gives no 'none of these' score (export it again)"
            return None, EngineChoice("torch", {}, reason)
        models = {e: m for e, m in models.items() if m.sightline_ood is not None}
    key = {
        "exports_sha256": {e: m.metadata.get("source_sha256") for e, m in sorted(models.items())},
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
        engines: dict[str, Any] = {"torch": lambda x: batched_logits(net, x, pre, dev)}
        engines.update({e: m.logits for e, m in models.items()})
        choice = faster_engine(engines, pre.input_shape)
        with contextlib.suppress(OSError):  # a read-only runs folder: measured again next time
            atomic_write_json(cache, {"key": key, **choice.to_dict()}, root=run.path)
    return models.get(choice.engine), choice


def _machine() -> str:
    """The CPU's model name (the GPU's, on CUDA, is in the device): what the timing holds for."""
    import platform

    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
