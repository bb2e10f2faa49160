"""Shared fixtures. Integration tests need the real dataset files: from $SIGHTLINE_DATA_MIRROR,
or ../shared/datasets beside the checkout; without either they are skipped, not failed."""

from __future__ import annotations

import os
from pathlib import Path

# Before torch loads MKL (test modules import torch before sightline): reproducible GEMMs, as
# sightline/__init__.py sets for every user. The resume tests compare weights bit for bit.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def find_mirror() -> Path | None:
    env = os.environ.get("SIGHTLINE_DATA_MIRROR")
    for candidate in (env, ROOT.parent / "shared" / "datasets"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


MIRROR = find_mirror()
needs_mirror = pytest.mark.skipif(MIRROR is None, reason="no dataset mirror: set SIGHTLINE_DATA_MIRROR")


@pytest.fixture(scope="session")
def mirror() -> Path:
    if MIRROR is None:
        pytest.skip("no dataset mirror: set SIGHTLINE_DATA_MIRROR")
    return MIRROR


@pytest.fixture(scope="session")
def fashion(mirror, tmp_path_factory):
    """Fashion-MNIST with the tutorials' split: test set as validation."""
    from sightline import load_dataset

    return load_dataset("fashion-mnist", mirror=mirror, cache_dir=tmp_path_factory.mktemp("cache"),
                        val_split="test", progress=False)  # fmt: skip
