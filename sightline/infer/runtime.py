"""ONNX Runtime sessions and the exporter's quiet: what every ONNX face of sightline shares
(a run's export in ``infer/onnx.py``, a pretrained backbone's in ``infer/backbone.py``)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import torch

from sightline.errors import SightlineError

EXPORT_INSTALL_HINT = 'pip install "sightline[export]"'  # every converter and runtime of `export`


def providers(device: str | torch.device | None = "auto") -> list[Any]:
    """ONNX Runtime execution providers for a sightline device name (auto, cpu, cuda, cuda:N)."""
    import onnxruntime as ort

    name = "auto" if device is None else str(device)
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if name == "cpu" or (name == "auto" and not has_cuda):
        return ["CPUExecutionProvider"]
    if name == "auto" or name.startswith("cuda"):
        if not has_cuda:
            raise SightlineError(
                f"device {name!r}: this onnxruntime has no CUDA support (pip install onnxruntime-gpu), "
                "or use --device cpu"
            )
        index = int(name.split(":", 1)[1]) if ":" in name else 0
        # CPU after CUDA: ONNX Runtime places the few ops CUDA lacks there
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    raise SightlineError(f"ONNX Runtime runs on cpu or cuda here, not {name!r}: use --device cpu")


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """The dynamo exporter logs warnings meant for PyTorch's developers (e.g. that torchvision's
    ops are not registered, deprecations inside torch.export): not the user's business."""
    loggers = [
        logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")
    ]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def quiet_stderr(loggers: tuple[str, ...] = ()) -> Iterator[None]:
    """The process's stderr (file descriptor 2) held back meanwhile, with Python's warnings and
    the named loggers: converters and runtimes written in C++ (LiteRT, coremltools) log there
    directly, and import-time notes about versions they were not tested with, none of it the
    user's business. Their errors still come as exceptions."""
    saved = os.dup(2)
    levels = [(lg, lg.level) for lg in map(logging.getLogger, loggers)]
    try:
        for lg, _ in levels:
            lg.setLevel(logging.ERROR)
        with open(os.devnull, "w") as null, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        for lg, level in levels:
            lg.setLevel(level)


def release_absl_stderr() -> None:
    """absl's logging handler (LiteRT and coremltools import absl) holds the ``sys.stderr`` of
    the moment it was imported, and closes it when ``logging`` shuts its handlers down (as any
    ``logging.config.dictConfig`` does, uvicorn's among them) unless it is the process's own:
    in a notebook or under a test runner that stream is theirs. Point it at the process's."""
    absl = sys.modules.get("absl.logging")
    if absl is not None:
        with contextlib.suppress(AttributeError):
            absl.get_absl_handler().python_handler.stream = sys.__stderr__


def make_session(model: str | os.PathLike | bytes, device: str | torch.device | None = "auto"):
    """An ``onnxruntime.InferenceSession`` for a file or the bytes of a model."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # PyTorch's thread count (what OMP_NUM_THREADS or torch.set_num_threads chose): ORT's own
    # default takes every physical core whatever the user limited PyTorch to.
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.inter_op_num_threads = 1  # a feed-forward graph: nothing to run side by side
    opts.log_severity_level = (
        3  # errors only: its warnings (e.g. about a CPU-only op) are for ORT's authors
    )
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=opts, providers=providers(device))
