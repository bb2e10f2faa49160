"""Dynamic batching in the server (sightline.serve.services.batcher) and the model cache's fast path.

Concurrent predictions share forward passes: each must still get exactly its own result (the
same labels as alone, probabilities within 1e-5), a bad image or a failing forward pass must
fail only its own request, and a model that leaves the cache (or a server that stops) must not
leave its inference thread behind. The models are built, not trained: a fastcnn with BatchNorm
statistics away from the identity (channels-last, flip TTA and object framing all on the path).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

import sightline  # noqa: E402
from sightline.data.preprocess import Preprocess  # noqa: E402
from sightline.infer.batched import batched_logits  # noqa: E402
from sightline.infer.predict import predict_images  # noqa: E402
from sightline.run import checkpoint as ckpt  # noqa: E402
from sightline.serve import create_app  # noqa: E402
from sightline.serve.services import model_cache as model_cache_module  # noqa: E402
from sightline.serve.services.batcher import BatchedModel, Batcher  # noqa: E402
from sightline.serve.services.model_cache import ModelCache  # noqa: E402

CSRF = {"X-Sightline-Request": "1"}
CLASSES = [f"c{i}" for i in range(10)]
PRE = Preprocess(
    1, (28, 28), "pad", mean=(0.3,), std=(0.35,), dark_background=True, flip_tta=True, fit="object"
)


def build_model() -> torch.nn.Module:
    """A fastcnn whose logits differ from image to image by several units, as a trained one's
    do (an untrained one gives every image the same class): BatchNorm statistics away from the
    identity, and a head centred and scaled on the test images' features."""
    torch.manual_seed(0)
    model = sightline.create_model("fastcnn", (1, 28, 28), len(CLASSES)).eval()
    g = torch.Generator().manual_seed(0)
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    features: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda m, inputs, out: features.append(inputs[0]))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 0.5 + 0.1)
        batched_logits(
            model, torch.stack([PRE.prepare_image(item_png(i)) for i in range(32)]), PRE, "cpu"
        )
        hook.remove()
        f = torch.cat(features) - torch.cat(features).mean(0)
        head.weight.mul_(3 / (f @ head.weight.T).std())
        head.bias.copy_(-(torch.cat(features).mean(0) @ head.weight.T))
    return model


def write_run(folder: Path, model: torch.nn.Module, which: str = "best") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "model": model.sightline_config,
        "data": {"name_or_path": "synthetic", "in_memory": True},
        "train": {},
    }
    (folder / "config.json").write_text(json.dumps(config))
    ckpt.save_model(
        folder / f"{which}.safetensors", model, ckpt.model_metadata(model, CLASSES, PRE.to_dict())
    )
    return folder


