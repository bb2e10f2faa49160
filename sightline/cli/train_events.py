"""What ``sightline train`` prints of a training job's events: JSON lines with ``--json``,
else the data, model and recipe notes, the run folder and the results (the training's own bar
and epoch lines come from ``--progress``). Human messages go to stderr in JSON mode."""

from __future__ import annotations

import json
import sys
from typing import Any


def event_printer(progress: str, say):
    """The job's events as the command line shows them: JSON lines with --json, else the
    pipeline's own messages (the training bar and epoch lines come from --progress)."""
    from sightline.run import status_words

    if progress == "json":

        def emit(event: dict[str, Any]) -> None:
            print(json.dumps(event, default=str), flush=True)

        return emit

    def show(event: dict[str, Any]) -> None:
        kind = event["kind"]
        if kind == "data":
            say(event["description"])
            for path, reason in event["skipped"]:
                say(f"  skipped {path}: {reason}")
            if event["skipped_count"] > len(event["skipped"]):
                say(
                    f"  ... and {event['skipped_count'] - len(event['skipped'])} more skipped files"
                )
        elif kind == "model":
            say(
                f"Model {event['name']}: {event['parameters']:,} parameters ({event['trainable']:,} trainable)"
            )
        elif kind == "run":
            say(f"Run folder: {event['run_dir']}")
        elif kind == "message" and (
            event.get("topic")
            or event["text"].startswith(("Resuming", "No test split", "No validation split"))
        ):
            say(
                ("  " if event.get("topic") else "") + event["text"]
            )  # data and recipe notes: under the data line
        elif kind == "train_end":
            say(f"Training {status_words(event)}")
        elif kind == "calibration" and event.get("skipped"):
            say(f"Calibration skipped: {event['skipped']}")
        elif kind == "calibration":
            say(
                f"Calibrated on {event['fitted_on']} ({event['method']}): "
                f"ECE {event['ece_before']:.2%} -> {event['ece_after']:.2%}"
            )
        elif kind == "evaluation":
            balanced = event.get("balanced_accuracy")
            say(
                f"Test accuracy: {event['accuracy']:.4f}  (loss {event['loss']:.4f}, {event['count']:,} images)"
                + (f"; balanced accuracy {balanced:.4f}" if balanced is not None else "")
            )
            clean = event.get("without_copies")
            if clean:
                say(f"  without the {clean['copies']:,} copies of training images found in test: "
                    f"{clean['accuracy']:.4f} ({clean['count']:,} images)")  # fmt: skip
            say(f"Metrics: {event['path']}")
        elif kind == "report":
            say(f"Plots: {event['plots']}")
            say(f"Report: {event['path']}")

    return show


def printer(progress: str):
    # Human messages go to stderr in JSON mode (stdout is for the JSON stream), else stdout.
    stream = sys.stderr if progress == "json" else sys.stdout

    def say(msg: str) -> None:
        if progress != "quiet" or msg.startswith(("Test accuracy", "Run saved", "Report")):
            print(msg, file=stream, flush=True)

    return say
