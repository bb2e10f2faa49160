"""Loaded models, so a prediction does not read the checkpoint again.

A bounded LRU of ``Run`` objects whose model is loaded (``Run.load_model`` keeps it), one per
run. Each entry remembers which checkpoint file it was loaded from (name, mtime, size, inode):
a run that trained on, or whose checkpoint was replaced (an atomic write is a new inode), is
loaded again on its next prediction, so the cache never serves stale weights.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from sightline.runs import Run, latest_run, run_id_path


class ModelCache:
    """At most ``size`` runs' models in memory, the least recently used dropped first.

    Thread-safe: predictions run in FastAPI's thread pool. Loading happens under the lock, so
    two requests for a run that is not loaded yet load it once, not twice at the same time
    (which would also double the memory for a moment); a cache hit holds the lock only for a
    dictionary look-up. Forward passes run outside the lock, concurrently.
    """

    def __init__(self, runs_dir: str | Path, size: int = 4, device: str = "auto") -> None:
        from sightline.devices import resolve_device

        if size < 1:
            raise ValueError(f"model cache size must be at least 1, not {size}")
        self.runs_dir = Path(runs_dir)
        self.size = size
        self.device = resolve_device(device)
        self._lock = threading.Lock()
        self._runs: OrderedDict[str, tuple[tuple, Run]] = OrderedDict()

    def get(self, run_id: str | None = None) -> Run:
        """The run named ``run_id`` (a plain run name; None: the newest run), model loaded."""
        fresh = latest_run(self.runs_dir) if run_id is None else Run(run_id_path(run_id, self.runs_dir))
        model_file = fresh.model_file("best")  # RunError when the run has no checkpoint yet
        st = model_file.stat()
        stamp = (model_file.name, st.st_mtime_ns, st.st_size, st.st_ino)
        with self._lock:
            cached = self._runs.get(fresh.name)
            if cached is not None and cached[0] == stamp:
                self._runs.move_to_end(fresh.name)
                return cached[1]
            self._load(fresh)
            self._runs[fresh.name] = (stamp, fresh)
            self._runs.move_to_end(fresh.name)
            while len(self._runs) > self.size:
                self._runs.popitem(last=False)
            return fresh

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
        run = self.get(run_id)
        return run, copy.deepcopy(run.load_model("best", self.device))

    def evict(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def names(self) -> list[str]:
        """The cached runs, least recently used first."""
        with self._lock:
            return list(self._runs)
