"""A pretrained backbone's features at this machine's speed: ONNX Runtime or PyTorch, timed.

Why: every photo folder trained with ``--pretrained``, every ``sightline check`` of one and
every prediction of such a run passes each image through EfficientNet-Lite0's backbone once,
and on a CPU that is nearly all the time they take. On 2 cores of an AMD EPYC with AVX-512 BF16
(benchmarks/README.md, features.py) at 224 px: PyTorch's fused fp32 copy in channels-last ran
40-55 images/s at batch 32, 62 at batch 8; ONNX Runtime ran the same fused graph at 155-169 with
the same numbers to 2e-6, and this module's path 145 against the old path's 45 in one run (3.2x).
bf16 autocast ran 122 but moved the features by 6.5 %: not used.

So on a CPU the backbone runs where it is faster here, timed once per machine (the CPU's name,
the thread count, the versions of both) and remembered in ``$SIGHTLINE_CACHE_DIR/engines.json``,
as ``cpu_precision`` times bf16 for training. ONNX Runtime needs the backbone exported (~7 s with
torch.export, once per backbone and input size, kept in ``$SIGHTLINE_CACHE_DIR/backbones/``):
a job of fewer than ``EXPORT_PAYS`` images uses an export that is already there and makes none.
On a GPU, PyTorch at a large batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sightline.data.preprocess import Preprocess
from sightline.infer.engine import NAMES, EngineChoice, faster_engine

CPU_BATCH = 8  # images per backbone pass on a CPU: 62 img/s at 8 against 40 at 32 (caches)
GPU_BATCH = 256  # on a GPU: 13,100 img/s at 256 against 9,100 at 32 (an H100, fp32)
EXPORT_PAYS = 256  # images: below this a new export (~7 s) costs more than it saves
SESSIONS_KEPT = 2  # ONNX Runtime sessions held in memory (~30 MB each)
_VERSION = b"features-v1"
TASK = "computes the features"


def backbone_digest(model: nn.Module) -> str:
    """A digest of ``model``'s weights but its classifier's (``model.classifier``, if any)."""
    head = getattr(model, "classifier", None)
    skip = {id(t) for t in head.parameters()} if isinstance(head, nn.Module) else set()
    h = hashlib.blake2b(_VERSION, digest_size=16)
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if id(t) in skip:
            continue
        h.update(name.encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def feature_batch(device: torch.device) -> int:
    return GPU_BATCH if device.type == "cuda" else CPU_BATCH


# ----------------------------------------------------------------------------- the ONNX copy


class OnnxBackbone(nn.Module):
    """``net`` (a fused inference copy) whose backbone ONNX Runtime runs on prepared uint8 images
    of one ``Preprocess``'s shape and normalisation (``image_features``, and ``batched`` for
    ``batched_logits``); ``features``, ``head`` and ``forward`` are ``net``'s, in PyTorch.

    Between ONNX Runtime's runs only numpy works: a PyTorch operation there leaves its OpenMP
    threads spinning on the cores ONNX Runtime needs next (169 images/s fell to 103 with a
    PyTorch normalisation between the runs, 2 cores)."""

    def __init__(self, net: nn.Module, session: Any, preprocess: Preprocess) -> None:
        super().__init__()
        self.net = net  # the head, and the backbone for anything but prepared images
        self.session = session
        self.input_shape = tuple(preprocess.input_shape)
        self.scaling = (tuple(preprocess.mean), tuple(preprocess.std))

    def accepts(self, preprocess: Preprocess) -> bool:
        """Whether images prepared by ``preprocess`` are what the exported graph takes (its
        shape and normalisation; shifted views are left to PyTorch)."""
        return (
            tuple(preprocess.input_shape) == self.input_shape
            and (tuple(preprocess.mean), tuple(preprocess.std)) == self.scaling
            and not preprocess.shift_tta
        )

    def image_features(
        self, images: torch.Tensor, flip: bool = False, on_batch: Any = None
    ) -> torch.Tensor:
        """Features (N, D) float32 of prepared uint8 ``images`` (N, C, H, W), mirrored with
        ``flip``; ``on_batch(done, total)`` after each batch."""
        arr = images.detach().cpu().contiguous().numpy()
        out = []
        for start in range(0, len(arr), CPU_BATCH):
            batch = arr[start : start + CPU_BATCH]
            if flip:
                batch = np.ascontiguousarray(batch[..., ::-1])
            out.append(self.session.run(None, {"images": batch})[0])
            if on_batch is not None:
                on_batch(min(start + CPU_BATCH, len(arr)), len(arr))
        if not out:
            return torch.zeros((0, self.net.num_features))
        return torch.from_numpy(np.concatenate(out))

    def batched(self, images: torch.Tensor, preprocess: Preprocess, features: bool) -> Any:
        """What ``batched_logits`` gives for ``images``: each view's logits through the head
        and the calibrator, averaged; with ``features``, the views' mean features too."""
        from sightline.infer.calibration import calibrator_of

        calibrator = calibrator_of(self)
        views = [self.image_features(images)]
        if preprocess.flip_tta:
            views.append(self.image_features(images, flip=True))
        with torch.inference_mode():
            logits = sum(calibrator.apply(self.net.head(v).float()) for v in views) / len(views)
        logits = logits.clone()  # made outside inference mode: an ordinary tensor
        return (logits, (sum(views) / len(views)).clone()) if features else logits

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.net.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _PreparedToFeatures(nn.Module):
    """The exported graph: prepared uint8 images → normalised → the backbone's features."""

    def __init__(self, net: nn.Module, preprocess: Preprocess) -> None:
        super().__init__()
        self.net = net
        # Made here, not while tracing: Preprocess keeps its tensors for every later call.
        mean, inv_std = preprocess.scaling()
        self.register_buffer("mean", mean.clone())
        self.register_buffer("inv_std", inv_std.clone())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.features((images.float() - self.mean) * self.inv_std)


