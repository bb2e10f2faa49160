"""MLflow tracking of a training run (``--track mlflow``): one training concern that logs the
run to an MLflow tracking server or store as it trains.

What it logs, into one MLflow run named as the sightline run (in the experiment
``$MLFLOW_EXPERIMENT_NAME``, else "sightline"):

* the plan as parameters (``model``, ``model.width``, ``data.size``, ``lr``, ``epochs``, ...),
  its notes as the run's description, and where the run folder is (tag ``sightline.run``);
* ``train/loss`` at the optimizer steps it was read at, and ``epoch/<column>`` for every number
  of each epoch's row of ``metrics.csv``, at the epoch's number (the TensorBoard tracker's tags);
* after the evaluation, the test metrics, the report, plots and evaluations, and the model
  itself (``mlflow_results.py``: the pipeline calls it).

The store: ``--track-uri``, else ``$MLFLOW_TRACKING_URI``, else MLflow's own local default
(``sqlite:///mlflow.db`` in the working folder; no server needed), made absolute so a resumed run
logs to the same one. A resumed run continues the same MLflow run (its id is in this concern's
state in ``resume.pt`` and in the run's ``tracking.json``).

Nothing of MLflow runs in the training loop: records go to a queue that one thread sends, in
batches. When the server cannot be reached (or refuses a record) it warns once and training goes
on; the run folder stays the truth.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from sightline.errors import SightlineError
from sightline.train.callbacks.base import Callback
from sightline.train.callbacks.tracked_metrics import running_loss
from sightline.train.trainer_view import TrainerView

INSTALL_HINT = 'pip install mlflow (or "sightline[track]")'
EXPERIMENT = "sightline"  # the experiment's name without $MLFLOW_EXPERIMENT_NAME
EPOCH_TAGS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "time", "images_per_sec")
STATUS = {"interrupted": "KILLED", "failed": "FAILED"}  # MLflow's words; else FINISHED
FLUSH_SECONDS = 30.0  # the most the end of training waits for the records still queued
# MLflow's client retries a failed request 7 times with growing waits (minutes in all): a
# tracker that cannot be reached would hold the end of training that long. Its progress bars
# of artifact transfers would print over sightline's own lines. (A user's own setting wins.)
ENV_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
                "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}  # fmt: skip


def require_mlflow() -> Any:
    """The mlflow package; SightlineError naming it when it is missing."""
    try:
        import mlflow
    except ImportError:
        raise SightlineError(f"MLflow tracking needs the mlflow package: {INSTALL_HINT}") from None
    return mlflow


def tracking_uri(given: str | None = None) -> str:
    """The store to log to: ``given``, ``$MLFLOW_TRACKING_URI`` or MLflow's local default, with a
    local database's path made absolute."""
    uri = given or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(Path(uri[len("sqlite:///") :]).expanduser().resolve())
    return uri


def client(uri: str) -> Any:
    """MLflow's client of ``uri``, with bounded retries and no progress bars (``ENV_DEFAULTS``,
    unless set)."""
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    return require_mlflow().MlflowClient(tracking_uri=uri)


def plan_params(config: dict[str, Any]) -> dict[str, str]:
    """A run's ``config.json`` as MLflow parameters: ``model``, ``model.<option>``,
    ``data.<option>``, every training option by its name, and the recipe."""
    model, data, train = config.get("model", {}), config.get("data", {}), config.get("train", {})
    out = {"model": model.get("name")}
    out.update({f"model.{k}": v for k, v in (model.get("options") or {}).items()})
    out.update({f"data.{k}": v for k, v in data.items()})
    out.update({k: v for k, v in train.items() if k != "extra"})
    out["recipe"] = (train.get("extra") or {}).get("recipe")
    return {k: str(v)[:6000] for k, v in out.items()}  # MLflow's longest parameter value


