"""The untimed warm-up before a GPU run's first epoch (sightline/train/warmup.py), checked on a
CPU by turning it on there: it must leave the run exactly as it would have been without it,
and report its seconds apart from the epochs'."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from test_train import make_dataset

import sightline
from sightline.cli import build_parser
from sightline.errors import ConfigError
from sightline.plan.config import TrainConfig, resolve_config
from sightline.train import warmup


def fit(data, tmp_path, name, **kw):
    torch.manual_seed(0)
    # BatchNorm (buffers the steps move), dropout (the random state), SGD with momentum and
    # Lookahead (optimizer state), flips and shifts (augmentation draws), a short last batch.
    model = sightline.create_model("tutorial-cnn", data.input_shape, data.num_classes)
    opts = dict(
        epochs=2,
        batch_size=40,
        optimizer="sgd",
        lr=0.05,
        lookahead=True,
        translate=1,
        flip=True,
        device="cpu",
        progress="quiet",
    )
    return sightline.fit(model, data, name=name, runs_dir=tmp_path, **{**opts, **kw})


def test_a_warmed_up_run_trains_exactly_as_one_without(tmp_path):
    data = make_dataset(n_per_class=50, size=24)  # 150 training images: batches of 40, 40, 40, 30
    plain = fit(data, tmp_path, "plain", device_warmup=False)
    warmed = fit(data, tmp_path, "warmed", device_warmup=True)
    a = load_file(plain.path / "last.safetensors")
    b = load_file(warmed.path / "last.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=0, msg=k)
    status = json.loads((warmed.path / "status.json").read_text())
    assert status["warmup_seconds"] > 0
    assert json.loads((plain.path / "status.json").read_text())["warmup_seconds"] is None
    rows = [r.split(",")[:3] for r in (plain.path / "metrics.csv").read_text().splitlines()]
    assert rows == [
        r.split(",")[:3] for r in (warmed.path / "metrics.csv").read_text().splitlines()
    ]


def test_the_warm_up_takes_each_batch_shape_an_epoch_has():
    assert warmup.batch_sizes(1000, 256) == [256, 256, 232]
    assert warmup.batch_sizes(1024, 256) == [256, 256]
    assert warmup.batch_sizes(100, 256) == [100, 100]  # the whole set is one batch


def test_on_for_a_gpu_off_on_a_cpu_and_an_option():
    assert warmup.wanted("cuda", resolve_config(epochs=2))
    assert not warmup.wanted("cpu", resolve_config(epochs=2))
    assert not warmup.wanted("cuda", resolve_config(epochs=2, device_warmup=False))
    assert warmup.wanted("cpu", resolve_config(epochs=2, device_warmup=True))
    with pytest.raises(ConfigError, match="device_warmup must be true or false or null"):
        TrainConfig(device_warmup="yes")
    parser = build_parser()
    assert parser.parse_args(["train", "mnist", "--no-device-warmup"]).device_warmup is False
    assert parser.parse_args(["train", "mnist"]).device_warmup is None