def export_backbone(net: nn.Module, preprocess: Preprocess, path: Path) -> None:
    """Write ``net.features`` of prepared uint8 images as ONNX to ``path``, atomically."""
    from sightline.fileio import atomic_write_bytes
    from sightline.infer.runtime import quiet_exporter

    # Batch 2: torch.export keeps a dimension of size 2 dynamic (0 or 1 become constants).
    example = torch.zeros((2, *preprocess.input_shape), dtype=torch.uint8)
    with quiet_exporter():
        program = torch.onnx.export(
            _PreparedToFeatures(net, preprocess).eval(),
            (example,),
            dynamo=True,
            input_names=["images"],
            output_names=["features"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            external_data=False,
            verbose=False,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, program.model_proto.SerializeToString())


_sessions: OrderedDict[str, Any] = OrderedDict()
_lock = threading.Lock()


def _session(path: Path) -> Any:
    from sightline.infer.runtime import make_session

    with _lock:
        key = str(path)
        if key not in _sessions:
            _sessions[key] = make_session(key, "cpu")
            while len(_sessions) > SESSIONS_KEPT:
                _sessions.popitem(last=False)
        _sessions.move_to_end(key)
        return _sessions[key]


# ----------------------------------------------------------------------------- the choice


def _cache_dir() -> Path:
    from sightline.data.download import resolve_cache_dir

    return resolve_cache_dir()


def machine_key(net: nn.Module, input_shape: tuple[int, ...]) -> str:
    """What a timing holds for: the network's kind and input, this CPU, threads, versions."""
    import onnxruntime

    from sightline.devices import cpuinfo_value

    return "|".join(
        [
            type(net).__name__,
            "x".join(map(str, input_shape)),
            cpuinfo_value("model name") or "cpu",
            f"threads={torch.get_num_threads()}",
            f"torch={torch.__version__}",
            f"onnxruntime={onnxruntime.__version__}",
        ]
    )


def _decisions_path() -> Path:
    return _cache_dir() / "engines.json"


def saved_choice(key: str) -> EngineChoice | None:
    from sightline.fileio import read_json

    try:
        saved = read_json(_decisions_path())[key]
        return EngineChoice(saved["engine"], saved["per_image_ms"], task=TASK)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_choice(key: str, choice: EngineChoice) -> None:
    from sightline.fileio import atomic_write_json, read_json

    with contextlib.suppress(OSError):  # a read-only cache: timed again next time
        try:
            saved = read_json(_decisions_path())
            saved = saved if isinstance(saved, dict) else {}
        except (OSError, ValueError):
            saved = {}
        saved[key] = choice.to_dict()
        atomic_write_json(_decisions_path(), saved)


def export_path(model: nn.Module, preprocess: Preprocess) -> Path:
    """Where the export of ``model``'s backbone for images prepared by ``preprocess`` is kept."""
    shape = "x".join(map(str, preprocess.input_shape))
    scaling = hashlib.blake2b(repr((preprocess.mean, preprocess.std)).encode(), digest_size=4)
    name = f"{backbone_digest(model)}-{shape}-{scaling.hexdigest()}.onnx"
    return _cache_dir() / "backbones" / name


def describe(choice: EngineChoice) -> str:
    """e.g. "Backbone features through ONNX Runtime: 8.1 ms an image (PyTorch 19.8), timed once
    on this machine"."""
    ms = choice.per_image_ms
    others = ", ".join(f"{NAMES[e]} {v:.1f}" for e, v in sorted(ms.items()) if e != choice.engine)
    return (
        f"Backbone features through {NAMES[choice.engine]}: {ms[choice.engine]:.1f} ms an image "
        f"({others}), timed once on this machine"
    )


def fast_backbone(
    net: nn.Module,
    model: nn.Module,
    preprocess: Preprocess,
    device: torch.device,
    images: int | None = None,
    note: Callable[[str], None] | None = None,
) -> OnnxBackbone | None:
    """``net`` (the fused copy of ``model``) with its backbone in ONNX Runtime where that is the
    faster engine here for images prepared by ``preprocess``, else None (run ``net``).
    ``images``: how many the caller will pass (None: unknown, only an existing export is
    used). ``note`` hears the choice, timed now or read back."""
    if device.type != "cpu" or importlib.util.find_spec("onnxruntime") is None:
        return None
    if not (callable(getattr(net, "features", None)) and callable(getattr(net, "head", None))):
        return None
    shape = tuple(preprocess.input_shape)
    key = machine_key(net, shape)
    choice = saved_choice(key)
    if choice is not None and choice.engine != "onnx":
        if note is not None:
            note(describe(choice))
        return None
    path = export_path(model, preprocess)
    if not path.is_file():
        if images is None or images < EXPORT_PAYS:
            return None
        try:
            export_backbone(net, preprocess, path)
        except Exception:  # noqa: BLE001 - an export that fails only costs the speed-up
            return None
    try:
        session = _session(path)
    except Exception:  # noqa: BLE001 - an unreadable export (another ORT, a damaged file): PyTorch
        return None
    fast = OnnxBackbone(net, session, preprocess)
    if choice is None:
        net.to(memory_format=torch.channels_last)  # as the callers run it on a CPU

        def torch_features(x: torch.Tensor) -> torch.Tensor:
            return net.features(
                preprocess.normalize(x).contiguous(memory_format=torch.channels_last)
            )

        with torch.inference_mode():
            engines = {"torch": torch_features, "onnx": fast.image_features}
            choice = faster_engine(engines, shape, batches=(CPU_BATCH,), task=TASK)
        save_choice(key, choice)
    if note is not None:
        note(describe(choice))
    return fast if choice.engine == "onnx" else None
