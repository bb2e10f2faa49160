"""Exported models in OpenVINO: an IR (``.xml`` + ``.bin``) written by ``sightline export
--format openvino``, run through the same ``OnnxModel`` as an ONNX export.

The IR is OpenVINO's conversion of the run's ONNX export (``openvino.convert_model``), so it
takes the same input (prepared uint8 images) and gives the same outputs (calibrated logits and
the "none of these" score); sightline's metadata travels in the IR's ``rt_info`` under
``sightline``. ``OpenVinoSession`` puts a compiled model behind the few calls ``OnnxModel``
makes of an ONNX Runtime session, so predicting, the export check and every face take either.

Compiled for the CPU in float32 (``INFERENCE_PRECISION_HINT``): OpenVINO would otherwise run a
float model in bf16 on CPUs that have it, and answer differently from PyTorch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sightline.errors import RunError, SightlineError
from sightline.infer.onnx import FORMAT, META_KEY, OnnxModel
from sightline.infer.runtime import EXPORT_INSTALL_HINT

DEVICE = "CPU"


def require_openvino(int8: bool = False) -> Any:
    """The openvino module; with ``int8`` NNCF too (its quantiser). SightlineError naming the
    extra to install when either is missing."""
    decline_telemetry()
    try:
        import openvino

        if int8:
            from sightline.infer.runtime import quiet_stderr

            with quiet_stderr(("torch.utils.cpp_extension",)):  # its import's CUDA note
                import nncf  # noqa: F401
    except ImportError as e:
        raise SightlineError(
            f"{e.name or 'OpenVINO'} is not installed: {EXPORT_INSTALL_HINT}"
        ) from None
    return openvino


def decline_telemetry() -> None:
    """OpenVINO's converter and NNCF send usage events to Google Analytics (from a forked
    process, at import and at each conversion) unless a consent file in the user's home says no;
    sightline sends nothing on its users' behalf, so their consent check answers "declined"
    for this process. Nothing is written to the user's home."""
    try:
        from openvino_telemetry.utils import opt_in_checker
    except ImportError:  # no telemetry package: nothing to decline
        return
    declined = opt_in_checker.ConsentCheckResult.DECLINED
    opt_in_checker.OptInChecker.check = lambda self, *args, **kwargs: declined


class OpenVinoSession:
    """A compiled OpenVINO model with the calls ``OnnxModel`` makes of an ONNX Runtime session."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled

    def get_inputs(self) -> list[Any]:
        return [SimpleNamespace(name=i.get_any_name()) for i in self.compiled.inputs]

    def get_outputs(self) -> list[Any]:
        return [SimpleNamespace(name=o.get_any_name()) for o in self.compiled.outputs]

    def get_providers(self) -> list[str]:
        return [f"OpenVINO {DEVICE}"]

    def run(self, names: list[str], feeds: dict[str, Any]) -> list[Any]:
        result = self.compiled(feeds)
        return [result[self.compiled.output(n)] for n in names]


def compile_model(model: Any, threads: int | None = None) -> OpenVinoSession:
    """An ``openvino.Model`` (or the path of an IR) compiled for the CPU in float32."""
    ov = require_openvino()
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return OpenVinoSession(ov.Core().compile_model(model, DEVICE, config))


def set_metadata(model: Any, metadata: dict[str, Any]) -> None:
    model.set_rt_info(json.dumps(metadata), [META_KEY])


def load_openvino(path: str | os.PathLike, name: str | None = None) -> OnnxModel:
    """Open an IR written by ``sightline export --format openvino`` (its ``.xml``);
    ``RunError`` naming the file when it is missing, unreadable or not sightline's."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"OpenVINO model not found: {path} (make one with `sightline export RUN --format openvino`)")  # fmt: skip
    ov = require_openvino()
    try:
        model = ov.Core().read_model(str(path))
    except Exception as e:  # noqa: BLE001 - OpenVINO raises its own types for any bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RunError(f"{path}: not a readable OpenVINO model ({first[:200]})") from None
    meta = None
    if model.has_rt_info([META_KEY]):
        try:
            meta = json.loads(model.get_rt_info([META_KEY]).astype(str))
        except (json.JSONDecodeError, RuntimeError):
            meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RunError(
            f"{path}: an OpenVINO model, but not one exported by sightline (no {META_KEY!r} "
            "metadata): export it with `sightline export RUN --format openvino`"
        )
    return OnnxModel(compile_model(model), meta, path, name)
