"""Loaded models, so a prediction does not read the checkpoint again.

A bounded LRU of runs' ``Predictor``s (``Run.predictor``: the engine chosen by the run's one
rule), one per run. Each entry remembers which checkpoint file it was loaded from (name, mtime, size, inode):
a run that trained on, or whose checkpoint was replaced (an atomic write is a new inode), is
loaded again on its next prediction, so the cache never serves stale weights. A hit costs one
``stat`` of that file (two for a run still on its last.safetensors: a best.safetensors that
appears replaces it); only a miss validates the name and reads the run's config.json again.

With ``engine="auto"`` (the default) a run with current float exports runs the fastest of them
and PyTorch here (``run/exported.py``) (1.5-2.5x PyTorch's images/s on batches, 6-12x on single images for
the convnets: benchmarks/README.md), any other run in PyTorch; an export that appears or goes
stale (the run trained on) switches the run over on its next prediction.
With ``engine="onnx"`` (``"openvino"``, ``"litert"``) predictions run through each run's
``export/best.onnx`` in ONNX Runtime (its OpenVINO IR, its .tflite),
reloaded when the export or the checkpoint changes, and refused (``NotExportedError``: HTTP
409) when the run has none or it is older than the checkpoint. Inspection and summaries
(``private_copy``) stay on PyTorch whatever the engine: they hook into the model's layers,
which an ONNX graph does not expose.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sightline.errors import NotExportedError
from sightline.infer import Predictor
from sightline.run import (
    ENGINE_EXPORTS,
    ENGINES,
    Run,
    RunLayout,
    export_path,
    latest_run,
    run_id_path,
)
from sightline.serve.services.batcher import BatchedModel

log = logging.getLogger("sightline.serve")
# auto: the run's current ONNX export where it is faster here, else PyTorch (Run.predictor's)
ENGINE_CHOICES = ENGINES


@dataclass
class _Entry:
    stamp: tuple  # of ``files``, when loaded
    files: tuple[Path, ...]  # what a cache hit stats again (a missing one stamps as None)
    value: Any  # the run's Predictor, or (inspection) the Run with its model loaded
    batched: BatchedModel | None = None  # its predictions' batcher, started on the first prediction

    def close(self) -> None:
        if self.batched is not None:
            self.batched.close()


class ModelCache:
    """At most ``size`` runs' models in memory, the least recently used dropped first.

    Thread-safe: predictions run in FastAPI's thread pool. Loading happens under the lock, so
    two requests for a run that is not loaded yet load it once, not twice at the same time
    (which would also double the memory for a moment); a cache hit holds the lock for a
    dictionary look-up and one ``stat`` of the model file (no config read, no name checks: the
    name was checked when the entry was made). Predictions (``predictor``) go through one
    ``BatchedModel`` per entry, whose thread runs the forward passes; a model that leaves the
    cache stops its thread (``close`` stops them all, at server shutdown).
    """

    def __init__(
        self,
        runs_dir: str | Path,
        size: int = 4,
        device: str = "auto",
        engine: str = "auto",
        default_run: str | None = None,
    ) -> None:
        from sightline.devices import resolve_device

        if size < 1:
            raise ValueError(f"model cache size must be at least 1, not {size}")
        if engine not in ENGINE_CHOICES:
            raise ValueError(f"engine must be one of {', '.join(ENGINE_CHOICES)}, not {engine!r}")
        self.runs_dir = Path(runs_dir)
        self.default_run = default_run  # for requests that name no run; None: the newest run
        self.size = size
        self.device = resolve_device(device)
        self.engine = engine
        self._lock = threading.Lock()
        # ("predict", run name) → its Predictor; ("inspect", run name) → its Run with the
        # PyTorch model loaded (inspection hooks into layers, whatever the engine)
        self._runs: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    @property
    def exports_may_run(self) -> bool:
        """Whether a run's ONNX export may answer (engine auto or onnx, ONNX Runtime here)."""
        from sightline.infer import runs_beside_torch

        return self.engine in ENGINE_EXPORTS or (
            self.engine == "auto" and runs_beside_torch(self.device)
        )

    def get(self, run_id: str | None = None) -> Predictor:
        """The ``Predictor`` of the run named ``run_id`` (a plain run name; None: the newest
        run), its engine chosen by the run's one rule (``Run.predictor``)."""
        return self._entry(run_id).value

    def predictor(self, run_id: str | None = None) -> BatchedModel:
        """The run's ``Predictor`` behind its batcher (``name``, ``engine``, ``predict_images``)."""
        entry = self._entry(run_id)
        with self._lock:
            if entry.batched is None:
                entry.batched = BatchedModel(entry.value)
                if all(
                    e is not entry for e in self._runs.values()
                ):  # evicted meanwhile: no thread left behind
                    entry.batched.close()
            return entry.batched

    def cached_predictor(self, run_id: str | None) -> BatchedModel | None:
        """``predictor(run_id)`` when that is already loaded and current (a few ``stat`` calls,
        no file read: fit for the event loop), else None."""
        if run_id is None:
            run_id = self.default_run
            if run_id is None:  # the newest run: finding it lists the runs folder
                return None
        hit = self._hit(("predict", run_id))
        return None if hit is None else hit.batched

    def run(self, run_id: str | None) -> Run:
        """Run ``run_id``; for a request that names none, the server's pinned run (``serve
        --run``) or else the newest one. Every answer names the run it used."""
        run_id = run_id if run_id is not None else self.default_run
        return (
            latest_run(self.runs_dir) if run_id is None else Run(run_id_path(run_id, self.runs_dir))
        )

    def _entry(self, run_id: str | None) -> _Entry:
        if run_id is not None:
            hit = self._hit(("predict", run_id))
            if hit is not None:
                return hit
        fresh = self.run(run_id)
        files = _checkpoint_files(fresh.model_file("best"))  # RunError: no checkpoint yet
        if self.engine != "torch":  # an export made, replaced or gone switches the run over
            engines = tuple(ENGINE_EXPORTS) if self.engine == "auto" else (self.engine,)
            files = (*(export_path(fresh, "best", e) for e in engines), *files)

        def load() -> Predictor:
            import torch

            predictor = fresh.predictor("best", self.engine, self.device)
            if predictor.engine != "torch" or self.engine != "auto":
                log.info("run %s: %s", fresh.name, predictor.note)
            # One forward pass on a blank image, here under the lock: the first pass converts a
            # convnet to channels-last in place (sightline.infer.batched), which concurrent
            # requests must not do at the same time, and it pays the first call's one-off costs.
            predictor.logits(torch.zeros((1, *predictor.preprocess.input_shape), dtype=torch.uint8))
            return predictor

        if self.engine in ENGINE_EXPORTS and not files[0].is_file():  # a cheap refusal, unlocked
            fmt = "" if self.engine == "onnx" else f" --format {self.engine}"
            raise NotExportedError(
                f"run {fresh.name!r} has no {self.engine} export, which this server (--engine "
                f"{self.engine}) predicts with: make one with `sightline export {fresh.name}{fmt}`"
            )
        return self._cached(("predict", fresh.name), files, load)

    def _hit(self, key: tuple[str, str]) -> _Entry | None:
        """The cached entry when its files are unchanged, else None (then the slow path checks
        the name, reads the run again and reloads what changed)."""
        entry = self._runs.get(key)  # the stat calls outside the lock: 16 requests queued on it
        if entry is None or _stamps(entry.files) != entry.stamp:
            return None
        with self._lock:
            if self._runs.get(key) is not entry:
                return None
            self._runs.move_to_end(key)
            return entry

    def _cached(
        self, key: tuple[str, str], files: tuple[Path, ...], load: Callable[[], Any]
    ) -> _Entry:
        stamp = _stamps(files)
        with self._lock:
            cached = self._runs.get(key)
            if cached is not None and cached.stamp == stamp:
                self._runs.move_to_end(key)
                return cached
            entry = _Entry(stamp, files, load())
            if cached is not None:  # stale: its batcher answers what it has queued, then ends
                cached.close()
            self._runs[key] = entry
            self._runs.move_to_end(key)
            while len(self._runs) > self.size:
                self._runs.popitem(last=False)[1].close()
            return entry

    def private_copy(self, run_id: str | None = None) -> tuple[Run, Any]:
        """(run, a copy of its cached model) for work that hooks into the model or switches its
        mode (inspection, summaries): forward hooks on the shared model would also fire for
        the predictions other requests run through it at the same time, and record their
        tensors. Copying a loaded model is far cheaper than reading the checkpoint again.
        PyTorch whatever the engine: the layers are what is inspected."""
        fresh = self.run(run_id)

        def load() -> Run:
            fresh.load_model("best", self.device)
            return fresh

        files = _checkpoint_files(fresh.model_file("best"))
        run = self._cached(("inspect", fresh.name), files, load).value
        return run, copy.deepcopy(run.load_model("best", self.device))

    def evict(self, run_id: str) -> None:
        with self._lock:
            for use in ("predict", "inspect"):
                entry = self._runs.pop((use, run_id), None)
                if entry is not None:
                    entry.close()

    def close(self, timeout: float = 10.0) -> None:
        """Drop every model and stop the batchers' threads (server shutdown), waiting up to
        ``timeout`` seconds for them to answer what they have queued."""
        with self._lock:
            entries = list(self._runs.values())
            self._runs.clear()
        for entry in entries:
            if entry.batched is not None:
                entry.batched.close(timeout)

    def names(self) -> list[str]:
        """The cached runs, least recently used first."""
        with self._lock:
            return list(dict.fromkeys(name for _, name in self._runs))


def _checkpoint_files(model_file: Path) -> tuple[Path, ...]:
    """What a cached model depends on: its checkpoint file, and, when that is the fallback
    last.safetensors, the best.safetensors that would replace it once written."""
    best = RunLayout(model_file.parent).model("best")
    return (model_file,) if model_file == best else (model_file, best)


def _stamps(files: tuple[Path, ...]) -> tuple:
    """(name, mtime, size, inode) per file, None for a missing one: a checkpoint replaced by
    an atomic write is a new inode, so a changed file never goes unnoticed."""
    out = []
    for path in files:
        try:
            st = path.stat()
        except OSError:
            out.append(None)
        else:
            out.append((path.name, st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)
