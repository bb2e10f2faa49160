"""The run: a folder that holds everything one training run made, and the only code that reads
or writes it.

    layout           every file name of a run folder, in one place
    folders          where runs live, ids from clients, creating, writing and removing folders
    run              ``Run``: a run folder opened (config, status, history, models, evaluate, predict)
    listing          load_run, list_runs, latest_run, find_run, delete_run, status_words
    checkpoint       model files (safetensors) and the resume state, never executing code on load
    evaluations      saved evaluations, one per source; evaluation_source: what was evaluated
    export           ONNX export with its parity check; exported: loading it, auto_engine's timing
    exports          every format (onnx, onnx-int8, openvino...) checked beside PyTorch, report.json;
    export_check     the check images, PyTorch's answers once, an export's parity and accuracy;
                     quantize: the INT8 copy (ONNX Runtime's static quantisation)
    predictor        ``Run.predictor``: the engine a run's predictions run on, chosen once
    summary          a run as one JSON-ready summary (``Run.to_dict``)
    writer           ``RunWriter``: the one writer of a run folder; ``RunStatus``: status.json's one shape

Importing this package does not import PyTorch.
"""

from typing import TYPE_CHECKING

from sightline._lazy import lazy_exports
from sightline.run.evaluations import LOGITS, TEST_KEY, load_logits, read_evaluation, source_key
from sightline.run.folders import (
    MAX_RUN_NAME,
    RUN_ID,
    RUN_NAME,
    RUNS_DIR_ENV,
    default_run_name,
    default_runs_dir,
    is_run_folder,
    link_entries,
    new_run_dir,
    remove_folder,
    run_id_path,
    run_path,
    runs_root,
    training_process,
    training_process_gone,
    write_run_config,
    write_status,
)
from sightline.run.layout import CHECKPOINTS, ENGINE_EXPORTS, ENGINES, PLOTS, REPORT, RunLayout
from sightline.run.listing import (
    delete_run,
    find_run,
    latest_run,
    list_runs,
    load_run,
    status_words,
)
from sightline.run.run import ENDED, Run
from sightline.run.writer import KEYS_OF_STATUS, METRIC_COLUMNS, RunStatus, RunWriter

__all__ = [
    "CHECKPOINTS",
    "ENDED",
    "PLOTS",
    "REPORT",
    "LOGITS",
    "TEST_KEY",
    "load_logits",
    "read_evaluation",
    "source_key",
    "KEYS_OF_STATUS",
    "METRIC_COLUMNS",
    "RunStatus",
    "RunWriter",
    "RunLayout",
    "MAX_RUN_NAME",
    "RUNS_DIR_ENV",
    "RUN_ID",
    "RUN_NAME",
    "Run",
    "default_run_name",
    "default_runs_dir",
    "delete_run",
    "find_run",
    "is_run_folder",
    "latest_run",
    "link_entries",
    "list_runs",
    "load_run",
    "new_run_dir",
    "remove_folder",
    "run_id_path",
    "run_path",
    "runs_root",
    "status_words",
    "training_process",
    "training_process_gone",
    "write_run_config",
    "write_status",
    "ENGINES",
    "ENGINE_EXPORTS",
    "export_onnx",
    "export_path",
    "parse_formats",
    "record_onnx",
    "EXPORT_FORMATS",
    "file_predictor",
    "predict_flag",
    "require_runtime",
    "load_model",
    "open_predictor",
]

# Names whose modules import PyTorch: imported on first use.
_EXPORTS = {
    "export_onnx": "sightline.run.export_api",
    "load_model": "sightline.run.checkpoint",
    "file_predictor": "sightline.run.predictor",
    "predict_flag": "sightline.run.predictor",
    "require_runtime": "sightline.run.predictor",
    "open_predictor": "sightline.run.predictor",
    "export_path": "sightline.run.exported",
    "parse_formats": "sightline.run.exports",
    "record_onnx": "sightline.run.exports",
    "EXPORT_FORMATS": "sightline.run.exports",
}
if TYPE_CHECKING:
    from sightline.run.checkpoint import load_model
    from sightline.run.export_api import export_onnx
    from sightline.run.exported import export_path
    from sightline.run.exports import EXPORT_FORMATS, parse_formats, record_onnx
    from sightline.run.predictor import (
        file_predictor,
        open_predictor,
        predict_flag,
        require_runtime,
    )
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
