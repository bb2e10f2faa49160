"""Exported models in ONNX Runtime: ``load_onnx`` → ``OnnxModel``, usable wherever a run predicts.

A file written by ``sightline export`` (``sightline.run.export``) takes the *prepared* uint8 images
(N, C, H, W) that ``Preprocess.prepare_image`` makes and holds everything after that:
normalisation, the network and the flip test-time augmentation. Its metadata (key
``sightline``) holds the preprocessing and the class names, so an ``OnnxModel`` prepares images
with the same Python code as PyTorch (decoding, framing and resizing are identical for both
engines) and classifies them through the same functions (``sightline.infer.predict``), which accept
any object with a ``logits`` method.

>>> model = sightline.load_onnx("runs/my-run/export/best.onnx")  # or a run: its export/best.onnx
>>> model.predict_files(["boot.jpg"]).to_table()                # as Run.predict_files

Needs only onnxruntime (``pip install "sightline[onnx]"``): reading the metadata goes through
ONNX Runtime too, so the onnx package itself is needed for exporting, not for predicting.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from sightline.errors import RunError, SightlineError
from sightline.infer.batched import MAX_BATCH_VALUES
from sightline.infer.runtime import make_session as make_session
from sightline.infer.runtime import providers as providers
from sightline.infer.runtime import quiet_exporter as quiet_exporter

if TYPE_CHECKING:
    from sightline.data.preprocess import ImageInput, Preprocess
    from sightline.infer.results import PredictionReport

META_KEY = "sightline"
FORMAT = "sightline-onnx/1"
INSTALL_HINT = 'pip install "sightline[onnx]"'


def require_packages(modules: Sequence[str], purpose: str) -> None:
    """Raise a one-line ``SightlineError`` with the install command when a module is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise SightlineError(
            f"{purpose} needs {', '.join(missing)}, which {verb} not installed: {INSTALL_HINT}"
        )


