"""torchrun + DistributedDataParallel on CPU (gloo): real processes, small generated data.

Tolerances: 2 processes and 1 process add the same numbers in another order (the gradient
all-reduce, SyncBatchNorm's sums), so their weights after these 20 SGD steps agree to ~3e-6
(measured; one process with 1 or 2 threads differs as much); the tests allow 1e-4. Rounding
differences grow with training: at lr 0.1 for 26 steps both pairs differ by ~0.1 on BatchNorm
running variances of ~8. A run resumed with the same number of processes repeats the same
arithmetic: bit for bit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from sightline.cli.launch import without_launch_options
from sightline.errors import ConfigError
from sightline.train import distributed
from sightline.train.distributed import sync_batchnorm

ROOT = Path(__file__).resolve().parents[3]
WORKER = Path(__file__).resolve().parents[2] / "distributed_worker.py"
# Uneven rows (31 = 16 + 15, a last batch of 6 = 3 + 3), shifts and flips, BatchNorm synced.
# float32 (amp False) even on an AMX CPU: one and two processes must agree to float tolerance,
# which bf16's rounding of differently split batches would not.
TRAIN = {
    "epochs": 2,
    "batch_size": 31,
    "optimizer": "sgd",
    "lr": 0.05,
    "translate": 1,
    "flip": True,
    "seed": 3,
    "device": "cpu",
    "amp": False,
}


def _env() -> dict[str, str]:
    # A hung collective fails within a minute instead of the default 5; no stray GPU use.
    return {
        **os.environ,
        distributed.TIMEOUT_ENV: "60",
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
    }


def _worker(spec: dict, nproc: int, tmp: Path) -> dict[int, dict]:
    """Run the worker in ``nproc`` processes (1: plain python, no torchrun); returns each rank's log."""
    log_dir = tmp / f"logs-{spec.get('name', 'resume')}-{nproc}-{time.monotonic_ns()}"
    log_dir.mkdir()
    spec = {"runs_dir": str(tmp / "runs"), "log_dir": str(log_dir), **spec}
    launcher = (
        [sys.executable] if nproc == 1 else distributed.torchrun_command(nproc, [])[:-2]
    )  # without "-m sightline"
    cmd = [*launcher, str(WORKER), json.dumps(spec)]
    done = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-20_000:]
    return {
        int(p.stem.split("rank")[1]): json.loads(p.read_text())
        for p in log_dir.glob("writes-rank*.json")
    }


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "last.safetensors")


