"""Label Studio's JSON, both ways, for teams that label there: the waiting images as tasks with
the loop's suggestions as pre-annotations (``predictions``: the class and its calibrated
probability), the labelling config that goes with them, and the exported annotations read back
as labels (moves through the journal, one Undo). Images are named as Label Studio's local-files
storage serves them (``/data/local-files/?d=FOLDER/PATH``, with the dataset's parent folder as
its document root), and each task also carries sightline's own path of it (``sightline_path``),
which is what the import trusts: a task naming no image waiting in the folder is skipped, with
why."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse
from xml.sax.saxutils import quoteattr

from sightline.errors import DataError
from sightline.labelling.loop import APART, Labeller

FROM, TO = "choice", "image"  # the config's control and object names
APART_CHOICE = "(not any class)"
MAX_TASKS_BYTES = 256 * 1024 * 1024  # an export file read back: larger is refused


def tasks(loop: Labeller) -> list[dict[str, Any]]:
    """A Label Studio task per waiting image, with the loop's suggestion where it has a model."""
    s = loop.refresh()
    out = []
    for row, path in enumerate(s.waiting):
        task: dict[str, Any] = {
            "data": {
                TO: f"/data/local-files/?d={quote(f'{loop.root.name}/{path}')}",
                "sightline_path": path,
            }
        }
        if s.answers is not None:
            p = s.answers.probs[row]
            best = int(p.argmax())
            task["predictions"] = [{
                "model_version": "sightline-labelling",
                "score": round(float(p[best]), 4),
                "result": [{"from_name": FROM, "to_name": TO, "type": "choices",
                            "value": {"choices": [s.classes[best]]}}],
            }]  # fmt: skip
        out.append(task)
    return out


def config(classes: list[str]) -> str:
    """The labelling config (Label Studio's XML) the tasks are made for."""
    choices = "\n".join(f"    <Choice value={quoteattr(c)}/>" for c in [*classes, APART_CHOICE])
    return (
        f'<View>\n  <Image name="{TO}" value="${TO}"/>\n'
        f'  <Choices name="{FROM}" toName="{TO}" choice="single" showInLine="true">\n'
        f"{choices}\n  </Choices>\n</View>\n"
    )


def export_label_studio(loop: Labeller, out: str | os.PathLike) -> dict[str, Any]:
    """Write ``out`` (the tasks) and ``out``'s ``.xml`` beside it (the config)."""
    from sightline.fileio import atomic_write_bytes, atomic_write_json

    out = Path(out)
    made = tasks(loop)
    atomic_write_json(out, made)
    atomic_write_bytes(out.with_suffix(".xml"), config(loop.refresh().classes).encode())
    return {"tasks": len(made), "file": str(out), "config": str(out.with_suffix(".xml"))}


def read_annotations(source: str | os.PathLike) -> list[dict[str, Any]]:
    path = Path(source)
    try:
        if path.stat().st_size > MAX_TASKS_BYTES:
            raise DataError(f"{path} is over {MAX_TASKS_BYTES // 2**20} MB: export fewer tasks")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read {path} as Label Studio's JSON export: {e}") from None
    if not isinstance(data, list):
        raise DataError(f"{path} is not Label Studio's JSON export (a list of tasks)")
    return data


def labels_of(loop: Labeller, exported: list[Any]) -> tuple[dict[str, str | None], list[str]]:
    """({path: class or None (not any class)}, the tasks skipped, each with why) from Label
    Studio's exported tasks: each task's last annotation not cancelled."""
    waiting = set(loop.refresh().waiting)
    labels: dict[str, str | None] = {}
    skipped: list[str] = []
    for i, task in enumerate(exported):
        where = f"task {task.get('id', i + 1) if isinstance(task, dict) else i + 1}"
        path = _path_of(task, loop.root.name) if isinstance(task, dict) else None
        if path is None or path not in waiting:
            skipped.append(
                f"{where}: names no image waiting in {loop.root.name} ({path or 'no path'})"
            )
            continue
        choice = _choice(task)
        if choice is None:
            skipped.append(f"{where} ({path}): no annotation with one choice")
            continue
        labels[path] = None if choice == APART_CHOICE else choice
    return labels, skipped


def import_label_studio(loop: Labeller, source: str | os.PathLike) -> dict[str, Any]:
    """Label the waiting images Label Studio's export ``source`` annotates (one journal)."""
    labels, skipped = labels_of(loop, read_annotations(source))
    if not labels:
        raise DataError(
            "no annotation to import: " + ("; ".join(skipped[:3]) if skipped else "no tasks")
        )
    journal = loop.set(labels)
    apart = sum(1 for v in labels.values() if v is None)
    return {**journal, "skipped": skipped, "apart": apart, "why": APART}


def _path_of(task: dict[str, Any], folder: str) -> str | None:
    data = task.get("data")
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("sightline_path"), str):
        return data["sightline_path"]
    image = data.get(TO)
    if not isinstance(image, str):
        return None
    named = parse_qs(urlparse(image).query).get("d", [""])[0]
    prefix = folder + "/"
    return named[len(prefix) :] if named.startswith(prefix) else None


def _choice(task: dict[str, Any]) -> str | None:
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict)]
    for annotation in reversed(annotations):  # the last one a person made stands
        if annotation.get("was_cancelled"):
            continue
        for result in annotation.get("result") or []:
            choices = (
                (result.get("value") or {}).get("choices") if isinstance(result, dict) else None
            )
            if isinstance(choices, list) and len(choices) == 1 and isinstance(choices[0], str):
                return choices[0]
    return None
