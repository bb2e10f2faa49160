"""What every request of one app needs (``app.state.sightline``), in one place that every
router imports: the routers then never import each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request

from sightline.serve.services.cpu_work import CpuWork
from sightline.serve.services.data_cache import BoundedCache
from sightline.serve.services.model_cache import ModelCache

MAX_TOP_K = 100  # the most classes a prediction returns per image
MAX_FILES = 1000  # files in one multipart request (Starlette's form parser refuses more)


@dataclass
class Settings:
    runs_dir: Path
    data_dirs: list[Path]
    max_upload_bytes: int
    max_pixels: int  # per image: larger uploads are refused before they are decoded
    models: ModelCache
    test_splits: BoundedCache = field(
        default_factory=lambda: BoundedCache(2)
    )  # per run (data_cache.py)
    previews: BoundedCache = field(
        default_factory=lambda: BoundedCache(4)
    )  # built-in datasets' counts, samples
    cpu_work: CpuWork = field(default_factory=CpuWork)  # decoding and framing: services/cpu_work.py

    def datasets(self) -> list[Path]:
        """The image folders offered, now: each --data-dir that is a dataset, and each dataset
        inside one that is a folder of datasets (where the web UI makes new ones)."""
        from sightline.data import datasets_in

        return [p for d in self.data_dirs for p in datasets_in(d)]

    def checked(self, folder: Path) -> Path:
        """``folder`` (one of ``datasets()``) when it may be used: a --data-dir itself (the
        user chose it, a link too), or a real folder in a folder of datasets; one that is a
        symbolic link there is refused (``LinkRefusedError``): nothing is read or written
        through it."""
        from sightline.fileio import inside

        return folder if folder in self.data_dirs else inside(folder.parent, folder.name)

    def collections(self) -> list[Path]:
        """The --data-dir folders new datasets can be made in (those that are not datasets)."""
        from sightline.data import is_dataset

        return [d for d in self.data_dirs if not is_dataset(d)]


def settings_of(request: Request) -> Settings:
    return request.app.state.sightline