def _metrics(run: Path) -> list[list[float]]:
    lines = (run / "metrics.csv").read_text().splitlines()[1:]
    return [
        [float(v) for v in line.split(",")[1:5]] for line in lines
    ]  # loss, accuracy, val_loss, val_acc


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One process; two processes; two stopped by rank 0 mid-epoch 1, then resumed by two
    processes and (a copy) by one."""
    tmp = tmp_path_factory.mktemp("ddp")
    out: dict[str, Path] = {}
    for name, nproc in (("one", 1), ("two", 2)):
        logs = _worker({"name": name, "n_per_class": 96, "train": TRAIN}, nproc, tmp)
        out[name] = Path(logs[0]["run"])
        out[f"{name}-logs"] = logs  # type: ignore[assignment]
    # 288 images / 31 = 10 steps an epoch; stop requests are shared every 8 steps: step 8 stops.
    _worker({"name": "cut", "n_per_class": 96, "stop_after": 1, "train": TRAIN}, 2, tmp)
    cut = tmp / "runs" / "cut"
    out["cut-status"] = json.loads((cut / "status.json").read_text())  # type: ignore[assignment]
    copy = tmp / "runs" / "cut-copy"
    subprocess.run(["cp", "-r", str(cut), str(copy)], check=True)
    _worker({"n_per_class": 96, "resume": str(cut)}, 2, tmp)
    _worker({"n_per_class": 96, "resume": str(copy)}, 1, tmp)
    out["resumed-two"], out["resumed-one"] = cut, copy
    return out


def test_two_processes_take_the_single_process_steps(runs):
    one, two = _weights(runs["one"]), _weights(runs["two"])
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-4, msg=key)
    # Not trivially equal: the weights did move from their initial values, differently per layer.
    assert not torch.equal(one["classifier.weight"], torch.zeros_like(one["classifier.weight"]))
    # The epoch metrics are all-reduced over the ranks: the same numbers as one process's.
    torch.testing.assert_close(
        torch.tensor(_metrics(runs["two"])), torch.tensor(_metrics(runs["one"])), rtol=0, atol=1e-4
    )
    config = json.loads((runs["two"] / "config.json").read_text())["train"]
    assert config["sync_bn"] is True  # 15-16 images per process: on by default, and recorded
    assert config["extra"]["distributed"] == {
        "world_size": 2,
        "backend": "gloo",
        "per_rank_batch": "15-16",
    }


def test_only_rank_zero_writes(runs):
    logs = runs["two-logs"]
    assert sorted(logs) == [0, 1] and logs[1]["world_size"] == 2
    assert logs[1]["writes"] == []  # no file, folder or rename under the runs folder
    # Atomic writes: a hidden ".NAME.random.part" file renamed to NAME.
    written = {
        Path(p).name[1:].rsplit(".", 2)[0] for _, p in logs[0]["writes"] if p.endswith(".part")
    }
    assert {
        "config.json",
        "last.safetensors",
        "best.safetensors",
        "resume.pt",
        "status.json",
    } <= written
    assert logs[1]["run"] == logs[0]["run"]  # every rank trained into rank 0's folder


def test_rank_zero_stop_stops_every_rank_and_resume_is_exact(runs):
    status = runs["cut-status"]
    assert (
        status["status"] == "interrupted"
        and status["global_step"] == 8
        and status["epochs_done"] == 0
    )
    full, resumed = _weights(runs["two"]), _weights(runs["resumed-two"])
    for key in full:  # same world size: the same arithmetic, bit for bit
        assert torch.equal(resumed[key], full[key]), key
    assert _metrics(runs["resumed-two"]) == _metrics(runs["two"])
    # Another world size: the same data order and schedule, weights within float tolerance.
    other = _weights(runs["resumed-one"])
    for key in full:
        torch.testing.assert_close(other[key], full[key], rtol=1e-4, atol=1e-4, msg=key)


def test_lookahead_and_alternating_flips_under_two_processes_resume_bit_exact(tmp_path):
    # Syncs after steps 5, 10, 15 and 20; rank 0 stops the run at step 8, so the sync at step 10
    # needs the slow weights from the checkpoint, and the second epoch mirrors the images the
    # first did not. (Not compared with one process: a 1e-6 rounding difference flips a
    # max-pool's choice in this toy net, and the runs then part by ~5e-4.)
    train = {**TRAIN, "lookahead": True, "alternate_flip": True}
    full = Path(_worker({"name": "la", "n_per_class": 96, "train": train}, 2, tmp_path)[0]["run"])
    _worker({"name": "la-cut", "n_per_class": 96, "stop_after": 1, "train": train}, 2, tmp_path)
    cut = tmp_path / "runs" / "la-cut"
    assert json.loads((cut / "status.json").read_text())["global_step"] == 8
    _worker({"n_per_class": 96, "resume": str(cut)}, 2, tmp_path)
    a, b = _weights(full), _weights(cut)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    config = json.loads((full / "config.json").read_text())["train"]
    assert config["lookahead"] is True and config["alternate_flip"] is True


def test_airnet_whose_whitening_bias_stops_learning_trains_under_two_processes(tmp_path):
    """From its 4th epoch airnet's stem bias gets no gradient (optim.limit_learning): DDP must
    be told that a parameter may go unused, or the next step waits for its reduction forever
    (an error). Under two processes the run ends with the bias of one process's run."""
    spec = {"model": "airnet", "model_options": {"width": 8}, "n_per_class": 32,
            "train": {**TRAIN, "epochs": 4}}  # fmt: skip
    two = Path(_worker({**spec, "name": "air-two"}, 2, tmp_path)[0]["run"])
    one = Path(_worker({**spec, "name": "air-one"}, 1, tmp_path)[0]["run"])
    assert json.loads((two / "status.json").read_text())["status"] == "finished"
    bias_two, bias_one = _weights(two)["whiten.bias"], _weights(one)["whiten.bias"]
    torch.testing.assert_close(bias_two, bias_one, rtol=1e-3, atol=1e-3)
    assert not torch.equal(bias_one, torch.zeros_like(bias_one))  # it did learn at first


