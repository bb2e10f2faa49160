"""A run as one JSON-ready summary: what the CLI's ``runs`` and the web's run list show."""

from __future__ import annotations

from typing import Any

# ``run``: a ``sightline.run.Run`` (not imported: Run.to_dict calls into here)
Run = Any


def run_summary(run: Run) -> dict[str, Any]:
    """Name, status, model, data, progress, best value and test results of ``run``."""
    st = run.status
    out: dict[str, Any] = {
        "name": run.name,
        "path": str(run.path.resolve()),
        "status": st.get("status"),
        "error": st.get("error"),
    }
    if run.problem:
        return out
    data = run.config.get("data", {})
    train = run.config.get("train", {})
    ev = run.evaluation or {}
    out.update(
        {
            "created": run.config.get("created"),
            "model": run.config.get("model", {}).get("name"),
            "dataset": data.get("name_or_path"),
            "classes": data.get("classes"),
            "epochs_done": st.get("epochs_done", 0),
            "epochs": st.get("epochs", train.get("epochs")),
            "monitor": st.get("monitor"),
            "best_value": st.get("best_value"),
            "best_epoch": st.get("best_epoch"),
            "test_accuracy": ev.get("accuracy"),
            "test_loss": ev.get("loss"),
            "test_ece": ev.get("ece"),  # how far its probabilities can be trusted
            "test_ece_floor": ev.get("ece_floor"),  # what sampling alone would show
            "has_validation": has_validation(run),
        }
    )
    return out


def has_validation(run: Run) -> bool | None:
    """Whether the run validated: a val_ value in its last epoch's status (None: no epoch
    yet). The status, not metrics.csv: a run listing reads one small file per run."""
    last = run.status.get("last")
    if not isinstance(last, dict):
        return None
    return any(v is not None for k, v in last.items() if k.startswith("val_"))
