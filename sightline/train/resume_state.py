"""What ``resume.pt`` holds: a trainer's whole state, so a resumed run goes on bit for bit.

The model and optimizer, fp16's loss scale (``Precision``), the
global and CUDA random states, the position (epoch, step in it, global step; the learning rate
is a function of it), the epoch's own generator when stopped mid-epoch, the running sums and
time of the epoch, the history, each training concern's state under its own key
(``concerns``), and the world's own state.
Tensors and plain containers, loaded with ``weights_only`` (``run/checkpoint.py``): a
checkpoint runs no code.
"""

from __future__ import annotations

from typing import Any

import torch

from sightline.train.trainer_view import TrainerView

# the trainer's position, copied as they are
POSITION = ("epoch", "step_in_epoch", "global_step", "epoch_time", "history")


def concern_keys(trainer: TrainerView) -> list[tuple[str, Any]]:
    """(key, concern) for each training concern: its ``state_key`` (default its class name),
    numbered from the second of the same key on."""
    out, seen = [], {}
    for concern in trainer.concerns:
        key = getattr(concern, "state_key", None) or type(concern).__name__
        seen[key] = seen.get(key, 0) + 1
        out.append((key if seen[key] == 1 else f"{key}#{seen[key]}", concern))
    return out


def capture(trainer: TrainerView, gen: torch.Generator | None) -> dict[str, Any]:
    """The trainer's state; ``gen``: the epoch's generator when mid-epoch (None at its end)."""
    model = trainer.model.state_dict()
    state = {
        "model": {k: v.detach().cpu().contiguous() for k, v in model.items()},
        "optimizer": trainer.optimizer.state_dict(),
        **trainer.precision.state_dict(),
        "lookahead": None,  # the concerns' own state follows (Lookahead's, when it trains)
        "rng_cpu": torch.get_rng_state(),
        **{key: getattr(trainer, key) for key in POSITION},
        "epoch_generator": gen.get_state() if gen is not None else None,
        "sums": trainer.sums.detach().cpu().double(),
        "status": trainer.status,
        "config": trainer.cfg.to_dict(),
    }
    # Each concern's own state under its own key (as Lightning keeps its callbacks'): a new
    # concern (a tracker) adds a key, never a name that could clash with another's.
    state["concerns"] = {key: concern.state_dict() for key, concern in concern_keys(trainer)}
    if trainer.device.type == "cuda":
        state["rng_cuda"] = torch.cuda.get_rng_state(trainer.device)
    trainer.world.save_state(trainer, state)
    return state


def restore(trainer: TrainerView, state: dict[str, Any]) -> torch.Generator | None:
    """Put ``capture``'s state back into ``trainer``; returns the epoch's generator to go on
    with mid-epoch, else None (the next epoch seeds its own)."""
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.precision.load_state_dict(state)
    saved = state.get("concerns")
    for key, concern in concern_keys(trainer):
        # A resume.pt from before the concerns had keys holds their states flat beside the
        # trainer's: each concern read its own names from it, and still does.
        concern.load_state_dict(state if saved is None else saved.get(key, {}))
    torch.set_rng_state(state["rng_cpu"])
    if "rng_cuda" in state and trainer.device.type == "cuda":
        torch.cuda.set_rng_state(state["rng_cuda"], trainer.device)
    for key in POSITION:
        setattr(trainer, key, state[key])
    trainer.sums = state["sums"].to(trainer.device, trainer.sum_dtype)
    trainer.world.load_state(trainer, state)
    if state["epoch_generator"] is None:
        return None
    gen = torch.Generator()
    gen.set_state(state["epoch_generator"])
    return gen
