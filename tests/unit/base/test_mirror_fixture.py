"""The dataset-mirror gate in conftest.py: skip without a mirror, but fail under CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CI_NO_MIRROR, NO_MIRROR, find_mirror, require_mirror

TESTS = Path(__file__).resolve().parents[2]  # where conftest.py is


def test_find_mirror_prefers_env_then_beside_checkout(tmp_path):
    root = tmp_path / "checkout"
    assert find_mirror({}, root) is None
    assert find_mirror({"SIGHTLINE_DATA_MIRROR": str(tmp_path / "missing")}, root) is None
    (tmp_path / "shared" / "datasets").mkdir(parents=True)
    assert find_mirror({}, root) == tmp_path / "shared" / "datasets"
    assert find_mirror({"SIGHTLINE_DATA_MIRROR": str(tmp_path)}, root) == tmp_path


def test_no_mirror_skips_outside_ci(tmp_path):
    for environ in ({}, {"CI": ""}):
        with pytest.raises(pytest.skip.Exception, match=NO_MIRROR):
            require_mirror(None, environ, tmp_path)


def test_no_mirror_fails_under_ci(tmp_path):
    for value in ("1", "true"):
        with pytest.raises(pytest.fail.Exception) as e:
            require_mirror(None, {"CI": value, "SIGHTLINE_DATA_MIRROR": "/nowhere"}, tmp_path)
        assert CI_NO_MIRROR in str(e.value) and "/nowhere" in str(e.value)
    assert require_mirror(tmp_path, {"CI": "1"}) == tmp_path


TINY_TESTS = """
from conftest import needs_mirror


def test_fixture(mirror):
    assert mirror.is_dir()


@needs_mirror
def test_marker():
    pass
"""


@pytest.mark.parametrize("ci", [True, False])
def test_integration_tests_fail_not_skip_under_ci(tmp_path, ci):
    """End to end: pytest in a checkout with no ../shared/datasets and a mirror variable that
    points nowhere. Under CI both kinds of mirror test must fail (as setup errors), never skip."""
    tests = tmp_path / "checkout" / "tests"
    tests.mkdir(parents=True)
    shutil.copy(TESTS / "conftest.py", tests / "conftest.py")
    (tests / "test_tiny.py").write_text(TINY_TESTS)
    (tmp_path / "checkout" / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env.update(SIGHTLINE_DATA_MIRROR=str(tmp_path / "missing"), PYTHONDONTWRITEBYTECODE="1")
    if ci:
        env["CI"] = "1"
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path / "checkout",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = p.stdout + p.stderr
    assert not (tmp_path / "shared").exists()
    if ci:
        assert p.returncode == 1, out
        assert "2 errors" in out and "skipped" not in out, out
        assert out.count(CI_NO_MIRROR) >= 2, out
    else:
        assert p.returncode == 0, out
        assert "2 skipped" in out and NO_MIRROR in out, out
