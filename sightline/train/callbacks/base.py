"""The shape of a training concern: hooks that get the ``Trainer``, and its own state.

A concern (checkpoint files, the metrics file, early stopping, the divergence check,
Lookahead, ...) is one class with its own state, as Keras' and Lightning's callbacks are: a
new trick touches one file. The trainer calls every concern's hook at the same points, in the
order of its list: the ones the config asks for, then those given to ``fit(callbacks=[...])``
(any ``Callback`` there is a concern: a tracker is one new class), then the progress events.
``state_dict`` holds what an exact resume needs; it goes into ``resume.pt`` under the
concern's own key (``state_key``, default its class name), and ``load_state_dict`` gets it
back (from a resume.pt made before the keys: the whole flat state, which holds the same names).

The progress displays and a user's own callbacks are the other kind: plain objects whose
``on_step(payload)``, ``on_epoch_end(row)``... get JSON-ready data, never the trainer.
"""

from __future__ import annotations

from typing import Any

from sightline.train.trainer_view import TrainerView


class Callback:
    """A training concern. Every hook is optional; ``trainer`` is the running ``Trainer``, seen
    through ``TrainerView`` (what a concern may read and change)."""

    state_key: str | None = None  # its key in resume.pt (None: the class name)

    def on_train_begin(self, trainer: TrainerView) -> None:
        """Before the first step (of a new run, or of a resumed one, after its state is loaded)."""

    def on_optimizer_step(self, trainer: TrainerView) -> None:
        """Right after each optimizer step (``trainer.global_step`` counts it)."""

    def on_step_end(self, trainer: TrainerView) -> None:
        """After each step's bookkeeping (``trainer.step_in_epoch``, ``epoch_time``)."""

    def on_sums(self, trainer: TrainerView, loss_sum: float, epoch_loss: float | None) -> None:
        """The epoch's running loss sum was read back (at most 10x a second); ``epoch_loss``:
        the epoch's mean loss, when the epoch has ended."""

    def on_epoch_end(self, trainer: TrainerView, row: dict[str, Any]) -> None:
        """An epoch ended and was validated: ``row`` is its line of the metrics (a concern may
        add to it: ``best``)."""

    def on_save(self, trainer: TrainerView, gen: Any) -> None:
        """The run's files are brought up to date: after an epoch, a stop, the end, a failure.
        ``gen``: the epoch's random generator, to resume mid-epoch (None at an epoch's end)."""

    def on_train_end(self, trainer: TrainerView) -> None:
        """Training ended, its files written: ``trainer.status`` says how (finished,
        early_stopped, max_steps, interrupted or failed)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """``state``: what ``state_dict`` returned when the checkpoint was saved."""
