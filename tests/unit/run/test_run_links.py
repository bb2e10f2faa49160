"""No symbolic link inside a run folder is followed by the run's readers: a linked file is
refused with its name (never its target's content), listings name it as refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sightline.errors import LinkRefusedError, RunError
from sightline.run import Run, link_entries, list_runs
from sightline.run import evaluations as store

SECRET = "secret-value-42"
CONFIG = {"model": {"name": "mlp"}, "data": {"name_or_path": "toy"}, "train": {"epochs": 1}}


def make_run(root: Path, name: str = "r") -> Path:
    """A run folder as training leaves it, without the model files."""
    run = root / name
    (run / "plots").mkdir(parents=True)
    (run / "evaluations").mkdir()
    (run / "config.json").write_text(json.dumps(CONFIG))
    (run / "status.json").write_text(json.dumps({"status": "finished", "epochs_done": 1}))
    (run / "metrics.csv").write_text("epoch,loss\n1,0.5\n")
    (run / "evaluations" / "test.json").write_text(json.dumps({"accuracy": 0.5, "count": 2}))
    return run


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder outside the runs folder, holding files a link could lead to."""
    out = tmp_path / "outside"
    out.mkdir()
    (out / "secret.csv").write_text(f"epoch,loss\n1,{SECRET}\n")
    (out / "secret.json").write_text(json.dumps({"status": SECRET, "accuracy": SECRET}))
    (out / "config.json").write_text(json.dumps({**CONFIG, "model": {"name": SECRET}}))
    (out / "best.safetensors").write_bytes(b"not read")
    return out


def relink(path: Path, target: Path) -> None:
    path.unlink() if path.exists() else None
    path.symlink_to(target)


def test_a_linked_metrics_file_is_refused_not_read(tmp_path, outside):
    run_dir = make_run(tmp_path / "runs")
    assert Run(run_dir).history == [{"epoch": 1, "loss": 0.5}]
    relink(run_dir / "metrics.csv", outside / "secret.csv")
    with pytest.raises(LinkRefusedError) as refused:
        Run(run_dir).history  # noqa: B018
    assert "metrics.csv is a symbolic link" in str(refused.value) and SECRET not in str(
        refused.value
    )
    assert link_entries(run_dir) == ["metrics.csv"]


def test_a_linked_status_or_config_makes_the_run_refused_not_read(tmp_path, outside):
    runs = tmp_path / "runs"
    status_link, config_link = make_run(runs, "status-link"), make_run(runs, "config-link")
    relink(status_link / "status.json", outside / "secret.json")
    relink(config_link / "config.json", outside / "config.json")
    status = Run(status_link).status
    assert status["status"] == "broken" and "status.json is a symbolic link" in status["error"]
    with pytest.raises(RunError, match="config.json is a symbolic link: refused"):
        Run(config_link)
    listed = {r.name: r for r in list_runs(runs)}
    assert set(listed) == {"status-link", "config-link"}  # listed, as refused
    assert "config.json is a symbolic link" in listed["config-link"].problem
    assert SECRET not in json.dumps([r.to_dict() for r in listed.values()])


def test_linked_evaluations_and_model_files_are_refused(tmp_path, outside):
    run_dir = make_run(tmp_path / "runs")
    assert Run(run_dir).evaluation == {"accuracy": 0.5, "count": 2}
    relink(run_dir / "evaluations" / "test.json", outside / "secret.json")
    (run_dir / "best.safetensors").symlink_to(outside / "best.safetensors")
    run = Run(run_dir)
    assert run.evaluation is None and run.evaluations() == {}  # refused: as if there were none
    with pytest.raises(LinkRefusedError, match="best.safetensors is a symbolic link"):
        run.model_file("best")
    assert link_entries(run_dir) == ["best.safetensors", "evaluations/test.json"]
    (run_dir / "evaluations" / "test.json").unlink()
    (run_dir / "evaluations").rmdir()
    (run_dir / "evaluations").symlink_to(outside, target_is_directory=True)
    (outside / "test.json").write_text(json.dumps({"accuracy": SECRET}))
    assert store.read_evaluation(run_dir, "test") is None and store.list_evaluations(run_dir) == {}
    assert link_entries(run_dir) == ["best.safetensors", "evaluations"]  # the folder, once


def test_an_evaluation_is_never_saved_through_a_linked_folder(tmp_path, outside):
    run_dir = make_run(tmp_path / "runs")
    (run_dir / "plots").rmdir()
    (run_dir / "evaluations" / "test.json").unlink()
    (run_dir / "evaluations").rmdir()
    (run_dir / "evaluations").symlink_to(outside, target_is_directory=True)
    before = sorted(p.name for p in outside.iterdir())
    with pytest.raises(LinkRefusedError, match="evaluations is a symbolic link"):
        store.save_evaluation(run_dir, "val", {"accuracy": 1.0}, "table")
    assert sorted(p.name for p in outside.iterdir()) == before


def test_a_run_folder_that_is_a_link_is_listed_as_refused(tmp_path, outside):
    runs = tmp_path / "runs"
    make_run(runs, "real")
    elsewhere = make_run(outside, "elsewhere")
    (elsewhere / "metrics.csv").write_text(f"epoch,loss\n1,{SECRET}\n")
    (runs / "alias").symlink_to(elsewhere, target_is_directory=True)
    listed = {r.name: r for r in list_runs(runs)}
    assert listed["real"].problem is None
    assert "alias is a symbolic link: refused" in listed["alias"].problem
    assert listed["alias"].config == {} and listed["alias"].status["status"] == "broken"
    assert [r.name for r in list_runs(runs, links=False)] == ["real"]
