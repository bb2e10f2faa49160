"""A run's ``Predictor``: the engine its predictions run on, chosen once, by one rule.

``open_predictor(run, engine=...)`` is the only place that decides, for every face (``Run.predict*``,
``sightline predict``, the server's model cache and batcher):

* ``"onnx"``, ``"openvino"``, ``"litert"``: the run's current float export for that runtime
  (``export/<which>.onnx``, ``.openvino.xml``, ``.tflite``); an error that says how to make one
  when there is none or it is stale.
* ``"torch"``: PyTorch only: the inference copy of the checkpoint (BatchNorms folded,
  channels-last where faster: ``infer.batched.inference_copy``).
* ``"auto"``: the fastest here of PyTorch and the run's current float exports whose runtimes
  are installed (timed once per set of exports and machine: ``run.exported.auto_engine``); when
  PyTorch wins, its
  pretrained backbone (if any) runs in ONNX Runtime where that is faster here (timed once per
  machine and backbone: ``infer.backbone``; its export, made once and cached by content, is
  made only for a job of enough images to pay for it).

The predictor says which (``engine``) and why (``note``).
"""

from __future__ import annotations

from typing import Any

import torch

from sightline.errors import ConfigError
from sightline.infer.engine import NAMES
from sightline.infer.predict import Predictor
from sightline.run.layout import ENGINE_EXPORTS, ENGINES

# ``run``: a ``sightline.run.Run`` (not imported: Run.predictor calls into here)
Run = Any


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    return engine


def open_predictor(
    run: Run,
    which: str = "best",
    engine: str = "auto",
    device: str | torch.device | None = "auto",
    images: int | None = None,
    needs_score: bool = True,
) -> Predictor:
    """The ``Predictor`` of ``run``'s checkpoint ``which`` on ``device`` (see the module).
    ``images``: how many images the caller will pass, if known (a new backbone export is made
    only when they pay for it); ``needs_score``: False when the caller never asks for the
    "none of these" answer (an older export without the score may then run)."""
    from sightline.devices import resolve_device

    check_engine(engine)
    dev = resolve_device(device or "auto")
    if engine in ENGINE_EXPORTS:
        from sightline.run.exported import load_exported

        require_runtime(engine)
        model = load_exported(run, which, device, engine)  # onnx "auto": ORT's CUDA if it has it
        return _exported(run, model, f"{NAMES[engine]}, as asked", which, engine)
    note = None
    if engine == "auto":
        from sightline.run.exported import auto_engine

        exported, choice = auto_engine(run, which, str(dev), needs_score)
        if exported is not None and choice is not None:
            return _exported(run, exported, choice.note, which, choice.engine)
        note = choice.note if choice is not None else None
    heard: list[str] = []
    net = run.inference_model(
        which, dev, images=images, backbone_engine=engine == "auto", note=heard.append
    )
    if heard:
        note = "; ".join([*([note] if note else []), *heard])
    return Predictor(net, run.preprocess, run.classes, dev, "torch", note, run.name)


def _exported(run: Run, model: Any, note: str, which: str, engine: str) -> Predictor:
    from sightline.run.exported import export_path

    note = f"{note}: predicting with the run's export ({export_path(run, which, engine)})"
    return Predictor(model, model.preprocess, model.classes, None, engine, note, run.name)


def require_runtime(engine: str) -> None:
    """The runtime of ``engine`` installed, else a SightlineError naming what to install."""
    if engine == "onnx":
        from sightline.infer.onnx import require_packages

        require_packages(["onnxruntime"], "engine 'onnx'")
    elif engine == "openvino":
        from sightline.infer.openvino import require_openvino

        require_openvino()
    else:
        from sightline.infer.litert import require_litert

        require_litert()


# The files of `sightline export` a model opens from: suffix -> the engine that runs it (its
# `sightline predict --ENGINE FILE` flag)
EXPORTED_FILES = {".onnx": "onnx", ".xml": "openvino", ".tflite": "litert"}


def predict_flag(path: Any) -> str | None:
    """``sightline predict``'s flag for an exported file; None for one it cannot run here."""
    engine = next((e for s, e in EXPORTED_FILES.items() if str(path).endswith(s)), None)
    return f"--{engine}" if engine else None


def file_predictor(
    path: str, engine: str = "auto", device: str | torch.device | None = "auto"
) -> Predictor:
    """The ``Predictor`` of a model file outside a run: a file of ``sightline export``
    (``EXPORTED_FILES``: ONNX, OpenVINO's .xml, LiteRT's .tflite, each in its runtime) or a ``.safetensors`` model file (PyTorch's inference copy; engine "onnx"
    is refused: a model file has no export)."""
    from pathlib import Path

    from sightline.devices import resolve_device
    from sightline.errors import RunError

    check_engine(engine)
    exported = next((e for s, e in EXPORTED_FILES.items() if str(path).endswith(s)), None)
    if exported is not None:  # a file of `sightline export`: its own runtime
        from sightline.run.exported import open_export

        model = open_export(path, exported, device)
        note = f"{NAMES[exported]}: {path}"
        return Predictor(model, model.preprocess, model.classes, None, exported, note)
    if engine in ENGINE_EXPORTS:
        raise RunError(
            f"engine {engine!r} needs a run or a file of `sightline export`, not the model file "
            f"{path}: give the run's folder, or the exported file"
        )
    from sightline.data.preprocess import Preprocess
    from sightline.infer.batched import inference_copy
    from sightline.run.checkpoint import load_model

    dev = resolve_device(device or "auto")
    model, meta = load_model(Path(path), dev)
    pre = Preprocess.from_dict(meta["preprocess"])
    net = inference_copy(model, pre if engine == "auto" else None, dev)
    return Predictor(net, pre, meta["classes"], dev, "torch", None, Path(path).stem)
