"""Shared fixtures. Integration tests need the real dataset files: from $SIGHTLINE_DATA_MIRROR,
or ../shared/datasets beside the checkout; without either they are skipped, not failed, except
under CI ($CI set), where they fail: a CI run that silently skipped them would look green."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from pathlib import Path

# Before torch loads MKL (test modules import torch before sightline): reproducible GEMMs, as
# sightline/__init__.py sets for every user. The resume tests compare weights bit for bit.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
# `make test` runs one pytest-xdist worker per core (whole files per worker: a module's fixtures
# are made once). Each worker's PyTorch, and the processes its tests start, get their share of
# the cores rather than one OpenMP thread per core each: two workers spinning two threads apiece
# on 2 cores would mostly wait for each other.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

# No test reaches the Hugging Face Hub (timm's downloads): offline, a missing file is an error
# at once instead of minutes of retries. Tests bring weights as local files.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Tests send Ctrl-C (SIGINT) to the processes they start, as a terminal would. A shell starts a
# background job (`make test &`, `nohup ... &`) with SIGINT ignored, and an ignored signal stays
# ignored in every process started from it: Python then installs no KeyboardInterrupt handler.
# A handler here is reset to the default in the processes the tests start, so they get Ctrl-C.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Tests live in folders that mirror the packages (unit/<package>/, integration/); the helpers
# here (photo_generator, digit_folder, ...) and test modules that others build on (test_train's
# toy data, test_serve_api's client) are imported by their plain names from any of them.
import sys  # noqa: E402

_TESTS = Path(__file__).resolve().parent
for _folder in [
    _TESTS,
    *sorted(p for p in _TESTS.glob("*/*") if p.is_dir()),
    _TESTS / "integration",
]:
    if _folder.name != "__pycache__" and str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))


NO_MIRROR = "no dataset mirror: set SIGHTLINE_DATA_MIRROR"
CI_NO_MIRROR = "CI is set but no dataset mirror was found: set SIGHTLINE_DATA_MIRROR or put the datasets at ../shared/datasets"


def find_mirror(environ: Mapping[str, str] = os.environ, root: Path = ROOT) -> Path | None:
    env = environ.get("SIGHTLINE_DATA_MIRROR")
    for candidate in (env, root.parent / "shared" / "datasets"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def require_mirror(
    found: Path | None, environ: Mapping[str, str] = os.environ, root: Path = ROOT
) -> Path:
    """``found``, else skip the test; under CI (any non-empty $CI) fail it instead."""
    if found is not None:
        return found
    if environ.get("CI"):
        looked = f"SIGHTLINE_DATA_MIRROR={environ.get('SIGHTLINE_DATA_MIRROR') or '(unset)'}, {root.parent / 'shared' / 'datasets'}"
        pytest.fail(f"{CI_NO_MIRROR} (looked at: {looked})", pytrace=False)
    pytest.skip(NO_MIRROR)


MIRROR = find_mirror()
# For tests that read MIRROR directly: the `mirror` fixture skips them, or fails them under CI.
needs_mirror = pytest.mark.usefixtures("mirror")


@pytest.fixture(scope="session")
def mirror() -> Path:
    return require_mirror(MIRROR)


@pytest.fixture(scope="session")
def fashion(mirror, tmp_path_factory):
    """Fashion-MNIST with the tutorials' split: test set as validation."""
    from sightline import load_dataset

    return load_dataset(
        "fashion-mnist",
        mirror=mirror,
        cache_dir=tmp_path_factory.mktemp("cache"),
        val_split="test",
        progress=False,
    )


@pytest.fixture(scope="session")
def default_fashion_run(mirror, tmp_path_factory):
    """What `sightline train fashion-mnist` trains (its default model, airnet, split and
    settings), trained once for every test that checks the default run (~7 min on 2 cores)."""
    import sightline

    tmp = tmp_path_factory.mktemp("default-fashion")
    data = sightline.load_dataset(
        "fashion-mnist", mirror=mirror, cache_dir=tmp / "cache", progress=False
    )
    return sightline.fit(
        data=data, runs_dir=tmp / "runs", progress="quiet"
    )  # the data's default model


@pytest.fixture
def on_a_cpu(monkeypatch):
    """The machine as a test that simulates a CPU's features needs it: device "auto" is the CPU
    even where a GPU is present (issue 51: a recipe test failed on an H200 machine, where
    "auto" found CUDA and the recipe stayed as written)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def write_squares(root) -> Path:
    """A folder of 12 px gray squares in three classes, with train and test splits (60 images a
    class: 45 train, 15 test); returns it."""
    from PIL import Image
    from test_train import make_dataset

    data = make_dataset(n_per_class=60)
    for split, part in (("train", data.train), ("test", data.test)):
        for i, (x, y) in enumerate(zip(part.images, part.labels, strict=True)):
            folder = Path(root) / "squares" / split / f"class{int(y)}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[0].numpy()).save(folder / f"{i:03d}.png")
    return Path(root) / "squares"


@pytest.fixture(scope="module")
def squares_run(tmp_path_factory):
    """A fastcnn run trained for 4 epochs on ``write_squares``' folder (train and test splits,
    so every export's check reads labels); one per test module (the export tests)."""
    import torch

    import sightline

    root = tmp_path_factory.mktemp("int8")
    folder = write_squares(root)
    torch.manual_seed(0)
    result = sightline.run_training(str(folder), "fastcnn", runs_dir=root / "runs",
                                    epochs=4, progress="quiet", report=False, name="squares",
                                    model_options={"width": 8})  # fmt: skip
    return result.run


def squares_photos(run, n: int = 6) -> list[str]:
    """The first ``n`` test images of ``squares_run``'s folder, as paths."""
    folder = run.path.parent.parent / "squares" / "test"
    return [str(p) for p in sorted(folder.rglob("*.png"))[:n]]
