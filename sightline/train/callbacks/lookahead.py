"""Lookahead (``cfg.lookahead``) as a training concern: after each optimizer step the network
may be pulled back onto its slow weights (``sightline.train.lookahead``), which are part of the
resume state, so a resumed run ends with the same weights."""

from __future__ import annotations

from typing import Any

from torch import nn

from sightline.errors import RunError
from sightline.train.callbacks.base import Callback
from sightline.train.lookahead import Lookahead
from sightline.train.trainer_view import TrainerView


class LookaheadAveraging(Callback):
    def __init__(self, model: nn.Module) -> None:
        self.lookahead = Lookahead(model)

    def restart(self, model: nn.Module) -> None:
        """Slow weights from ``model`` as it is now (under torchrun: after DDP broadcast rank 0's)."""
        self.lookahead = Lookahead(model)

    def on_optimizer_step(self, trainer: TrainerView) -> None:
        self.lookahead.after_step(trainer.model, trainer.global_step, trainer.total_steps)

    def state_dict(self) -> dict[str, Any]:
        return {"lookahead": self.lookahead.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("lookahead") is None:
            raise RunError(
                "the resume state holds no Lookahead weights, though the run's config.json trains "
                "with them: the two files are from different runs; start the run again"
            )
        self.lookahead.load_state_dict(state["lookahead"])
