"""CUDA graphs for the training step (sightline/train/cuda_graphs.py), checked without a GPU:
``torch.cuda.make_graphed_callables`` and the CUDA random state are replaced by stand-ins that
behave as they do (warm-up steps that move BatchNorm's statistics, then a module to call), so
what sightline decides around them is tested: when a graph is used, what capturing must leave
as it was, and the fall-back to eager steps. The graphs themselves run on a GPU only
(benchmarks/compile_train.py --modes eager,cuda-graphs; benchmarks/README.md)."""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch
from test_train import toy  # noqa: F401 (a fixture)
from torch import nn

from sightline.cli import build_parser
from sightline.errors import ConfigError
from sightline.models import create_model
from sightline.plan.config import TrainConfig, resolve_config
from sightline.train import cuda_graphs
from sightline.train.cuda_graphs import GraphedTraining
from sightline.train.loop import Trainer


class FakeCuda:
    """make_graphed_callables' warm-up steps (which update BatchNorm's running statistics and
    draw random numbers), then the module itself as the 'graphed' callable."""

    def __init__(self, monkeypatch, fail: Exception | None = None) -> None:
        self.captured: list[tuple[int, ...]] = []
        self.rng = torch.tensor([7], dtype=torch.uint8)
        self.fail = fail
        monkeypatch.setattr(torch.cuda, "make_graphed_callables", self.make_graphed_callables)
        monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device=None: self.rng.clone())
        monkeypatch.setattr(torch.cuda, "set_rng_state", self.set_rng_state)

    def set_rng_state(self, state, device=None) -> None:
        self.rng = state.clone()

    def make_graphed_callables(self, module, sample_args, num_warmup_iters=3):
        for _ in range(num_warmup_iters):
            module(*sample_args).sum().backward()
            self.rng += 1
        if self.fail is not None:
            raise self.fail
        self.captured.append(tuple(sample_args[0].shape))
        return module


def bn_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2)
    ).train()


def no_autocast():
    return contextlib.nullcontext()


def test_capture_leaves_batchnorm_statistics_and_random_state_as_they_were(monkeypatch):
    fake = FakeCuda(monkeypatch)
    model = bn_model()
    x = torch.randn(8, 3, 6, 6) * 5 + 3
    model(x)  # materialise the lazy layer
    eager = copy.deepcopy(model)
    notes: list[str] = []
    graphs = GraphedTraining(model, notes.append)
    out = graphs(x, no_autocast)
    assert out is not None and out.shape == (8, 2) and fake.captured == [(8, 3, 6, 6)]
    torch.testing.assert_close(out, eager(x))
    # 3 warm-up steps ran: the statistics show the one real step only, as an eager step's do
    assert int(model[1].num_batches_tracked) == 2
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, eager.state_dict()[k], rtol=0, atol=0, msg=k)
    assert int(fake.rng) == 7
    assert len(notes) == 1 and "CUDA graphs" in notes[0] and "8 images" in notes[0]


def test_other_shapes_layouts_and_eval_mode_run_eagerly(monkeypatch):
    fake = FakeCuda(monkeypatch)
    model = bn_model()
    graphs = GraphedTraining(model)
    assert graphs(torch.randn(8, 3, 6, 6), no_autocast) is not None
    assert graphs(torch.randn(5, 3, 6, 6), no_autocast) is None  # an epoch's short last batch
    assert (
        graphs(torch.randn(8, 3, 6, 6).contiguous(memory_format=torch.channels_last), no_autocast)
        is None
    )
    assert graphs(torch.randn(8, 3, 6, 6), no_autocast) is not None
    model.eval()
    assert graphs(torch.randn(8, 3, 6, 6), no_autocast) is None
    assert fake.captured == [(8, 3, 6, 6)]  # captured once


def test_only_a_batch_of_the_runs_size_is_captured(monkeypatch):
    """A run resumed at an epoch's short last batch captures the next full batch, not that one."""
    fake = FakeCuda(monkeypatch)
    graphs = GraphedTraining(bn_model(), batch_size=8)
    assert graphs(torch.randn(5, 3, 6, 6), no_autocast) is None and fake.captured == []
    assert graphs(torch.randn(8, 3, 6, 6), no_autocast) is not None and fake.captured == [
        (8, 3, 6, 6)
    ]


def test_release_drops_the_graph_and_a_later_step_captures_anew(monkeypatch):
    fake = FakeCuda(monkeypatch)
    graphs = GraphedTraining(bn_model(), batch_size=8)
    assert graphs(torch.randn(8, 3, 6, 6), no_autocast) is not None
    graphs.release()
    assert graphs.graphed is None and graphs.shape is None
    assert graphs(torch.randn(8, 3, 6, 6), no_autocast) is not None and len(fake.captured) == 2


