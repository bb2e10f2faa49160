"""Exported models in LiteRT (TensorFlow Lite's successor): a ``.tflite`` written by ``sightline
export --format litert``, run here in LiteRT's interpreter through the same ``OnnxModel`` as an
ONNX export, so predicting, the export check and every face take it.

What the file holds (``run/export_litert.py`` writes it with ``litert-torch``):

* Input: the prepared uint8 images **channels last**, (B, H, W, C), as a phone's camera frame or
  bitmap is laid out; B is fixed when the model is converted (1: one frame at a time; LiteRT's
  converter cannot keep a dynamic batch here). ``LiteRtSession`` takes sightline's (N, C, H, W)
  batches of any N and runs them B at a time.
* Outputs: the calibrated logits (B, K) and, for a run with a "none of these" detector, its
  score (B,), as in the ONNX export.
* Metadata: sightline's JSON in the flatbuffer's ``metadata`` under ``sightline`` (classes,
  preprocessing, calibration, the score's threshold, parity), read by ``read_metadata``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from sightline.errors import RunError, SightlineError
from sightline.infer.onnx import FORMAT, META_KEY, OnnxModel
from sightline.infer.runtime import EXPORT_INSTALL_HINT, quiet_stderr, release_absl_stderr

OUTPUT_NAMES = ("logits", "score")  # the session's names for the signature's output_0, output_1


def require_litert(convert: bool = False) -> Any:
    """LiteRT's interpreter module; with ``convert`` litert-torch too (its converter).
    SightlineError naming the extra to install when either is missing."""
    try:
        with quiet_litert():  # their imports log (TensorFlow's C++ start-up, torch.export)
            from ai_edge_litert import interpreter

            if convert:
                import litert_torch  # noqa: F401
        release_absl_stderr()
    except ImportError as e:
        raise SightlineError(
            f"{e.name or 'LiteRT'} is not installed: {EXPORT_INSTALL_HINT}"
        ) from None
    return interpreter


@contextlib.contextmanager
def quiet_litert() -> Iterator[None]:
    """litert-torch prints a progress line per stage, and LiteRT logs from C++ straight to the
    process's stderr (its converter's passes, "Created TensorFlow Lite XNNPACK delegate"): not
    the user's business. Both are held back meanwhile (stderr for the moment it takes)."""
    before = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    try:
        with quiet_stderr(("torch.utils._pytree",)):
            yield
    finally:
        if before is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = before


class LiteRtSession:
    """A ``.tflite`` in LiteRT's interpreter with the calls ``OnnxModel`` makes of an ONNX
    Runtime session: (N, C, H, W) uint8 in, any N, run in the file's fixed batch (the last
    chunk padded with zeros and the padding's answers dropped)."""

    def __init__(self, model: bytes | str | os.PathLike, threads: int | None = None) -> None:
        interpreter = require_litert()
        kwargs: dict[str, Any] = {"num_threads": threads or os.cpu_count() or 1}
        if isinstance(model, bytes):
            kwargs["model_content"] = model
        else:
            kwargs["model_path"] = str(model)
        with quiet_litert():  # the XNNPACK delegate is made, and logs, on the first call
            self.interpreter = interpreter.Interpreter(**kwargs)
            self.runner = self.interpreter.get_signature_runner()
            (self._arg, spec), *_ = self.runner.get_input_details().items()
            self.batch, *self.hwc = (int(d) for d in spec["shape"])
            self._outputs = sorted(self.runner.get_output_details())  # output_0, output_1
            self.runner(**{self._arg: np.zeros((self.batch, *self.hwc), dtype=spec["dtype"])})

    def get_inputs(self) -> list[Any]:
        return [SimpleNamespace(name="images")]

    def get_outputs(self) -> list[Any]:
        return [SimpleNamespace(name=n) for n in OUTPUT_NAMES[: len(self._outputs)]]

    def get_providers(self) -> list[str]:
        return ["LiteRT CPU"]

    def run(self, names: list[str], feeds: dict[str, Any]) -> list[Any]:
        x = np.ascontiguousarray(np.transpose(feeds["images"], (0, 2, 3, 1)))  # NCHW → NHWC
        n, b = len(x), self.batch
        got: list[list[np.ndarray]] = [[] for _ in self._outputs]
        for s in range(0, n, b):
            chunk = x[s : s + b]
            if len(chunk) < b:
                pad = np.zeros((b - len(chunk), *chunk.shape[1:]), dtype=chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            out = self.runner(**{self._arg: chunk})
            for i, key in enumerate(self._outputs):
                got[i].append(np.asarray(out[key])[: min(b, n - s)])
        index = {name: i for i, name in enumerate(OUTPUT_NAMES)}
        return [np.concatenate(got[index[name]]) for name in names]


def add_metadata(model: bytes, metadata: dict[str, Any]) -> bytes:
    """``model`` (a .tflite's bytes) with sightline's JSON in its metadata under ``sightline``."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    tree = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    tree.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = META_KEY, len(tree.buffers) - 1
    tree.metadata = [m for m in tree.metadata or [] if m.name != META_KEY.encode()] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tree))


def read_metadata(model: bytes) -> dict[str, Any] | None:
    """sightline's JSON from a .tflite's metadata, or None."""
    from ai_edge_litert import schema_py_generated as schema

    tree = schema.Model.GetRootAs(model, 0)
    for i in range(tree.MetadataLength()):
        entry = tree.Metadata(i)
        if entry.Name() == META_KEY.encode():
            data = tree.Buffers(entry.Buffer()).DataAsNumpy()
            try:
                meta = json.loads(bytes(data)) if isinstance(data, np.ndarray) else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                return None
            return meta if isinstance(meta, dict) else None
    return None


def load_litert(path: str | os.PathLike, name: str | None = None) -> OnnxModel:
    """Open a ``.tflite`` written by ``sightline export --format litert``; ``RunError`` naming
    the file when it is missing, unreadable or not sightline's."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"LiteRT model not found: {path} (make one with `sightline export RUN --format litert`)")  # fmt: skip
    require_litert()
    blob = path.read_bytes()
    try:
        meta = read_metadata(blob)
        session = LiteRtSession(blob) if meta is not None else None
    except Exception as e:  # noqa: BLE001 - the flatbuffer reader and LiteRT raise many types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RunError(f"{path}: not a readable LiteRT model ({first[:200]})") from None
    if session is None or meta is None or meta.get("format") != FORMAT:
        raise RunError(
            f"{path}: not a LiteRT model exported by sightline (no {META_KEY!r} metadata): "
            "export it with `sightline export RUN --format litert`"
        )
    return OnnxModel(session, meta, path, name)