def runs_beside_torch(device: str | torch.device | None = "auto") -> bool:
    """Whether ONNX Runtime is installed and would run where PyTorch runs on ``device`` (the
    engine "auto" prefers a run's export only then: a CPU-only onnxruntime is no match for
    PyTorch on a GPU, and ONNX Runtime has no MPS)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return False
    from sightline.devices import resolve_device

    dev = resolve_device("auto" if device is None else device)
    if dev.type == "cpu":
        return True
    if dev.type == "cuda":
        import onnxruntime as ort

        return "CUDAExecutionProvider" in ort.get_available_providers()
    return False


@dataclass(frozen=True)
class OnnxScore:
    """What predict needs of an export's "none of these" score: its threshold (the scores
    come from the graph, ``OnnxModel.scored_logits``)."""

    threshold: float


class OnnxModel:
    """An exported sightline model in ONNX Runtime, with the predictions of a ``Run``.

    ``logits(uint8 images)`` equals ``batched_logits`` of the PyTorch model within the parity
    checked at export (≤ 1e-4). ``predict``, ``predict_files`` and ``predict_images`` are
    ``Run``'s, with the same arguments and results; their ``device`` argument is accepted for
    that and ignored: the session's device is chosen when loading.
    """

    def __init__(
        self,
        session: Any,
        metadata: dict[str, Any],
        path: Path | None = None,
        name: str | None = None,
    ) -> None:
        from sightline.data.preprocess import Preprocess

        self.session = session
        self.metadata = metadata
        self.path = path
        self.preprocess: Preprocess = Preprocess.from_dict(metadata["preprocess"])
        self.classes: list[str] = list(metadata["classes"])
        self.name = name or metadata.get("run") or (path.stem if path else "model")
        self._input = session.get_inputs()[0].name
        outputs = [o.name for o in session.get_outputs()]
        self._output = outputs[0]
        # An export of a run with a "none of these" detector has its score as a second output;
        # its threshold comes with the metadata (infer/ood.py's ``detector_of`` finds it here).
        self._score = outputs[1] if len(outputs) > 1 and metadata.get("ood") else None
        self.sightline_ood = (
            OnnxScore(float(metadata["ood"]["threshold"])) if self._score is not None else None
        )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        device: str | torch.device | None = "auto",
        name: str | None = None,
    ) -> OnnxModel:
        """Open a ``.onnx`` file written by ``sightline export``; ``RunError`` naming the file
        when it is missing, unreadable or has no sightline metadata."""
        path = Path(path)
        if not path.is_file():
            raise RunError(f"ONNX model not found: {path} (make one with `sightline export RUN`)")
        require_packages(["onnxruntime"], "running an ONNX model")
        try:
            session = make_session(path, device)
        except SightlineError:
            raise
        except Exception as e:  # noqa: BLE001 - ORT raises its own types for any bad file
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RunError(f"{path}: not a readable ONNX model ({first})") from None
        text = session.get_modelmeta().custom_metadata_map.get(META_KEY)
        try:
            meta = json.loads(text) if text else None
        except json.JSONDecodeError:
            meta = None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise RunError(
                f"{path}: an ONNX model, but not one exported by sightline (no {META_KEY!r} metadata), "
                "so its preprocessing and classes are unknown: export it with `sightline export RUN`"
            )
        return cls(session, meta, path, name)

    def __repr__(self) -> str:
        return (
            f"OnnxModel({str(self.path)!r}, model={self.metadata.get('model', {}).get('name')!r})"
        )

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def logits(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Logits (N, K) on the CPU for prepared uint8 images (N, C, H, W) in the model's size."""
        return self._run(images, batch_size, [self._output])[0]

    def scored_logits(
        self, images: torch.Tensor, batch_size: int = 256
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, "none of these" scores, or None for an export without them)."""
        if self._score is None:
            return self.logits(images, batch_size), None
        logits, scores = self._run(images, batch_size, [self._output, self._score])
        return logits, scores

    def _run(self, images: torch.Tensor, batch_size: int, names: list[str]) -> list[torch.Tensor]:
        shape = self.preprocess.input_shape
        if (
            not isinstance(images, torch.Tensor)
            or images.dtype != torch.uint8
            or images.ndim != 4
            or tuple(images.shape[1:]) != shape
        ):
            got = (
                f"{images.dtype} {tuple(images.shape)}"
                if isinstance(images, torch.Tensor)
                else type(images).__name__
            )
            raise ValueError(
                f"{self.name}: expected prepared uint8 images (N, {', '.join(map(str, shape))}), got {got}; "
                "prepare them with model.preprocess.prepare(...)"
            )
        # Batches bounded as in batched_logits: large ones fall out of the CPU caches.
        step = (
            max(1, min(batch_size, MAX_BATCH_VALUES // max(1, images[0].numel())))
            if len(images)
            else 1
        )
        x = images.detach().cpu()
        runs = [
            self.session.run(names, {self._input: x[s : s + step].contiguous().numpy()})
            for s in range(0, len(x), step)
        ]
        if not runs:
            empty = [torch.empty((0, len(self.classes))), torch.empty(0)]
            return empty[: len(names)]
        return [
            torch.cat([torch.from_numpy(r[i]) for r in runs]).float() for i in range(len(names))
        ]

    # ------------------------------------------------------------------ as Run predicts
    def predict(
        self, images: torch.Tensor | Sequence[ImageInput] | ImageInput, device: Any = None
    ) -> torch.Tensor:
        """Class probabilities (N, K), as ``Run.predict``."""
        from sightline.infer.predict import predict_tensor

        return predict_tensor(self, self.preprocess, images)

    def predict_files(
        self,
        inputs: Sequence[str | os.PathLike],
        top_k: int = 3,
        device: Any = None,
        keep_seen: bool = False,
    ) -> PredictionReport:
        """Files, folders or globs → ``PredictionReport``, as ``Run.predict_files``."""
        from sightline.infer.predict import predict_files

        return predict_files(
            self, self.preprocess, self.classes, inputs, top_k=top_k, keep_seen=keep_seen
        )

    def predict_images(
        self,
        images: Sequence[tuple[str, ImageInput]],
        top_k: int = 3,
        device: Any = None,
        keep_seen: bool = False,
    ) -> PredictionReport:
        """(name, image) pairs → ``PredictionReport``, as ``Run.predict_images``."""
        from sightline.infer.predict import predict_images

        return predict_images(
            self, self.preprocess, self.classes, images, top_k=top_k, keep_seen=keep_seen
        )
