"""Training progress for people and for scripts.

The training loop reports events to callbacks; these are the built-in ones:

* ``ProgressBar`` — a live bar on a terminal (epoch, step, loss, accuracy, images/s, ETA) and
  one Keras-style line per epoch; on a pipe or log file only the per-epoch lines.
* ``JsonLines`` — one JSON object per event on stdout, for scripts and the web UI's job worker.
* ``EventCallback`` — the same events as plain dicts to any function (``fit(on_event=...)``):
  ``{"kind": "step", "epoch": 1, "step": 120, "steps": 844, "loss": ..., "accuracy": ...,
  "images_per_sec": ..., "eta_seconds": ...}``; kinds: train_begin, step, epoch, message,
  train_end (and, from the pipeline, data, download, run, evaluation, report, done, failed).

A callback is any object with some of ``on_train_begin(info)``, ``on_step(state)``,
``on_epoch_end(row)``, ``on_train_end(summary)``, and ``on_message(text)``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import IO, Any


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_epoch_row(row: dict[str, Any], epochs: int) -> str:
    parts = [
        f"Epoch {row['epoch']}/{epochs}",
        f"{row['time']:.0f}s",
        f"loss {row['loss']:.4f}",
        f"accuracy {row['accuracy']:.4f}",
    ]
    if row.get("val_loss") is not None:
        parts += [f"val_loss {row['val_loss']:.4f}", f"val_accuracy {row['val_accuracy']:.4f}"]
    parts.append(f"{row['images_per_sec']:,.0f} img/s")
    line = " - ".join(parts)
    if row.get("best"):
        line += "  [best]"
    return line


class ProgressBar:
    """Live bar on a TTY (redrawn at most 10x a second), epoch lines everywhere."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        live: bool | None = None,
        width: int = 24,
        line_every: float = 5.0,
    ) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.width = width
        self.line_every = line_every  # without a live bar: a progress line this often in an epoch
        self._last_draw = self._last_line = time.monotonic()
        self.epochs = 0

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def on_message(self, text: str) -> None:
        self._clear()
        self._write(text + "\n")

    def on_train_begin(self, info: dict[str, Any]) -> None:
        self.epochs = info["epochs"]

    def on_step(self, s: dict[str, Any]) -> None:
        if not self.live:
            now = time.monotonic()
            if "loss" in s and s["step"] < s["steps"] and now - self._last_line >= self.line_every:
                self._last_line = now
                eta = (s["steps"] - s["step"]) / max(s["steps_per_sec"], 1e-9)
                self._write(
                    f"Epoch {s['epoch']}/{self.epochs} step {s['step']}/{s['steps']} - loss {s['loss']:.4f}"
                    f" - accuracy {s['accuracy']:.4f} - {s['images_per_sec']:,.0f} img/s"
                    f" - epoch ETA {format_duration(eta)}\n"
                )
            return
        now = time.monotonic()
        if (now - self._last_draw < 0.1 and s["step"] < s["steps"]) or "loss" not in s:
            return
        self._last_draw = now
        done = s["step"] / max(s["steps"], 1)
        filled = int(done * self.width)
        bar = "=" * filled + (">" if filled < self.width else "") + "." * (self.width - filled - 1)
        eta = (s["steps"] - s["step"]) / max(s["steps_per_sec"], 1e-9)
        self._write(
            f"\rEpoch {s['epoch']}/{self.epochs} [{bar}] {s['step']}/{s['steps']}"
            f" - loss {s['loss']:.4f} - accuracy {s['accuracy']:.4f}"
            f" - {s['images_per_sec']:,.0f} img/s - ETA {format_duration(eta)}\x1b[K"
        )

    def on_features(self, s: dict[str, Any]) -> None:
        """A frozen backbone's features being computed (train/frozen.py)."""
        if self.live:
            filled = int(s["done"] / max(s["total"], 1) * self.width)
            bar = "=" * filled + "." * (self.width - filled)
            self._write(
                f"\rFeatures ({s['split']}) [{bar}] {s['done']}/{s['total']} - "
                f"{s['images_per_sec']:,.0f} img/s\x1b[K"
            )

    def _clear(self) -> None:
        if self.live:
            self._write("\r\x1b[K")

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        self._clear()
        self._last_line = time.monotonic()
        self._write(format_epoch_row(row, self.epochs) + "\n")

    def on_train_end(self, summary: dict[str, Any]) -> None:
        self._clear()


class EventCallback:
    """The training loop's hooks as one stream of plain dicts, each with a ``kind``.

    Step events come at most every ``min_interval`` seconds (and at the last step of each
    epoch), with ``eta_seconds`` to the end of training and ``global_step``/``stop_step``.
    """

    def __init__(self, fn: Callable[[dict[str, Any]], None], min_interval: float = 0.25) -> None:
        self.fn = fn
        self.min_interval = min_interval
        self._last = 0.0
        self._info: dict[str, Any] = {}
        self._rate: float | None = None  # steps per second, from the last step event

    def on_message(self, text: str) -> None:
        self.fn({"kind": "message", "text": text})

    def on_train_begin(self, info: dict[str, Any]) -> None:
        self._info = dict(info)
        self.fn({"kind": "train_begin", **info})

    def on_step(self, s: dict[str, Any]) -> None:
        now = time.monotonic()
        if "loss" not in s or (now - self._last < self.min_interval and s["step"] < s["steps"]):
            return
        self._last = now
        self._rate = s["steps_per_sec"]
        done = (s["epoch"] - 1) * s["steps"] + s["step"]
        stop = self._info.get("stop_step", self._info.get("epochs", 1) * s["steps"])
        self.fn(
            {
                "kind": "step",
                **s,
                "global_step": done,
                "stop_step": stop,
                "eta_seconds": round(max(stop - done, 0) / max(self._rate, 1e-9), 1),
            }
        )

    def on_features(self, s: dict[str, Any]) -> None:
        self.fn({"kind": "features", **s})

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        event = {"kind": "epoch", **row, "epochs": self._info.get("epochs")}
        steps = self._info.get("steps_per_epoch")
        if self._rate and steps:
            left = self._info.get("stop_step", 0) - row["epoch"] * steps
            event["eta_seconds"] = round(max(left, 0) / self._rate, 1)
        self.fn(event)

    def on_train_end(self, summary: dict[str, Any]) -> None:
        self.fn({"kind": "train_end", **summary})


class JsonLines(EventCallback):
    """Machine-readable events, one JSON object per line (the ``EventCallback`` dicts)."""

    def __init__(self, stream: IO[str] | None = None, min_interval: float = 0.5) -> None:
        self.stream = stream or sys.stdout
        super().__init__(self._write, min_interval)

    def _write(self, event: dict[str, Any]) -> None:
        self.stream.write(json.dumps(event, default=str) + "\n")
        self.stream.flush()


def make_reporter(mode: str) -> list[Any]:
    """'auto'/'bar' → ProgressBar, 'lines' → epoch lines only, 'json' → JsonLines, 'quiet' → none."""
    if mode == "quiet":
        return []
    if mode == "json":
        return [JsonLines()]
    if mode == "lines":
        return [ProgressBar(live=False)]
    return [ProgressBar(live=True if mode == "bar" else None)]
