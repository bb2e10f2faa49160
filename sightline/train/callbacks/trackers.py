"""The experiment trackers the plan asks for (``--track``, ``plan/config.py``'s ``TRACKERS``):
one training concern each, added to the trainer's list (``train/loop.py``)."""

from __future__ import annotations

import os

from sightline.train.callbacks.base import Callback


def trackers(track: str | None, folder: str | os.PathLike | None = None) -> list[Callback]:
    """The concerns of ``track`` (None: none); ``folder``: where its files go, if not the run."""
    if track == "tensorboard":
        from sightline.train.callbacks.tensorboard import TensorBoardTracker

        return [TensorBoardTracker(folder)]
    return []
