"""Training progress for people and for scripts.

The training loop reports events to callbacks; these are the built-in ones:

* ``ProgressBar`` — a live bar on a terminal (epoch, step, loss, accuracy, images/s, ETA) and
  one Keras-style line per epoch; on a pipe or log file only the per-epoch lines.
* ``JsonLines`` — one JSON object per event on stdout, for scripts and the web UI's job worker.

A callback is any object with some of ``on_train_begin(info)``, ``on_step(state)``,
``on_epoch_end(row)``, ``on_train_end(summary)``, and ``on_message(text)``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_epoch_row(row: dict[str, Any], epochs: int) -> str:
    parts = [f"Epoch {row['epoch']}/{epochs}", f"{row['time']:.0f}s", f"loss {row['loss']:.4f}", f"accuracy {row['accuracy']:.4f}"]
    if row.get("val_loss") is not None:
        parts += [f"val_loss {row['val_loss']:.4f}", f"val_accuracy {row['val_accuracy']:.4f}"]
    parts.append(f"{row['images_per_sec']:,.0f} img/s")
    line = " - ".join(parts)
    if row.get("best"):
        line += "  [best]"
    return line


class ProgressBar:
    """Live bar on a TTY (redrawn at most 10x a second), epoch lines everywhere."""

    def __init__(self, stream: IO[str] | None = None, live: bool | None = None, width: int = 24) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.width = width
        self._last_draw = 0.0
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

    def _clear(self) -> None:
        if self.live:
            self._write("\r\x1b[K")

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        self._clear()
        self._write(format_epoch_row(row, self.epochs) + "\n")

    def on_train_end(self, summary: dict[str, Any]) -> None:
        self._clear()


class JsonLines:
    """Machine-readable events, one JSON object per line."""

    def __init__(self, stream: IO[str] | None = None, every_steps: int = 50) -> None:
        self.stream = stream or sys.stdout
        self.every_steps = every_steps

    def _emit(self, event: str, data: dict[str, Any]) -> None:
        self.stream.write(json.dumps({"event": event, **data}) + "\n")
        self.stream.flush()

    def on_message(self, text: str) -> None:
        self._emit("message", {"text": text})

    def on_train_begin(self, info: dict[str, Any]) -> None:
        self._emit("train_begin", info)

    def on_step(self, s: dict[str, Any]) -> None:
        if (s["step"] % self.every_steps == 0 or s["step"] == s["steps"]) and "loss" in s:
            self._emit("step", s)

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        self._emit("epoch", row)

    def on_train_end(self, summary: dict[str, Any]) -> None:
        self._emit("train_end", summary)


def make_reporter(mode: str) -> list[Any]:
    """'auto'/'bar' → ProgressBar, 'lines' → epoch lines only, 'json' → JsonLines, 'quiet' → none."""
    if mode == "quiet":
        return []
    if mode == "json":
        return [JsonLines()]
    if mode == "lines":
        return [ProgressBar(live=False)]
    return [ProgressBar(live=True if mode == "bar" else None)]
