"""A plan that cannot fit the machine is refused before anything is allocated (issue 36): the
model is counted on the meta device, whichever face asks."""

from __future__ import annotations

import pytest
from test_one_answer import _write_folder

from sightline.cli import main
from sightline.errors import ConfigError
from sightline.plan import capacity


def test_parameters_and_activations_are_counted_without_memory():
    params, activations = capacity.count("mlp", {"hidden": 32}, (1, 28, 28), 10)
    assert params == 784 * 32 + 32 + 32 * 10 + 10 and activations > 32
    huge, _ = capacity.count("mlp", {"hidden": 10**9}, (3, 224, 224), 10)  # 150 T: no allocation
    assert huge > 10**14


def test_a_model_or_batch_too_large_for_the_machine_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(capacity, "device_memory", lambda device: (8 * capacity.GB, "a test's"))
    capacity.check_fits("mlp", {"hidden": 32}, (1, 28, 28), 10, batch_size=256)  # fits
    with pytest.raises(
        ConfigError, match=r"mlp \(hidden=100000000\) has 79,500,000,010 parameters"
    ):
        capacity.check_fits("mlp", {"hidden": 100_000_000}, (1, 28, 28), 10, batch_size=256)
    with pytest.raises(
        ConfigError,
        match="on batches of 65,536 needs about .* GB, more than 60% of a test's 8.0 GB",
    ):
        capacity.check_fits("fastcnn", {}, (3, 224, 224), 10, batch_size=65_536)


def test_the_cli_refuses_it_before_making_a_run_folder(tmp_path, capsys):
    folder = _write_folder(tmp_path / "shapes", channels=1)
    runs = tmp_path / "runs"
    args = ["train", str(folder), "--model", "mlp", "--runs-dir", str(runs), "--no-eval", "-q"]
    assert main([*args, "--model-opt", "hidden=100000000"]) != 0
    assert "parameters" in capsys.readouterr().err
    assert not runs.exists() or not any(runs.iterdir())
