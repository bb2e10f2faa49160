"""Loaded models, so a prediction does not read the checkpoint again.

A bounded LRU of ``Run`` objects whose model is loaded (``Run.load_model`` keeps it), one per
run. Each entry remembers which checkpoint file it was loaded from (name, mtime, size, inode):
a run that trained on, or whose checkpoint was replaced (an atomic write is a new inode), is
loaded again on its next prediction, so the cache never serves stale weights.

With ``engine="onnx"`` predictions run through each run's ``export/best.onnx`` in ONNX Runtime
(``sightline.onnx_model``): ``get`` returns that model, which predicts like a ``Run``. It is
reloaded when the export or the checkpoint changes, and refused (``NotExportedError``: HTTP
409) when the run has none or it is older than the checkpoint. Inspection and summaries
(``private_copy``) stay on PyTorch whatever the engine: they hook into the model's layers,
which an ONNX graph does not expose.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sightline.runs import Run, latest_run, run_id_path

ENGINES = ("torch", "onnx")


class ModelCache:
    """At most ``size`` runs' models in memory, the least recently used dropped first.

    Thread-safe: predictions run in FastAPI's thread pool. Loading happens under the lock, so
    two requests for a run that is not loaded yet load it once, not twice at the same time
    (which would also double the memory for a moment); a cache hit holds the lock only for a
    dictionary look-up. Forward passes run outside the lock, concurrently.
    """

    def __init__(self, runs_dir: str | Path, size: int = 4, device: str = "auto", engine: str = "torch") -> None:
        from sightline.devices import resolve_device

        if size < 1:
            raise ValueError(f"model cache size must be at least 1, not {size}")
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        self.runs_dir = Path(runs_dir)
        self.size = size
        self.device = resolve_device(device)
        self.engine = engine
        self._onnx_device = device  # as asked: "auto" lets ONNX Runtime pick CUDA only where it has it
        self._lock = threading.Lock()
        # (engine, run name) → (file stamps, Run or OnnxModel): with engine "onnx", inspection
        # still loads PyTorch models, under ("torch", name)
        self._runs: OrderedDict[tuple[str, str], tuple[tuple, Any]] = OrderedDict()

    def get(self, run_id: str | None = None) -> Any:
        """What predictions of the run named ``run_id`` (a plain run name; None: the newest run)
        run on: the ``Run`` with its model loaded, or with engine "onnx" the run's exported
        ``OnnxModel`` (named after the run). Both have ``name`` and ``predict_images``."""
        fresh = latest_run(self.runs_dir) if run_id is None else Run(run_id_path(run_id, self.runs_dir))
        return self._onnx(fresh) if self.engine == "onnx" else self._torch(fresh)

    def _torch(self, fresh: Run) -> Run:
        model_file = fresh.model_file("best")  # RunError when the run has no checkpoint yet

        def load() -> Run:
            self._load(fresh)
            return fresh

        return self._cached(("torch", fresh.name), (_stamp(model_file),), load)

    def _onnx(self, fresh: Run) -> Any:
        from sightline.errors import NotExportedError
        from sightline.onnx_model import export_path, load_exported

        model_file = fresh.model_file("best")
        exported = export_path(fresh, "best")
        if not exported.is_file():  # before the lock: a cheap refusal
            raise NotExportedError(f"run {fresh.name!r} has no ONNX export, which this server (--engine onnx) predicts "
                                   f"with: make one with `sightline export {fresh.name}`")  # fmt: skip

        def load() -> Any:
            import torch

            model = load_exported(fresh, "best", self._onnx_device)  # NotExportedError when stale
            model.logits(torch.zeros((1, *model.preprocess.input_shape), dtype=torch.uint8))  # one-off costs, here
            return model

        return self._cached(("onnx", fresh.name), (_stamp(exported), _stamp(model_file)), load)

    def _cached(self, key: tuple[str, str], stamp: tuple, load: Callable[[], Any]) -> Any:
        with self._lock:
            cached = self._runs.get(key)
            if cached is not None and cached[0] == stamp:
                self._runs.move_to_end(key)
                return cached[1]
            value = load()
            self._runs[key] = (stamp, value)
            self._runs.move_to_end(key)
            while len(self._runs) > self.size:
                self._runs.popitem(last=False)
            return value

    def _load(self, run: Run) -> None:
        import torch

        run.load_model("best", self.device)
        # One forward pass on a blank image, here under the lock: the first pass converts a
        # convnet to channels-last in place (sightline.inference), which concurrent requests
        # must not do at the same time, and it pays the first call's one-off costs.
        run.predict(torch.zeros((1, *run.preprocess.input_shape), dtype=torch.uint8), device=self.device)

    def private_copy(self, run_id: str | None = None) -> tuple[Run, Any]:
        """(run, a copy of its cached model) for work that hooks into the model or switches its
        mode (inspection, summaries): forward hooks on the shared model would also fire for
        the predictions other requests run through it at the same time, and record their
        tensors. Copying a loaded model is far cheaper than reading the checkpoint again."""
        fresh = latest_run(self.runs_dir) if run_id is None else Run(run_id_path(run_id, self.runs_dir))
        run = self._torch(fresh)  # PyTorch whatever the engine: the layers are what is inspected
        return run, copy.deepcopy(run.load_model("best", self.device))

    def evict(self, run_id: str) -> None:
        with self._lock:
            for engine in ENGINES:
                self._runs.pop((engine, run_id), None)

    def names(self) -> list[str]:
        """The cached runs, least recently used first."""
        with self._lock:
            return list(dict.fromkeys(name for _, name in self._runs))


def _stamp(path: Path) -> tuple:
    st = path.stat()
    return (path.name, st.st_mtime_ns, st.st_size, st.st_ino)
