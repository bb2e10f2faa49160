"""The training concerns (sightline/train/callbacks/), each on its own: its rule and its state.
The whole loop with them (exact resume after a crash, early stopping in a run) is tested in
tests/unit/train/test_train.py."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from sightline.train.callbacks import (
    Checkpointing,
    DivergenceCheck,
    EarlyStopping,
    LookaheadAveraging,
    TrainingDiverged,
)


def rows(*values, monitor="val_accuracy"):
    return [{"epoch": i + 1, monitor: v} for i, v in enumerate(values)]


def test_early_stopping_marks_the_best_epochs_and_stops_after_patience():
    early, trainer = EarlyStopping("val_accuracy", patience=2, min_delta=0.01), SimpleNamespace()
    trainer.stop_training = False
    marks = []
    for row in rows(0.80, 0.85, 0.855, 0.84):
        early.on_epoch_end(trainer, row)
        marks.append(row["best"])
    # 0.855 is the best so far (checkpointed) but no significant gain: it counts as a bad epoch.
    assert marks == [True, True, True, False]
    assert (early.best_value, early.best_epoch, early.bad_epochs) == (0.855, 3, 2)
    assert trainer.stop_training is True
    assert (
        "no val_accuracy improvement for 2 epochs (best 0.8550 at epoch 3)" in early.stop_message()
    )


def test_early_stopping_state_resumes_where_it_was():
    early = EarlyStopping("loss", patience=3)
    trainer = SimpleNamespace(stop_training=False)
    for row in rows(1.0, 0.7, 0.9, monitor="loss"):
        early.on_epoch_end(trainer, row)
    again = EarlyStopping("loss", patience=3)
    again.load_state_dict(early.state_dict())
    assert again.mode == "min" and again.state_dict() == {
        "best_value": 0.7,
        "best_epoch": 2,
        "bad_epochs": 1,
    }


def _trainer_for_divergence(lr=0.2):
    return SimpleNamespace(
        data=SimpleNamespace(classes=["a", "b", "c", "d", "e"]),
        cfg=SimpleNamespace(lr=lr),
        optimizer=SimpleNamespace(param_groups=[{"lr": lr}]),
        epoch=1,
        step_in_epoch=4,
    )


def test_divergence_check_stops_on_nan_and_on_an_exploding_epoch_only():
    check, trainer = DivergenceCheck(), _trainer_for_divergence()
    check.on_sums(trainer, 12.0, None)  # a sum mid-epoch: no judgement on its size
    check.on_sums(trainer, 50.0, 1.5)  # an epoch near chance level (ln 5 = 1.61): fine
    with pytest.raises(TrainingDiverged, match="became nan at epoch 2, step 4"):
        check.on_sums(trainer, math.nan, None)
    with pytest.raises(
        TrainingDiverged, match=r"exploded to 34 \(chance level is 1.61\).*--lr 0.02"
    ):
        check.on_sums(trainer, 340.0, 34.0)


def test_checkpointing_writes_mid_epoch_every_n_steps_and_the_best_epoch():
    saved = []
    trainer = SimpleNamespace(
        global_step=6, step_in_epoch=2, steps=5, gen="g", monitor="val_accuracy", epoch=3,
        save_checkpoint=lambda gen: saved.append(("resume", gen)),
        save_model=lambda which, meta: saved.append((which, meta)),
    )  # fmt: skip
    Checkpointing(every=0).on_step_end(trainer)
    Checkpointing(every=4).on_step_end(trainer)
    Checkpointing(every=3).on_step_end(trainer)
    Checkpointing().on_epoch_end(trainer, {"epoch": 3, "val_accuracy": 0.9, "best": True})
    Checkpointing().on_epoch_end(trainer, {"epoch": 3, "val_accuracy": 0.8, "best": False})
    Checkpointing().on_save(trainer, None)
    assert saved == [
        ("resume", "g"),
        ("best", {"epoch": 3, "val_accuracy": 0.9}),
        ("last", {"epoch": 3}),
        ("resume", None),
    ]


def test_lookahead_keeps_its_slow_weights_in_the_resume_state():
    net = torch.nn.Linear(3, 2)
    la = LookaheadAveraging(net)
    with torch.no_grad():
        net.weight.add_(1.0)
    la.on_optimizer_step(SimpleNamespace(model=net, global_step=5, total_steps=100))
    again = LookaheadAveraging(torch.nn.Linear(3, 2))
    again.load_state_dict(la.state_dict())
    assert torch.equal(again.lookahead.slow["weight"], la.lookahead.slow["weight"])
    with pytest.raises(Exception, match="no Lookahead weights"):
        again.load_state_dict({"lookahead": None})


class EpochCounter:
    """A training concern of the user's (what a tracker is): hooks get the trainer, its state
    goes into resume.pt under its own key."""

    def __init__(self) -> None:
        from sightline.train import Callback

        class Counter(Callback):
            state_key = "my-counter"

            def __init__(self) -> None:
                self.epochs: list[int] = []
                self.saw_trainer = False

            def on_epoch_end(self, trainer, row) -> None:
                self.saw_trainer = hasattr(trainer, "optimizer")
                self.epochs.append(row["epoch"])

            def state_dict(self):
                return {"epochs": list(self.epochs)}

            def load_state_dict(self, state):
                self.epochs = list(state["epochs"])

        self.concern = Counter()


def test_a_concern_given_to_fit_runs_with_the_trainer_and_resumes_under_its_own_key(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_train import CrashAt, fit_toy, make_dataset

    import sightline
    from sightline.run.checkpoint import load_state

    data = make_dataset()
    first = EpochCounter().concern
    with pytest.raises(SystemExit):
        fit_toy(data, tmp_path, name="crashed", epochs=3, callbacks=[first, CrashAt(2000 + 1)])
    assert first.epochs == [1] and first.saw_trainer
    state = load_state(tmp_path / "crashed" / "resume.pt")
    assert state["concerns"]["my-counter"] == {"epochs": [1]}
    assert state["concerns"]["EarlyStopping"]["best_epoch"] == 1  # each under its own key
    assert "best_epoch" not in state  # nothing flat beside the trainer's own
    again = EpochCounter().concern
    run = sightline.resume(
        sightline.load_run(tmp_path / "crashed"), data=data, progress="quiet", callbacks=[again]
    )
    assert run.status["status"] == "finished" and again.epochs == [1, 2, 3]


def test_a_resume_state_with_flat_concern_keys_still_resumes(tmp_path):
    """resume.pt files written before the concerns had keys hold their states flat beside
    the trainer's: such a run still resumes to the same weights."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from safetensors.torch import load_file
    from test_train import CrashAt, fit_toy, make_dataset

    import sightline
    from sightline.run.checkpoint import load_state, save_state
    from sightline.train.resume_state import concern_keys

    data = make_dataset()
    full = fit_toy(data, tmp_path, name="full", epochs=3, lookahead=True)
    with pytest.raises(SystemExit):
        fit_toy(data, tmp_path, name="old", epochs=3, lookahead=True, callbacks=[CrashAt(2001)])
    path = tmp_path / "old" / "resume.pt"
    state = load_state(path)
    for own in state.pop("concerns").values():
        state.update(own)  # the format before the keys
    save_state(path, state)
    resumed = sightline.resume(sightline.load_run(tmp_path / "old"), data=data, progress="quiet")
    a, b = load_file(full.path / "last.safetensors"), load_file(resumed.path / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    two = SimpleNamespace(concerns=[EarlyStopping("loss", 3), EarlyStopping("loss", 3)])
    assert [k for k, _ in concern_keys(two)] == ["EarlyStopping", "EarlyStopping#2"]


def test_the_trainer_is_what_its_collaborators_see_of_it(tmp_path):
    """``TrainerView`` names everything the concerns, feeds and worlds read of the trainer:
    a real trainer has each of it, and no collaborator reads anything else."""
    import re
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_train import fit_toy, make_dataset

    from sightline.train import Callback, TrainerView

    seen = {}

    class Look(Callback):
        def on_epoch_end(self, trainer, row) -> None:
            seen["trainer"] = trainer

    fit_toy(make_dataset(), tmp_path, name="look", epochs=1, callbacks=[Look()])
    names = {n for n in TrainerView.__annotations__} | {
        n for n in vars(TrainerView) if not n.startswith("_")
    }
    assert {"cfg", "model", "emit", "monitor", "writer", "global_step"} <= names
    missing = [n for n in sorted(names) if not hasattr(seen["trainer"], n)]
    assert missing == []
    package = Path(__file__).resolve().parents[3] / "sightline" / "train"
    read = {}
    for path in package.rglob("*.py"):
        if path.name in ("loop.py", "trainer_view.py", "api.py"):  # its owner, its face, its maker
            continue
        for name in re.findall(r"\btrainer\.([a-z_]+)", path.read_text()):
            read.setdefault(name, set()).add(path.name)
    assert {n: sorted(f) for n, f in read.items() if n not in names} == {}
