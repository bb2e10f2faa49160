"""One writer of a run folder (issue 52): no code outside ``sightline/run/`` writes a file of a
run, and ``status.json`` has one shape whoever writes it."""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from test_train import make_dataset  # noqa: E402

import sightline  # noqa: E402
from sightline.report import write_report  # noqa: E402
from sightline.run import KEYS_OF_STATUS, RunStatus, RunWriter  # noqa: E402

PACKAGE = Path(sightline.__file__).parent


def writer_of_the_call() -> str:
    """The sightline module that asked for the write: the innermost frame in the package that
    is not fileio (the atomic write itself)."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        path = Path(frame.filename)
        if PACKAGE in path.parents and path.name != "fileio.py":
            return path.relative_to(PACKAGE).as_posix()
    return "(outside sightline)"


def test_every_file_of_a_run_is_written_by_run(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    writes: list[tuple[str, str]] = []
    for name in ("replace", "rename"):
        real = getattr(os, name)

        def recording(src, dst, *args, _real=real, **kwargs):
            if runs in Path(dst).resolve().parents:
                writes.append((str(Path(dst).relative_to(runs)), writer_of_the_call()))
            return _real(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, name, recording)
    data = make_dataset()
    torch.manual_seed(0)
    model = sightline.create_model("fastcnn", data.input_shape, data.num_classes, width=8)
    run = sightline.fit(model, data, name="toy", runs_dir=runs, epochs=2, progress="quiet")
    run.evaluate(data)
    run.calibrate(data)
    write_report(run, data=data)
    written = {path.split("/")[-1] for path, _ in writes}
    for expected in ("status.json", "metrics.csv", "best.safetensors", "resume.pt", "report.html"):
        assert expected in written, (expected, sorted(written))
    assert any(path.startswith("toy/plots/") for path, _ in writes)
    outside = sorted({(p, who) for p, who in writes if not who.startswith("run/")})
    assert outside == [], f"run files written outside sightline/run/: {outside}"


def test_status_json_has_one_shape_whoever_writes_it(tmp_path):
    data = make_dataset()
    torch.manual_seed(0)
    model = sightline.create_model("mlp", data.input_shape, data.num_classes, hidden=16)
    run = sightline.fit(model, data, name="ok", runs_dir=tmp_path, epochs=1, progress="quiet")
    trained = json.loads((run.path / "status.json").read_text())
    never = tmp_path / "never"
    never.mkdir()
    RunWriter(never).write_status(RunStatus(status="failed", error="boom", epochs=3))
    shape = json.loads((never / "status.json").read_text())
    assert set(shape) == set(KEYS_OF_STATUS) - {"process"}
    assert set(trained) - {"process"} == set(shape)
    with pytest.raises(ValueError, match="no key"):
        RunWriter(never).write_status({"status": "failed", "colour": "red"})
    RunWriter(never).mark(status="interrupted")  # a change keeps the rest
    marked = json.loads((never / "status.json").read_text())
    assert marked["status"] == "interrupted" and marked["error"] == "boom" and marked["epochs"] == 3