class MLflowTracker(Callback):
    """Logs the run to MLflow at ``uri`` (see ``tracking_uri``) as it trains."""

    state_key = "mlflow"

    def __init__(self, uri: str | None = None, experiment: str | None = None) -> None:
        require_mlflow()  # a missing package, said at once
        self.uri = tracking_uri(uri) if uri else None  # None: the resumed run's, else the default
        self.experiment = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        self.run_id: str | None = None
        self.recorded: str | None = None  # the run id tracking.json holds
        self.sender: _Sender | None = None

    # ------------------------------------------------------------------ the hooks
    def on_train_begin(self, trainer: TrainerView) -> None:
        if not trainer.writes:  # one process of several writes the run (rank 0)
            return
        from sightline.run import Run

        self.uri = self.uri or tracking_uri()
        config = Run(trainer.run_dir).config
        notes = (config.get("train", {}).get("extra") or {}).get("notes") or []
        opening = dict(
            experiment=self.experiment,
            run_id=self.run_id,
            name=trainer.run_dir.name,
            params=plan_params(config),
            tags={
                "sightline.run": str(trainer.run_dir),
                "mlflow.source.name": "sightline",
                "mlflow.note.content": "\n".join(f"- {n}" for n in notes),
            },  # fmt: skip
        )
        self.sender = _Sender(self.uri, opening)

    def on_sums(self, trainer: TrainerView, loss_sum: float, epoch_loss: float | None) -> None:
        loss = running_loss(trainer, loss_sum, epoch_loss)
        if self.sender is None or loss is None:
            return
        self.sender.metric("train/loss", loss, trainer.global_step)

    def on_epoch_end(self, trainer: TrainerView, row: dict[str, Any]) -> None:
        if self.sender is None:
            return
        for tag in EPOCH_TAGS:
            value = row.get(tag)
            if isinstance(value, (int, float)):
                self.sender.metric(f"epoch/{tag}", value, row["epoch"])
        self._keep_record(trainer)

    def on_save(self, trainer: TrainerView, gen: Any) -> None:
        self._keep_record(trainer)

    def on_train_end(self, trainer: TrainerView) -> None:
        if self.sender is not None:
            self.sender.close(STATUS.get(trainer.status, "FINISHED"), FLUSH_SECONDS)
            self._keep_record(trainer)

    def state_dict(self) -> dict[str, Any]:
        if self.sender is not None:  # a resume must find the same MLflow run: its id first
            self.sender.opened.wait(FLUSH_SECONDS)
        run_id = self.sender.run_id if self.sender is not None else self.run_id
        return {"run_id": run_id, "uri": self.uri} if run_id else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id") or None
        self.uri = self.uri or state.get("uri") or None

    # ------------------------------------------------------------------ its own
    def _keep_record(self, trainer: TrainerView) -> None:
        """Say where the run is logged (``tracking.json``) once MLflow gave its id; warn once
        if the tracker failed."""
        sender = self.sender
        if sender is None:
            return
        if sender.run_id and sender.run_id != self.recorded:
            self.recorded = self.run_id = sender.run_id
            record = {"uri": self.uri, "run_id": sender.run_id,
                      "experiment_id": sender.experiment_id, "experiment": self.experiment}  # fmt: skip
            trainer.writer.write_tracking("mlflow", record)
        if sender.error and not sender.warned:
            sender.warned = True
            warnings.warn(
                f"MLflow tracking at {self.uri} failed ({sender.error}); training goes on, and "
                "the run folder keeps every number",
                stacklevel=2,
            )


class _Sender:
    """One thread that opens the MLflow run and sends the queued records in batches; after an
    error it drops the rest (``error`` says why)."""

    def __init__(self, uri: str, opening: dict[str, Any]) -> None:
        self.uri, self.opening = uri, opening
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.error: str | None = None
        self.warned = False
        self.opened = threading.Event()  # the MLflow run is open, or cannot be
        self.queue: queue.Queue[Any] = queue.Queue()
        self.thread = threading.Thread(target=self._work, name="sightline-mlflow", daemon=True)
        self.thread.start()

    def metric(self, key: str, value: float, step: int) -> None:
        if self.error is None:
            self.queue.put(("metric", key, float(value), int(step), int(time.time() * 1000)))

    def close(self, status: str, timeout: float) -> None:
        """End the MLflow run as ``status`` once everything queued is sent, waiting at most
        ``timeout`` seconds; the thread then stops."""
        done = threading.Event()
        self.queue.put(("end", status, done))
        if not done.wait(timeout) and self.error is None:
            self.error = f"records still unsent after {timeout:.0f} s"

    def _work(self) -> None:
        mlflow_client = None
        while True:
            items = [self.queue.get()]
            while not self.queue.empty():
                items.append(self.queue.get_nowait())
            try:
                if self.error is None:
                    mlflow_client = mlflow_client or self._open()
                    self._send(mlflow_client, items)
            except Exception as e:  # noqa: BLE001 - any failure of the tracker: said once, dropped
                self.error = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
            self.opened.set()
            for item in items:
                if item[0] == "end":
                    item[2].set()
                    return

    def _open(self) -> Any:
        c, o = client(self.uri), self.opening
        run = None
        if o["run_id"]:
            try:
                run = c.get_run(o["run_id"])
            except Exception:  # noqa: BLE001 - gone from this store: a new run
                run = None
        if run is not None:
            c.update_run(run.info.run_id, status="RUNNING")
        else:
            found = c.get_experiment_by_name(o["experiment"])
            experiment_id = found.experiment_id if found else c.create_experiment(o["experiment"])
            run = c.create_run(experiment_id, run_name=o["name"], tags=o["tags"])
            from mlflow.entities import Param

            params = [Param(k, v) for k, v in o["params"].items()]
            for i in range(0, len(params), 100):  # MLflow's most parameters per batch
                c.log_batch(run.info.run_id, params=params[i : i + 100])
        self.experiment_id, self.run_id = run.info.experiment_id, run.info.run_id
        return c

    def _send(self, c: Any, items: list[Any]) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(key, value, ts, step) for kind, key, value, step, ts in
                   (i for i in items if i[0] == "metric")]  # fmt: skip
        for i in range(0, len(metrics), 1000):  # MLflow's most metrics per batch
            c.log_batch(self.run_id, metrics=metrics[i : i + 1000])
        for item in items:
            if item[0] == "end":
                c.set_terminated(self.run_id, item[1])
                return
