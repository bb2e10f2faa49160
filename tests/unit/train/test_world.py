"""The trainer's world (sightline/train/world.py): the loop asks it, never decides itself, who
writes, which rows a process trains on, how the loss is scaled and when to stop. The torchrun
world is tested with real processes in test_distributed.py."""

from __future__ import annotations

import torch
from test_train import toy  # noqa: F401 (a fixture)

from sightline.models import create_model
from sightline.plan.config import resolve_config
from sightline.train.loop import Trainer
from sightline.train.world import World


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_step(self, payload) -> None:
        self.events.append("step")

    def on_epoch_end(self, row) -> None:
        self.events.append("epoch")


def test_a_process_that_is_not_the_main_one_writes_nothing_and_tells_no_callback(toy, tmp_path):  # noqa: F811
    class Follower(World):
        is_main = False

    model = create_model("mlp", toy.input_shape, toy.num_classes, hidden=8)
    seen = Recorder()
    run_dir = tmp_path / "run"
    t = Trainer(
        model, toy, resolve_config(device="cpu", epochs=1), run_dir, [seen], world=Follower()
    )
    summary = t.fit()
    assert summary["status"] == "finished" and t.global_step > 0
    assert seen.events == [] and not run_dir.exists()
    alone = Recorder()
    model = create_model("mlp", toy.input_shape, toy.num_classes, hidden=8)
    Trainer(model, toy, resolve_config(device="cpu", epochs=1), run_dir, [alone]).fit()
    assert alone.events[-1] == "epoch" and "step" in alone.events
    assert (run_dir / "status.json").exists() and (run_dir / "metrics.csv").exists()


def test_the_loop_trains_on_the_rows_and_loss_its_world_gives(toy, tmp_path):  # noqa: F811
    class HalfBatches(World):
        """Trains on the first half of every batch, with a loss it counts."""

        def __init__(self) -> None:
            self.sizes: list[int] = []
            self.losses = 0
            self.stops = 0

        def step_batch(self, trainer, inputs, labels, idx, gen):
            x, y = super().step_batch(trainer, inputs, labels, idx, gen)
            self.sizes.append(len(y) // 2)
            return x[: len(y) // 2], y[: len(y) // 2]

        def loss(self, trainer, logits, y):
            self.losses += 1
            return super().loss(trainer, logits, y)

        def stop_now(self, trainer) -> bool:
            self.stops += 1
            return self.stops > 3  # a stop the processes agreed on, before the fourth step

    world = HalfBatches()
    model = create_model("mlp", toy.input_shape, toy.num_classes, hidden=8)
    cfg = resolve_config(device="cpu", epochs=2, batch_size=16)
    t = Trainer(model, toy, cfg, tmp_path / "run", [], world=world)
    summary = t.fit()
    assert summary["status"] == "interrupted" and t.global_step == 3 == world.losses
    seen = t.sums[2].item()  # the images the epoch's metrics counted: the halves
    assert seen == sum(world.sizes) == 3 * 8
    assert torch.isfinite(t.sums).all()
