"""Ctrl-C during training: finish the step, save everything, stop (resumable)."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator

from sightline.train.trainer_view import TrainerView


@contextlib.contextmanager
def graceful_sigint(trainer: TrainerView, repeat_window: float = 0.0) -> Iterator[None]:
    """First Ctrl-C: ``trainer.stop_requested`` is set, so the loop stops between two steps
    with everything saved. A second one aborts at once, unless it comes within
    ``repeat_window`` seconds: under torchrun every rank gets the terminal's SIGINT and then
    the launcher's copy of it, which are one Ctrl-C. Only the main thread can take signals;
    elsewhere (the web server's worker thread) ``should_stop`` does the stopping."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    first = [0.0]

    def handler(signum, frame):  # noqa: ARG001
        now = time.monotonic()
        if trainer.stop_requested:
            if now - first[0] <= repeat_window:
                return
            raise KeyboardInterrupt
        trainer.stop_requested = True
        first[0] = now
        if repeat_window <= 0:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