def test_a_model_that_cannot_be_captured_trains_eagerly_with_a_note(monkeypatch):
    fake = FakeCuda(
        monkeypatch, fail=RuntimeError("operation not permitted when stream is capturing\nmore")
    )
    model = bn_model()
    x = torch.randn(8, 3, 6, 6)
    model(x)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    notes: list[str] = []
    graphs = GraphedTraining(model, notes.append)
    assert graphs(x, no_autocast) is None
    assert graphs(x, no_autocast) is None  # not tried again
    assert notes == [
        "CUDA graphs off for this model (RuntimeError: operation not permitted when stream is "
        "capturing): eager steps"
    ]
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0, msg=k)
    assert int(fake.rng) == 7 and fake.captured == []


def test_the_option_is_validated_and_reaches_the_command_line():
    assert TrainConfig().cuda_graphs is None
    assert resolve_config(cuda_graphs=False).cuda_graphs is False
    with pytest.raises(ConfigError, match="cuda_graphs must be true or false or null"):
        TrainConfig(cuda_graphs="yes")
    parser = build_parser()
    assert parser.parse_args(["train", "fashion-mnist", "--no-cuda-graphs"]).cuda_graphs is False
    assert parser.parse_args(["train", "fashion-mnist"]).cuda_graphs is None


def test_a_cpu_trainer_takes_eager_steps(toy, tmp_path):  # noqa: F811
    model = create_model("mlp", toy.input_shape, toy.num_classes, hidden=8)
    t = Trainer(model, toy, resolve_config(device="cpu", epochs=1), tmp_path, [])
    assert t.graphs is None
    assert not isinstance(t.precision.autocast(), torch.autocast)


def test_graphs_on_one_gpu_only_where_the_parameters_stay_put():
    """On for a GPU; off on a CPU, with --no-cuda-graphs, with head_epochs (they change which
    parameters train) and for a head on frozen features."""
    assert cuda_graphs.wanted("cuda", resolve_config(epochs=2))
    assert not cuda_graphs.wanted("cpu", resolve_config(epochs=2))
    assert not cuda_graphs.wanted("mps", resolve_config(epochs=2))
    assert not cuda_graphs.wanted("cuda", resolve_config(epochs=2, cuda_graphs=False))
    assert not cuda_graphs.wanted("cuda", resolve_config(epochs=2, head_epochs=1))
    assert not cuda_graphs.wanted("cuda", resolve_config(epochs=2, freeze=True))


def test_autocast_drops_its_weight_cache_only_for_graphs(toy, tmp_path, monkeypatch):  # noqa: F811
    model = create_model("mlp", toy.input_shape, toy.num_classes, hidden=8)
    cfg = resolve_config(device="cpu", epochs=1, amp=True)
    t = Trainer(model, toy, cfg, tmp_path, [])
    assert t.graphs is None and t.precision.dtype is torch.bfloat16
    with t.precision.autocast() as ctx:
        assert isinstance(ctx, torch.autocast) and ctx._cache_enabled is True
    monkeypatch.setattr(cuda_graphs, "wanted", lambda device_type, cfg: True)  # as on one GPU
    t = Trainer(
        create_model("mlp", toy.input_shape, toy.num_classes, hidden=8), toy, cfg, tmp_path, []
    )
    assert isinstance(t.graphs, GraphedTraining)
    with (
        t.precision.autocast() as ctx
    ):  # make_graphed_callables refuses autocast's cache of cast weights
        assert isinstance(ctx, torch.autocast) and ctx._cache_enabled is False


def test_a_capture_error_without_a_message_still_gets_its_note(monkeypatch):
    FakeCuda(monkeypatch, fail=torch.cuda.OutOfMemoryError())
    notes: list[str] = []
    graphs = GraphedTraining(bn_model(), notes.append)
    assert graphs(torch.randn(8, 3, 6, 6), no_autocast) is None
    assert notes == ["CUDA graphs off for this model (OutOfMemoryError): eager steps"]


def test_pytorchs_warning_about_the_warm_up_streams_is_not_shown(monkeypatch):
    import warnings

    FakeCuda(monkeypatch)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        GraphedTraining(bn_model())(torch.randn(8, 3, 6, 6), no_autocast)
        warnings.warn(
            "The AccumulateGrad node's stream does not match the stream of the node",
            UserWarning,
            stacklevel=1,
        )
        warnings.warn(
            "Attempting to run cuBLAS, but there was no current CUDA context! Attempting to set",
            UserWarning,
            stacklevel=1,
        )
        warnings.warn("another warning", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["another warning"]


def test_the_trainer_releases_its_graphs_when_training_ends(toy, tmp_path):  # noqa: F811
    class Recorder:
        def __init__(self) -> None:
            self.calls, self.released = 0, 0

        def __call__(self, x, autocast):
            self.calls += 1
            return None  # eager steps, as where a capture failed

        def release(self) -> None:
            self.released += 1

    model = create_model("mlp", toy.input_shape, toy.num_classes, hidden=8)
    t = Trainer(model, toy, resolve_config(device="cpu", epochs=1, max_steps=2), tmp_path, [])
    t.graphs = recorder = Recorder()
    t.fit()
    assert (
        recorder.calls == t.global_step >= 1 and recorder.released == 1
    )  # every step asked it, once released