def item_png(i: int) -> bytes:
    """A bright textured blob on a dark (or, for odd i, light) background, as a PNG file."""
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:28, 0:28]
    a, b = rng.uniform(5, 13, 2)
    cy, cx = rng.uniform(10, 18, 2)
    blob = ((yy - cy) / a) ** 2 + ((xx - cx) / b) ** 2 <= 1
    texture = np.clip(
        rng.uniform(90, 255) + 50 * np.sin(xx / rng.uniform(1.5, 4)) * np.cos(yy / 3), 40, 255
    )
    img = np.where(blob, texture, rng.uniform(0, 20)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(255 - img if i % 2 else img).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return build_model()


@pytest.fixture(scope="module")
def pngs() -> list[bytes]:
    return [item_png(i) for i in range(32)]


@pytest.fixture
def runs(tmp_path, model) -> Path:
    write_run(tmp_path / "runs" / "cnn", model)
    return tmp_path / "runs"


def alone(model, png: bytes):
    """The unbatched prediction: predict_images on one image."""
    (p,) = predict_images(model, PRE, CLASSES, [("x", png)], top_k=3, device="cpu").predictions
    return p


# ---------------------------------------------------------------------------- results
def test_batched_predictions_equal_unbatched_ones(model, pngs):
    expected = [alone(model, png) for png in pngs]
    assert (
        len({p.index for p in expected}) > 2
    )  # the images are told apart: the check means something
    batched = BatchedModel("cnn", model, PRE, CLASSES, "cpu", max_batch=64)
    try:
        with ThreadPoolExecutor(32) as pool:  # 32 requests at once, one image each
            got = list(
                pool.map(
                    lambda png: batched.predict_images([("x", png)], top_k=3).predictions[0], pngs
                )
            )
        several = batched.predict_images(
            [(str(i), png) for i, png in enumerate(pngs)], top_k=3
        ).predictions
    finally:
        batched.close(timeout=5)
    for want, one, many in zip(expected, got, several, strict=True):
        for p in (one, many):
            assert (
                p.label == want.label
                and p.index == want.index
                and [t[0] for t in p.top] == [t[0] for t in want.top]
            )
            assert np.allclose(p.probabilities, want.probabilities, atol=1e-5, rtol=0)
            assert p.note == want.note


def test_the_event_loop_path_prepares_in_the_batcher_and_equals_predict_images(model, pngs):
    """``predict_images_async`` (the server's): the batcher's thread decodes and frames every
    waiting request's images; results equal the unbatched ones, a bad file is skipped alone."""
    import asyncio

    expected = [alone(model, png) for png in pngs]
    batched = BatchedModel("cnn", model, PRE, CLASSES, "cpu", max_batch=64)
    prepared_in: set[str] = set()
    real_prepare = batched.batcher._queue.prepare

    def recording(groups):
        prepared_in.add(threading.current_thread().name)
        return real_prepare(groups)

    batched.batcher._queue.prepare = recording

    async def all_at_once():
        one_each = [batched.predict_images_async([("x", png)]) for png in pngs]
        broken = batched.predict_images_async([("bad", b"\x89PNG\r\n\x1a\n" + b"\0" * 20)])
        mixed = batched.predict_images_async(
            [("a", pngs[0]), ("bad", b"not an image"), ("b", pngs[1])]
        )
        return await asyncio.gather(*one_each, broken, mixed)

    try:
        *singles, broken, mixed = asyncio.run(all_at_once())
    finally:
        batched.close(timeout=5)
    assert prepared_in == {"sightline-batcher-cnn"}  # no request thread decoded anything
    for want, report in zip(expected, singles, strict=True):
        (p,) = report.predictions
        assert p.label == want.label and p.note == want.note
        assert np.allclose(p.probabilities, want.probabilities, atol=1e-5, rtol=0)
    assert broken.predictions == [] and [k for k, _ in broken.skipped] == ["bad"]
    assert [p.path for p in mixed.predictions] == ["a", "b"]
    assert [k for k, _ in mixed.skipped] == ["bad"] and "image" in mixed.skipped[0][1]
    assert [p.label for p in mixed.predictions] == [expected[0].label, expected[1].label]


def test_requests_are_prepared_together_as_each_alone(pngs):
    """The batcher prepares all waiting requests' images in one call (prepare_groups): each
    request gets what preparing it alone gives, its bad files skipped in its own report, even
    where two requests name their files alike."""
    from sightline.infer.predict import prepare_groups, prepare_named

    groups = [
        [("x", pngs[0])],
        [("x", pngs[1]), ("bad", b"not an image"), ("y", pngs[2])],
        [("bad", b"\x89PNG\r\n\x1a\n" + b"\0" * 20)],
        [],
        [(str(i), png) for i, png in enumerate(pngs[3:12])],
    ]
    together = prepare_groups(PRE, groups)
    assert len(together) == len(groups)
    for group, got in zip(groups, together, strict=True):
        want = prepare_named(PRE, group)
        assert got.names == want.names and got.notes == want.notes
        assert got.skipped == want.skipped and torch.equal(got.images, want.images)
    assert [k for k, _ in together[1].skipped] == ["bad"] and together[2].names == []


def test_a_failing_prepare_fails_only_its_own_request():
    def prepare(groups):  # each request's pairs; a poisoned request fails the whole call
        from sightline.infer.predict import PreparedImages

        out = []
        for pairs in groups:
            if any(name == "poison" for name, _ in pairs):
                raise RuntimeError("poisoned prepare")
            images = torch.stack(
                [torch.full((1, 2, 2), int(v), dtype=torch.uint8) for _, v in pairs]
            )
            out.append(PreparedImages([n for n, _ in pairs], images, [None] * len(pairs), []))
        return out

    def logits(x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.002)  # requests pile up into batches meanwhile
        return torch.stack([x.float().mean((1, 2, 3)), -x.float().mean((1, 2, 3))], 1)

    b = Batcher("t", logits, (1, 2, 2), max_batch=64, prepare=prepare)
    try:
        with ThreadPoolExecutor(16) as pool:
            futures = [
                pool.submit(
                    lambda i: b.submit_images([("poison" if i == 5 else str(i), i)]).result(5), i
                )
                for i in range(32)
            ]
            outcomes = [f.exception() or f.result() for f in futures]
    finally:
        b.close(timeout=5)
    assert isinstance(outcomes[5], RuntimeError) and "poisoned" in str(outcomes[5])
    for i, out in enumerate(outcomes):
        if i != 5:
            prepared, probs = out
            assert prepared.names == [str(i)]
            assert torch.allclose(probs, torch.tensor([[float(i), -float(i)]]).softmax(1)), i
    with pytest.raises(ValueError, match="without prepare"):
        Batcher("plain", logits, (1, 2, 2)).submit_images([("x", 1)])


def test_cpu_work_runs_at_most_its_threads_at_once():
    import asyncio

    from sightline.serve.services.cpu_work import CpuWork

    work = CpuWork(threads=2)
    running, most = [0], [0]
    lock = threading.Lock()

    def job(i: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return i * i

    async def main():
        return await asyncio.gather(*(work(job, i) for i in range(12)))

    assert asyncio.run(main()) == [i * i for i in range(12)]
    assert most[0] == 2  # two at once, never more
    assert asyncio.run(main()) == [i * i for i in range(12)]  # a second event loop: its own limiter


def test_the_queue_is_taken_whole_up_to_max_batch():
    release, started = threading.Event(), threading.Event()
    sizes: list[int] = []

    def logits(x: torch.Tensor) -> torch.Tensor:
        sizes.append(len(x))
        started.set()
        release.wait(5)  # the first batch computes while the others queue up
        return x.float().mean((1, 2, 3))[:, None].repeat(1, 2) * torch.tensor([1.0, -1.0])

    b = Batcher("t", logits, (1, 2, 2), max_batch=8)
    try:
        first = b.submit(torch.zeros((1, 1, 2, 2), dtype=torch.uint8))
        assert started.wait(5)
        queued = [
            b.submit(torch.full((2, 1, 2, 2), i, dtype=torch.uint8)) for i in range(6)
        ]  # 12 images
        release.set()
        results = [f.result(5) for f in queued]
        first.result(5)
    finally:
        b.close(timeout=5)
    assert sizes == [1, 8, 4]  # no waiting window, then everything queued, at most 8 images a pass
    for i, r in enumerate(results):  # each request got its own rows back
        want = torch.tensor([float(i), -float(i)]).softmax(0)
        assert r.shape == (2, 2) and torch.allclose(r, want.expand(2, 2))


def test_a_failing_forward_pass_fails_only_its_own_request():
    def logits(x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.002)  # long enough for requests to pile up into batches
        if (x == 255).any():
            raise RuntimeError("poisoned")
        return torch.stack([x.float().mean((1, 2, 3)), -x.float().mean((1, 2, 3))], 1)

    b = Batcher("t", logits, (1, 2, 2), max_batch=64)
    try:
        with ThreadPoolExecutor(24) as pool:
            futures = [
                pool.submit(
                    b.probabilities,
                    torch.full((1, 1, 2, 2), 255 if i == 7 else i, dtype=torch.uint8),
                )
                for i in range(48)
            ]
            outcomes = [f.exception() or f.result() for f in futures]
        with pytest.raises(ValueError, match="expected prepared uint8"):
            b.submit(torch.zeros((1, 3, 2, 2), dtype=torch.uint8))  # refused in the caller's thread
    finally:
        b.close(timeout=5)
    assert isinstance(outcomes[7], RuntimeError) and "poisoned" in str(outcomes[7])
    for i, r in enumerate(outcomes):
        if i != 7:
            assert torch.allclose(r, torch.tensor([[float(i), -float(i)]]).softmax(1)), i


def test_concurrent_api_requests_get_their_own_results_and_a_bad_file_fails_alone(
    runs, model, pngs
):
    expected = [alone(model, png) for png in pngs]
    bodies = [*pngs, b"\x89PNG\r\n\x1a\n" + b"\0" * 20]  # the last one is broken
    app = create_app(runs_dir=runs, start_workers=False)
    with TestClient(app, base_url="http://127.0.0.1") as c:

        def post(body: bytes):
            return c.post(
                "/api/predict",
                files=[("files", ("x.png", body))],
                data={"run": "cnn", "k": "3"},
                headers=CSRF,
            )

        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(post, bodies))
        thread = app.state.sightline.models.predictor("cnn").batcher._thread
        assert thread.is_alive()
    assert not thread.is_alive()  # the server's shutdown stopped it
    assert (
        answers[-1].status_code == 415
        and "not a recognised image" in answers[-1].json()["results"][0]["error"]
    )
    for want, r in zip(expected, answers, strict=False):
        assert r.status_code == 200, r.text
        (row,) = r.json()["results"]
        assert row["label"] == want.label and [t["label"] for t in row["top_k"]] == [
            t[0] for t in want.top
        ]
        assert all(
            abs(t["probability"] - p) <= 1e-5
            for t, (_, p) in zip(row["top_k"], want.top, strict=True)
        )


def test_photos_and_small_images_in_one_request_keep_their_order_and_results(runs, model, pngs):
    """Images over 256x256 px are decoded on the CPU-work threads, smaller ones in the
    batcher's: one request of both, and a broken file between them, answers in upload order
    with the results each gets alone."""

    def enlarged(png: bytes) -> bytes:  # the same item as a 300 px photo
        img = Image.open(io.BytesIO(png)).resize((300, 300), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()

    uploads = [pngs[0], enlarged(pngs[1]), b"broken", pngs[2], enlarged(pngs[3]), pngs[4]]
    expected = [None if body == b"broken" else alone(model, body) for body in uploads]
    app = create_app(runs_dir=runs, start_workers=False)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        r = c.post(
            "/api/predict",
            files=[("files", (f"{i}.png", body)) for i, body in enumerate(uploads)],
            data={"run": "cnn"},
            headers=CSRF,
        )
    assert r.status_code == 200, r.text
    rows = r.json()["results"]
    assert [row["file"] for row in rows] == [f"{i}.png" for i in range(len(uploads))]
    assert "error" in rows[2] and "label" not in rows[2]
    for want, row in zip(expected, rows, strict=True):
        if want is not None:
            assert row["label"] == want.label
            assert abs(row["confidence"] - want.confidence) <= 1e-5


# ---------------------------------------------------------------------------- threads
def test_eviction_and_close_stop_the_threads_and_late_requests_are_still_answered(
    runs, model, pngs
):
    shutil.copytree(runs / "cnn", runs / "other")
    cache = ModelCache(runs, size=1, device="cpu")
    first = cache.predictor("cnn")
    first.predict_images([("x", pngs[0])])
    first_thread = first.batcher._thread
    assert first_thread.is_alive()
    second = cache.predictor("other")  # size 1: "cnn" leaves the cache, its thread ends
    first_thread.join(5)
    assert not first_thread.is_alive() and second.batcher.alive and cache.names() == ["other"]
    # A request that got the batcher just before the eviction is answered in its own thread.
    late = first.predict_images([("x", pngs[1])], top_k=3).predictions[0]
    assert late.label == alone(model, pngs[1]).label
    cache.evict("other")
    second.batcher._thread.join(5)
    assert not second.batcher.alive
    third = cache.predictor("cnn")
    cache.close()
    assert not third.batcher.alive and cache.names() == []


def test_a_dropped_batcher_stops_its_thread():
    import gc

    b = Batcher("dropped", lambda x: torch.zeros((len(x), 2)), (1, 2, 2))
    thread = b._thread
    del b
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()


# ---------------------------------------------------------------------------- the model cache
def test_a_cache_hit_reads_nothing_but_new_checkpoints_are_still_seen(runs, model, monkeypatch):
    opened: list[str] = []
    real_run = model_cache_module.Run

    class CountingRun(real_run):
        def __init__(self, path, **kw):
            opened.append(Path(path).name)
            super().__init__(path, **kw)

    monkeypatch.setattr(model_cache_module, "Run", CountingRun)
    cache = ModelCache(runs, device="cpu")
    assert cache.cached_predictor("cnn") is None  # not loaded yet: the caller loads it on a thread
    first = cache.get("cnn")
    assert cache.get("cnn") is first and cache.predictor("cnn") is cache.predictor("cnn")
    assert cache.cached_predictor("cnn") is cache.predictor("cnn")  # the event loop's fast path
    assert cache.cached_predictor(None) is None  # the newest run: listing the folder is a thread's
    assert opened == ["cnn"]  # hits: no run folder opened, no config.json read
    best = runs / "cnn" / "best.safetensors"
    replacement = best.with_suffix(".new")
    shutil.copyfile(best, replacement)
    os.replace(replacement, best)  # as training saves it: a new file
    assert cache.cached_predictor("cnn") is None  # stale: never answered from the old model
    assert cache.get("cnn") is not first and opened == ["cnn", "cnn"]
    # A run still on its last.safetensors is loaded again once a best.safetensors appears.
    write_run(runs / "young", model, which="last")
    on_last = cache.get("young")
    assert cache.get("young") is on_last
    shutil.copyfile(runs / "young" / "last.safetensors", runs / "young" / "best.safetensors")
    assert cache.get("young") is not on_last
    shutil.rmtree(runs / "young")
    with pytest.raises(sightline.errors.RunNotFoundError):
        cache.get("young")
    cache.close()


def test_batched_logits_leaves_a_ready_model_alone_and_restores_training_mode(model):
    x = torch.randint(0, 255, (3, 1, 28, 28), dtype=torch.uint8)
    want = batched_logits(model, x, PRE, "cpu")  # converts it to channels-last, once
    calls: list[str] = []
    real_to, real_train = model.to, model.train
    model.to = lambda *a, **k: calls.append("to") or real_to(*a, **k)
    model.train = lambda mode=True: calls.append("train") or real_train(mode)
    try:
        assert (
            torch.equal(batched_logits(model, x, PRE, "cpu"), want) and calls == []
        )  # no conversion, no toggling
        real_train(
            True
        )  # a model in training (validation during fit): evaluated in eval mode, then back
        assert (
            torch.equal(batched_logits(model, x, PRE, "cpu"), want)
            and "train" in calls
            and "to" not in calls
        )
        assert model.training and all(m.training for m in model.modules())
    finally:
        del model.to, model.train
        model.eval()


def test_a_logits_model_batches_too(model, pngs):
    """The ONNX engine's models are no nn.Module: anything with ``logits`` (predict.LogitsModel)
    goes through the same batcher. (tests/unit/run/test_export.py serves a real export through it.)"""

    class Exported:  # stands in for OnnxModel, whose export takes seconds
        def logits(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
            return batched_logits(model, images, PRE, "cpu", batch_size)

    exported = Exported()
    expected = [alone(exported, png) for png in pngs[:16]]
    batched = BatchedModel("exported", exported, PRE, CLASSES)
    try:
        with ThreadPoolExecutor(16) as pool:
            got = list(
                pool.map(lambda png: batched.predict_images([("x", png)]).predictions[0], pngs[:16])
            )
    finally:
        batched.close(timeout=5)
    for want, p in zip(expected, got, strict=True):
        assert p.label == want.label and np.allclose(
            p.probabilities, want.probabilities, atol=1e-5, rtol=0
        )


# ---------------------------------------------------------------------------- several processes
def test_one_process_of_several_owns_the_jobs_and_another_takes_over(tmp_path):
    from sightline.serve.jobs.pool import LOCK_NAME, JobPool
    from sightline.serve.jobs.store import JobStore

    runs = tmp_path / "runs"
    store = JobStore(runs)
    first, second = (JobPool(JobStore(runs), runs, exclusive=True, poll_s=0.05) for _ in range(2))
    assert first.owns_jobs() and not second.owns_jobs() and (runs / LOCK_NAME).is_file()
    assert JobPool(JobStore(runs), runs).owns_jobs()  # one server process alone: no lock needed
    lost = store.create({"folder": "x"}, {"dataset": "x"})  # a job whose worker is gone
    store.claim_next(10)
    store.attach(lost.id, 2**22 + 12345)  # above Linux's default pid_max: no such process
    second.start()  # not the owner: it neither recovers nor launches
    time.sleep(0.3)
    assert store.get(lost.id).state == "running"
    first.shutdown(
        timeout=1
    )  # the owner stops: the lock is free, the other takes over and recovers
    deadline = time.monotonic() + 5
    while store.get(lost.id).state == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    second.shutdown(timeout=1)
    assert store.get(lost.id).state == "interrupted"


def test_serve_with_two_processes_answers_and_stops(runs, pngs):
    import fcntl
    import re
    import signal
    import subprocess
    import sys

    import httpx

    script = Path(sys.executable).with_name("sightline")
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "sightline"]
    log = runs.parent / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*cmd, "serve", "--port", "0", "--runs-dir", str(runs), "--processes", "2"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None and time.monotonic() < deadline and server.poll() is None:
            found = re.search(r" at (http://\S+?)/ ", log.read_text())
            url = found.group(1) if found else time.sleep(0.1)
        assert url, log.read_text()
        codes = []
        while (
            len(codes) < 6 and time.monotonic() < deadline
        ):  # new connections: both processes answer
            try:
                with httpx.Client(base_url=url, headers=CSRF, timeout=30) as c:
                    codes.append(
                        c.post(
                            "/api/predict", files={"files": ("x.png", pngs[0])}, data={"run": "cnn"}
                        ).status_code
                    )
            except httpx.ConnectError:  # not listening yet
                time.sleep(0.2)
        assert codes == [200] * 6, log.read_text()
        with open(runs / ".sightline-jobs.lock", "rb") as f, pytest.raises(BlockingIOError):
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # one of the processes holds it
        children = [
            int(p.parent.name)
            for p in Path("/proc").glob("[0-9]*/stat")
            if p.read_text().rsplit(")", 1)[1].split()[1] == str(server.pid)
            and b"spawn_main" in (p.parent / "cmdline").read_bytes()
        ]
        assert len(children) == 2
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    assert server.returncode == 0, log.read_text()
    assert not [
        pid for pid in children if Path(f"/proc/{pid}").exists()
    ]  # its processes ended with it
