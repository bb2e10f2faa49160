"""Images the pages show from datasets: a run's test split, a built-in dataset's samples.

Loading a split means decoding a whole dataset (a second for a folder of photos, ~0.3 s and
50-200 MB for a built-in), so what was loaded is kept in a small ``BoundedCache``, the sibling
of ``ModelCache``: the test images of a confusion-matrix cell are then served one by one
without loading anything again. Nothing here ever downloads: a request for a built-in dataset
that is neither cached nor mirrored is refused with the command that fetches it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException

from sightline.errors import SightlineError
from sightline.run import LOGITS, TEST_KEY, Run, RunLayout, load_logits

SAMPLES_KEPT = 32  # train images kept per class of a built-in dataset, for sample rows


class BoundedCache:
    """At most ``size`` loaded values, the least recently used dropped first.

    Each value is stored with a ``stamp`` (e.g. file modification times): a look-up with another
    stamp loads again. Thread-safe like ``ModelCache``: loading happens under the lock, so two
    requests for the same data load it once (not twice at the same time, which would double
    the memory for a moment); a hit holds the lock only for a dictionary look-up.
    """

    def __init__(self, size: int = 2) -> None:
        if size < 1:
            raise ValueError(f"cache size must be at least 1, not {size}")
        self.size = size
        self._lock = threading.Lock()
        self._values: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()

    def get(self, key: Hashable, stamp: Hashable, load: Callable[[], Any]) -> Any:
        with self._lock:
            cached = self._values.get(key)
            if cached is not None and cached[0] == stamp:
                self._values.move_to_end(key)
                return cached[1]
            value = load()
            self._values[key] = (stamp, value)
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)
            return value

    def evict(self, key: Hashable) -> None:
        with self._lock:
            self._values.pop(key, None)

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._values)


def _stat(path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def require_downloaded(name: str, cache_dir: Any = None, mirror: Any = None) -> None:
    """409 unless built-in dataset ``name`` is in the cache or the mirror: a request never
    starts a download (it could take minutes and fill the disk on a stranger's say-so)."""
    from sightline.data import dataset_info

    info = dataset_info(name, cache_dir=cache_dir, mirror=mirror)
    if not (info["cached"] or info["mirrored"]):
        raise HTTPException(
            409,
            f"dataset {info['name']} is not downloaded: run `sightline datasets --download {info['name']}` "
            "on the server first",
        )


def run_test_split(cache: BoundedCache, run: Run):
    """The run's test split (an ``ImageSet``), loaded again from the data it was trained on.

    409 when that cannot be done: data made in memory, a built-in dataset not downloaded, a
    folder that is gone, no test split, or test images that no longer match the run's saved
    evaluation (then the indices of its results would point at other images)."""

    stamp = (
        _stat(RunLayout(run.path).config),
        _stat(RunLayout(run.path).evaluation(TEST_KEY, LOGITS)),
    )
    return cache.get(run.name, stamp, lambda: _load_test_split(run))


def _load_test_split(run: Run):
    from sightline.data import find_dataset_spec

    opts = run.config.get("data", {})
    source = str(opts.get("name_or_path"))
    if opts.get("in_memory"):
        raise HTTPException(
            409,
            f"run {run.name} was trained on a dataset made in memory ({source!r}), which the "
            "server cannot load again: its test images cannot be shown",
        )
    spec = find_dataset_spec(source)
    if spec is not None:
        require_downloaded(spec.name, opts.get("cache_dir"), opts.get("mirror"))
    try:
        data = run.load_data(progress=False)
    except SightlineError as e:
        raise HTTPException(
            409, f"the test images of run {run.name} cannot be loaded: {e}"
        ) from None
    if data.test is None:
        raise HTTPException(409, f"run {run.name}'s data ({source}) has no test split")
    saved = load_logits(run.path, TEST_KEY)
    if saved is not None and (
        len(saved[1]) != len(data.test) or not bool((saved[1] == data.test.labels).all())
    ):
        raise HTTPException(
            409,
            f"the test images of run {run.name} changed since it was evaluated ({len(data.test)} "
            f"images now, {len(saved[1])} then): evaluate it again with "
            f"`sightline evaluate {run.name}`",
        )
    return data.test


@dataclass
class BuiltinPreview:
    """What the datasets page shows of a built-in dataset: counts per class and split, and the
    first ``SAMPLES_KEPT`` training images of each class (uint8 N, C, H, W)."""

    classes: list[str]
    splits: dict[str, dict[str, int]]
    samples: list[Any]


def builtin_preview(cache: BoundedCache, name: str) -> BuiltinPreview:
    from sightline.data import get_dataset_spec

    spec = get_dataset_spec(name)
    require_downloaded(spec.name)
    return cache.get(spec.name, None, lambda: _load_preview(spec.name))


def _load_preview(name: str) -> BuiltinPreview:
    from sightline.data import load_dataset

    data = load_dataset(name, val_split=None, progress=False)
    splits = {
        split: dict(zip(data.classes, part.class_counts(data.num_classes), strict=True))
        for split, part in data.splits().items()
    }
    samples = [
        data.train.images[data.train.labels == c][:SAMPLES_KEPT].clone()
        for c in range(data.num_classes)
    ]
    return BuiltinPreview(list(data.classes), splits, samples)