def _image_folder(root: Path, per_class: int = 24) -> Path:
    """train/ and test/ of three classes of 16x16 PNGs: a bright square in one quadrant."""
    g = torch.Generator().manual_seed(1)
    for split, n in (("train", per_class), ("test", per_class // 2)):
        for c in range(3):
            (root / split / f"c{c}").mkdir(parents=True)
            for i in range(n):
                a = torch.randint(0, 60, (16, 16), generator=g, dtype=torch.uint8)
                r, q = divmod(c, 2)
                a[r * 8 : r * 8 + 8, q * 8 : q * 8 + 8] += 180
                Image.fromarray(a.numpy()).save(root / split / f"c{c}" / f"{i}.png")
    return root


def _sightline(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sightline", *args],
        cwd=cwd,
        env=_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_multi_node_form_runs_the_same_command(tmp_path):
    """Two "machines" (two torchrun agents on this one) meeting through c10d rendezvous: each
    rank is its machine's first process (LOCAL_RANK 0), and still only global rank 0 writes."""
    import socket

    folder = _image_folder(tmp_path / "squares")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "2",
        "--nproc_per_node",
        "1",
        "--rdzv_backend",
        "c10d",
        "--rdzv_endpoint",
        f"127.0.0.1:{port}",
        "--rdzv_id",
        "test",
        "-m",
        "sightline",
        "train",
        str(folder),
        "--epochs",
        "1",
        "--runs-dir",
        "runs",
        "--device",
        "cpu",
    ]
    nodes = [
        subprocess.Popen(
            cmd, cwd=tmp_path, env=_env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], (
        outputs[0][1][-2000:] + outputs[1][1][-2000:]
    )
    assert sum(out.count("Run saved in") for out, _ in outputs) == 1
    assert "2 processes (gloo)" in "".join(out for out, _ in outputs)
    assert len(list((tmp_path / "runs").iterdir())) == 1


def _descendants(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            children += [child, *_descendants(child)]
    return children


def _rank_pid(pid: int, rank: int) -> int | None:
    for child in _descendants(pid):
        try:
            env = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env:
            return child
    return None


@pytest.mark.skipif(
    not Path("/proc/self/environ").exists(), reason="finds the rank's process through /proc (Linux)"
)
def test_a_killed_rank_ends_the_job_with_the_rank_named(tmp_path):
    folder = _image_folder(tmp_path / "squares")
    proc = _sightline(
        "train",
        str(folder),
        "--nproc",
        "2",
        "--epochs",
        "10000",
        "--runs-dir",
        "runs",
        "--name",
        "killed",
        "--no-eval",
        cwd=tmp_path,
    )
    _wait_for_epochs(tmp_path / "runs" / "killed" / "status.json", 1)
    victim = _rank_pid(proc.pid, 1)
    assert victim is not None, "rank 1 not found"
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    out, err = proc.communicate(timeout=120)  # bounded: torchrun stops the other rank
    assert proc.returncode not in (0, None)
    assert time.monotonic() - killed_at < 60
    assert (
        "rank      : 1" in err and "SIGKILL" in err
    )  # torchrun's report names the rank and the signal
    assert "a training process failed" in err and "--resume" in err


def test_a_rank_that_raises_ends_the_job_with_the_rank_named(tmp_path):
    """The job fails with rank 1's error shown and rank 1 named in torchrun's report: as its root
    cause, or among the failures when rank 0's broken collective was seen first (then rank 1,
    still tearing down, may have been stopped by a signal: any exit code)."""
    with pytest.raises(AssertionError) as failed:
        _worker({"name": "fails", "fail_on_rank": 1}, 2, tmp_path)
    report = str(failed.value)
    assert "planned failure on rank 1" in report
    assert (
        "rank      : 1 (local_rank: 1)" in report
        and "Root Cause (first observed failure)" in report
    )


def test_only_a_clean_exit_waits_for_the_peers(monkeypatch):
    # A rank ending cleanly waits (bounded) for its peers before tearing the group down, so it
    # cannot abort one still tearing down; a rank ending with an error must not wait: its peers
    # are stuck in a collective it will never join (torchrun stops them once it has exited).
    calls: list[str] = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed.dist, "destroy_process_group", lambda: calls.append("destroy"))
    monkeypatch.setattr(
        distributed, "_bounded_barrier", lambda seconds: calls.append(f"wait {seconds:g} s")
    )
    monkeypatch.setattr(distributed, "_failed", False)
    monkeypatch.setattr(sys, "excepthook", lambda *exc_info: calls.append("reported"))
    distributed._shutdown()
    assert calls == [f"wait {distributed.SHUTDOWN_WAIT_S:g} s", "destroy"]
    calls.clear()
    distributed._watch_for_errors()
    sys.excepthook(
        RuntimeError, RuntimeError("boom"), None
    )  # what Python calls for an uncaught error
    distributed._shutdown()
    assert calls == [
        "reported",
        "destroy",
    ]  # the error still reported by the previous hook; no wait


def _wait_for_epochs(status: Path, epochs: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if status.is_file() and json.loads(status.read_text())["epochs_done"] >= epochs:
            return
        time.sleep(0.2)
    raise AssertionError(f"{status}: {epochs} epochs not done in {timeout} s")


def test_cli_nproc_ctrl_c_resume_evaluate_and_report(tmp_path):
    """`sightline train --nproc 2`: Ctrl-C stops every rank with the run saved; `--resume --nproc
    2` finishes it with no epoch lost, then the sharded test evaluation and the report."""
    import sightline

    folder = _image_folder(tmp_path / "squares")
    args = [
        "train",
        str(folder),
        "--nproc",
        "2",
        "--epochs",
        "25",
        "--runs-dir",
        "runs",
        "--name",
        "stopped",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sightline", *args],
        cwd=tmp_path,
        env=_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    status = tmp_path / "runs" / "stopped" / "status.json"
    _wait_for_epochs(status, 2)
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: every process of the job gets it
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert (
        "Launching 2 processes with torchrun" in err and "2 processes (gloo): global batch" in out
    )
    assert out.count("Run folder:") == 1  # rank 0 alone prints
    saved = json.loads(status.read_text())
    assert saved["status"] == "interrupted" and 2 <= saved["epochs_done"] < 25
    assert "Resume with `sightline train --resume RUN --nproc 2`" in err

    resumed = _sightline("train", "--resume", "runs/stopped", "--nproc", "2", cwd=tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    final = json.loads(status.read_text())
    assert final["status"] == "finished" and final["epochs_done"] == 25
    rows = (tmp_path / "runs" / "stopped" / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, 26))  # no epoch lost or repeated
    assert out.count("Run saved in") == 1 and out.count("Test accuracy") == 1
    run = sightline.load_run(tmp_path / "runs" / "stopped")
    saved = json.loads((run.path / "evaluations" / "test.json").read_text())
    # The sharded, gathered evaluation is the one a single process computes.
    again = run.evaluate(save=False)
    assert saved["count"] == again.count == 36 and saved["accuracy"] == pytest.approx(
        again.accuracy, abs=1e-9
    )
    assert (run.path / "report.html").is_file()


def test_launch_options_are_removed_for_the_ranks():
    argv = ["train", "mnist", "--nproc", "2", "--epochs", "3", "--gpus=4", "--nproc=3"]
    assert without_launch_options(argv) == ["train", "mnist", "--epochs", "3"]


def test_cli_rejects_impossible_launches(tmp_path, capsys):
    from sightline.cli import main

    if not torch.cuda.is_available():
        assert main(["train", "mnist", "--gpus", "2"]) == 2
        assert "CUDA GPU" in capsys.readouterr().err
    assert main(["train", "mnist", "--gpus", "1", "--nproc", "2"]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_rows_split_any_batch_among_ranks():
    for n in (1, 6, 31, 32, 100):
        for world in (1, 2, 3, 4):
            parts = [
                distributed.rows(n, distributed.Distributed(rank=r, world_size=world))
                for r in range(world)
            ]
            covered = [i for p in parts for i in range(n)[p]]
            assert covered == list(range(n))  # in order, each row once
            sizes = [p.stop - p.start for p in parts]
            assert max(sizes) - min(sizes) <= 1


def test_world_options_are_checked_and_recorded():
    from sightline.models import create_model
    from sightline.plan.config import TrainConfig

    two = distributed.Distributed(rank=0, world_size=2, backend="gloo")
    net = create_model("fastcnn", (1, 12, 12), 3, width=8, stages=2)
    cfg, notes = distributed.resolve_for_world(TrainConfig(batch_size=48), two, net, 640)
    assert (
        cfg.sync_bn is True
        and "24 images per process" in notes[0]
        and "SyncBatchNorm on" in notes[0]
    )
    cfg, _ = distributed.resolve_for_world(TrainConfig(batch_size=64), two, net, 640)
    assert cfg.sync_bn is False  # 32 images per process: BatchNorm's own statistics
    cfg, _ = distributed.resolve_for_world(TrainConfig(batch_size=256, sync_bn=True), two, net, 640)
    assert cfg.sync_bn is True  # asked for
    mlp = create_model("mlp", (1, 12, 12), 3)
    _, notes = distributed.resolve_for_world(TrainConfig(batch_size=8), two, mlp, 640)
    assert "no BatchNorm" in notes[0]
    with pytest.raises(ConfigError, match="smaller than the 2 processes"):
        distributed.resolve_for_world(TrainConfig(batch_size=1), two, net, 640)
    with pytest.raises(ConfigError, match="as one process"):
        distributed.resolve_for_world(TrainConfig(freeze=True), two, net, 640)
    with pytest.raises(ConfigError, match="last batch has 2 images"):  # 642 = 10 x 64 + 2
        distributed.resolve_for_world(TrainConfig(batch_size=64, sync_bn=False), two, net, 642)
    alone = distributed.Distributed()
    assert distributed.resolve_for_world(TrainConfig(), alone, net, 640)[0] == TrainConfig()


def test_sync_batchnorm_is_batchnorm_alone_and_converts_back():
    import copy

    from sightline.models import create_model

    torch.manual_seed(0)
    plain = create_model("fastcnn", (1, 12, 12), 3, width=8, stages=2)
    synced = copy.deepcopy(plain)
    keys = set(plain.state_dict())
    swapped = sync_batchnorm.convert_sync_batchnorm(synced)
    assert len(swapped) == 2 and set(synced.state_dict()) == keys  # checkpoints stay compatible
    assert sum(isinstance(m, sync_batchnorm.SyncBatchNorm) for m in synced.modules()) == 2
    x = torch.randn(16, 1, 12, 12)
    torch.testing.assert_close(synced(x), plain(x))  # one process: BatchNorm, running stats too
    torch.testing.assert_close(
        synced.state_dict()["stage1.conv.bn.running_var"], plain.stage1.conv.bn.running_var
    )
    sync_batchnorm.restore_batchnorm(swapped)
    assert not any(isinstance(m, sync_batchnorm.SyncBatchNorm) for m in synced.modules())
    for key, value in synced.state_dict().items():  # the originals carry what the copies learned
        torch.testing.assert_close(value, plain.state_dict()[key])


def test_timeout_setting_is_validated(monkeypatch):
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "abc")
    with pytest.raises(ConfigError, match="number of seconds"):
        distributed.timeout_seconds()
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "12.5")
    assert distributed.timeout_seconds() == 12.5
