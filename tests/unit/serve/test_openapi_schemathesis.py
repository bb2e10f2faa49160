"""The API's schema tells the truth (issue 52): schemathesis, a property-based API tester, reads
/openapi.json of a live server and sends every operation requests made from it, valid and
invalid, with all its checks: no 5xx, every status and content type answered is documented,
every request the schema calls valid is accepted and every one it calls invalid refused, and a
405 names in ``Allow`` exactly the methods the path takes.

The server is the real app under uvicorn on a free port of 127.0.0.1, on a runs folder with one
toy run (and a copy that DELETE may remove) and a folder of datasets with one small dataset; the
tester gets their names (``DICTIONARIES``) besides the values it makes up, so requests reach
real runs, classes and images, not only 404s. Not tested: queuing a training job (POST
/api/jobs starts one), starting an export (POST /api/runs/{id}/exports) and the job event
stream (it stays open while a job runs).

Deterministic: one worker, a fixed seed, no example database. Where the server refuses a request
the schema cannot call invalid (its state decides: a dataset name taken, a folder with no
images to check, a file that is not an image; or a name with a non-ASCII character that is no
letter, which JSON Schema's regexes cannot tell from one), ``ALSO_ACCEPTED`` says so, per
operation.

First, without a server: each pattern of ``core/params.py`` against the server's own check.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from PIL import Image  # noqa: E402
from test_train import fit_toy, make_dataset  # noqa: E402

from sightline.serve import create_app  # noqa: E402
from sightline.serve.core import params  # noqa: E402

MAX_EXAMPLES = 30  # per operation and phase: about a minute on 2 cores
# Another seed searches further: SIGHTLINE_SCHEMATHESIS_SEED=7 pytest this file
SEED = int(os.environ.get("SIGHTLINE_SCHEMATHESIS_SEED", "1"))
# POST .../exports starts an export (minutes for a large model), as POST /api/jobs starts a
# training: tests/unit/serve/test_serve_exports.py covers it.
NOT_TESTED = ("POST /api/jobs", "GET /api/jobs/{job_id}/events", "POST /api/runs/{run_id}/exports")

DICTIONARIES = {
    "runs": ["toy"],
    "datasets": ["shapes"],
    "classes": ["dark", "light"],
    "files": ["0.png", "1.png"],
    "plots": ["curves", "confusion"],
    "doomed": ["doomed"],  # DELETE /api/runs/{run_id}'s: the others keep reading "toy"
}
# Operations whose parameters take another dictionary than DICTIONARIES' defaults do.
OWN_DICTIONARIES = {
    "DELETE /api/runs/{run_id}": {"run_id": "doomed"},
    "GET /api/runs/{run_id}/plots/{name}.png": {"name": "plots"},
}
# Statuses a valid request may also get from these operations, besides schemathesis' own list
# (2xx, 3xx, 401, 403, 404, 409, 429, 5xx: 5xx is not_a_server_error's to report).
ALSO_ACCEPTED = {
    # not an image (415); a threshold for a run with no "none of these" score (400)
    "POST /api/predict": ["400", "415"],
    "POST /api/inspect": ["415"],
    # a class index (true, pred) the run does not have
    "GET /api/runs/{run_id}/test-images": ["400"],
    # the job request's own checks: an unknown dataset, a value given twice, ...
    "POST /api/jobs/plan": ["400"],
    # a dataset or class name taken, a class not there, a folder with no images to check; a
    # name with a non-ASCII character that is no letter nor digit (core/params.py)
    "POST /api/datasets/folder": ["400"],
    "POST /api/datasets/folder/{name}/classes": ["400"],
    "POST /api/datasets/folder/{name}/classes/{cls}/rename": ["400"],
    "POST /api/datasets/folder/{name}/check": ["400"],
}
POSITIVE_DEFAULT = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]


# ------------------------------------------------------------------ the patterns, one by one
def schema_accepts(schema: dict, text: str) -> bool:
    """Whether ``text`` is valid for ``schema`` (its pattern and maxLength) as a JSON Schema
    validator reads it: an ECMA-262 regex, searched, whose \\w and \\d are ASCII and whose
    closing $ is the end of the text."""
    pattern = schema["pattern"]
    pattern = pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern
    return re.search(pattern, text, re.ASCII) is not None and len(text) <= schema.get(
        "maxLength", math.inf
    )


def refused(check, *args) -> bool:
    try:
        check(*args)
    except Exception:  # noqa: BLE001 (each check's own error)
        return True
    return False


def texts() -> list[str]:
    """Texts to try: edge cases, then random ones (fixed seed) from ASCII and a few others."""
    edges = ["", " ", ".", "..", ".a", "a.", "a", " a ", "a\n", "\x1ca\x1f", "a\x00", "-a", "_",
             "a b", "a/b", "a\\b", "x.png", ".png", "X.PNG", "a.b.Jpeg", "x.png.", "x .png", "1_0",
             " 1e3 ", "1.", ".5", "-0", "1__0", "_1", "1e", "nan", "inf", "auto", "off", "plan",
             "é", "猫", "٣", "€", "\xa0a\u3000", "a\u2028b", "Ab3_-xYz9Ab3_-xY", "0" * 19, "9" * 20,
             *("a" * n for n in (63, 64, 65, 66, 255, 256))]  # fmt: skip
    alphabet = [chr(c) for c in range(128)] + list("éß猫٣€\xa0\u3000\u2028\u0085")
    frequent = list("aZ09_-. /\\\x00\n\x1fe+")  # the characters the rules are about
    rng = random.Random(0)
    drawn = [
        "".join(rng.choice(frequent if rng.random() < 0.6 else alphabet) for _ in range(n))
        for n in (rng.randint(1, 8) for _ in range(6000))
    ]
    return edges + drawn


def test_each_pattern_states_the_servers_own_check(tmp_path):
    """Over ASCII each pattern is the server's check exactly; beyond it, the schema takes at
    least what the server takes (``core/params.py``)."""
    from sightline.data.builder import class_image, clean_name
    from sightline.errors import RunNotFoundError
    from sightline.infer.predict import parse_unknown
    from sightline.run import run_id_path
    from sightline.serve.api.jobs import EVENT_NUMBER_PATTERN, event_number
    from sightline.serve.jobs.job import check_job_id

    def run_id(text: str) -> None:
        with contextlib.suppress(RunNotFoundError):  # a valid id of no run
            run_id_path(text, tmp_path / "runs")

    def overflows(text: str) -> bool:  # float() is infinite: refused, the pattern cannot say
        try:
            return math.isinf(float(text)) and "inf" not in text.lower()
        except ValueError:
            return False

    def plot_name(text: str) -> None:
        if not params.PLOT_NAME.fullmatch(text):
            raise ValueError(text)

    (tmp_path / "runs").mkdir()
    (tmp_path / "d" / "a").mkdir(parents=True)
    checks = {  # schema: (the server's check, exact beyond ASCII too)
        "run id": (params.RUN_ID_SCHEMA, run_id, True),
        "job id": (params.JOB_ID_SCHEMA, check_job_id, True),
        "name": (params.NAME_SCHEMA, lambda t: clean_name(t, "class"), False),
        "image file": (params.IMAGE_FILE_SCHEMA, lambda t: class_image(tmp_path / "d", "a", t), True),
        "plot": ({"pattern": f"^{params.PLOT_NAME.pattern}$"}, plot_name, True),
        "event": ({"pattern": EVENT_NUMBER_PATTERN}, lambda t: event_number(t, "after"), True),
        "threshold": ({"pattern": f"^(?:auto|off|{params.NUMBER_PATTERN})$"}, parse_unknown, False),
    }  # fmt: skip
    wrong = []
    for what, (schema, check, exact) in checks.items():
        for text in texts():
            says = not refused(check, text)
            if what == "threshold" and overflows(text):
                continue
            if says != schema_accepts(schema, text) and (exact or text.isascii() or says):
                wrong.append(f"{what}: {text!r}: server {'takes' if says else 'refuses'} it")
    assert not wrong, "\n".join(wrong[:40])


# ------------------------------------------------------------------ the live server
def config_toml() -> str:
    lines = []
    for name, values in DICTIONARIES.items():
        lines += [f"[dictionaries.{name}]", f"values = {values!r}".replace("'", '"'), ""]
    lines += ["[parameters]"]
    for param, dictionary in (
        ("run_id", "runs"),
        ("name", "datasets"),
        ("cls", "classes"),
        ("file", "files"),
    ):
        lines.append(f'"path.{param}" = {{ dictionary = "{dictionary}", probability = 0.5 }}')
    lines.append("")
    for operation, own in OWN_DICTIONARIES.items():
        bound = ", ".join(
            f'"path.{param}" = {{ dictionary = "{dictionary}", probability = 0.5 }}'
            for param, dictionary in own.items()
        )
        lines += [
            "[[operations]]",
            f'include-name = "{operation}"',
            f"parameters = {{ {bound} }}",
            "",
        ]
    for operation, statuses in ALSO_ACCEPTED.items():
        accepted = ", ".join(f'"{s}"' for s in [*POSITIVE_DEFAULT, *statuses])
        lines += [
            "[[operations]]",
            f'include-name = "{operation}"',
            f"checks.positive_data_acceptance.expected-statuses = [{accepted}]",
            "",
        ]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The base URL of a live server: one toy run, evaluated and with its report (and
    "doomed", its copy), and one dataset of two classes."""
    import uvicorn

    from sightline.report import write_report

    root = tmp_path_factory.mktemp("schemathesis")
    runs = root / "runs"
    data = make_dataset()
    run = fit_toy(data, runs, name="toy", epochs=1)
    run.evaluate(data)
    write_report(run, data)
    shutil.copytree(runs / "toy", runs / "doomed")
    for cls, value in (("dark", 10), ("light", 240)):
        folder = root / "mine" / "shapes" / cls
        folder.mkdir(parents=True)
        for i in range(3):
            Image.new("L", (16, 16), value + i).save(folder / f"{i}.png")
    app = create_app(runs_dir=runs, data_dirs=[root / "mine"], start_workers=False)
    # Port 0: a free one, which uvicorn binds (its own socket: TCP_NODELAY set on each
    # connection; on a plain socket.socket(), asyncio sets none, and each answer waits 40 ms).
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    served = uvicorn.Server(config)
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not served.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    port = served.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.should_exit = True
        thread.join(30)


def test_the_schema_tells_the_truth(server, tmp_path):
    pytest.importorskip("schemathesis")
    config = tmp_path / "schemathesis.toml"
    config.write_text(config_toml())
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color",
        "run", f"{server}/openapi.json", "--checks", "all",
        *(arg for name in NOT_TESTED for arg in ("--exclude-name", name)),
        "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1",
        "--generation-database", "none",
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    out = done.stdout + done.stderr
    if done.returncode != 0:  # its report: each failure, with the request that reproduces it
        start = out.find("=== FAILURES ===")
        report = out[out.rfind("\n", 0, start) + 1 :] if start >= 0 else out
        pytest.fail(f"schemathesis found the schema untrue (exit {done.returncode}):\n{report}")
    selected = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", out)
    assert selected, out  # every operation but NOT_TESTED was tested
    assert int(selected[1]) == int(selected[3]) == int(selected[2]) - len(NOT_TESTED), out
