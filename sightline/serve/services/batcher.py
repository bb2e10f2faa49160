"""Dynamic batching: one forward pass for the images of many concurrent requests.

A forward pass of one small image costs about four times its share of a batch of 16 (fastcnn
on a 2-core CPU: 3.9 ms against 1.06 ms per image), and 16 request threads each running their
own pass also fight over the cores and the GIL. So each model has a ``Batcher`` whose one
inference thread takes everything queued (up to ``max_batch`` images), runs one
``sightline.infer.predict.model_logits`` on it and gives each request its rows of the
probabilities. There is no waiting window: an idle batcher starts on the first request at
once, and while a batch computes, the next one queues up by itself.

The server's requests (``BatchedModel.predict_images_async``) hand over their small images
undecoded: the inference thread decodes and frames all of them in one call (``prepare_groups``:
same-sized small images of different requests are framed in one pass), then runs their pass.
Request threads that did that themselves fought for the GIL, a context switch each time a
numpy or Pillow call let it go (~100 a request); one thread does it without.
Photos are decoded on the CPU-work threads (``cpu_work.py``) and handed over as tensors: their
decoding runs on both cores and does not hold up everyone's forward pass.

Rows of a batched forward pass equal those of an unbatched one (labels identical,
probabilities within float rounding: ``tests/unit/serve/test_serve_batching.py``). A batch whose forward
pass fails is run again one request at a time, so a failure reaches only the request it
belongs to; so does a failure to prepare a request's images. ``close`` (the model left the
cache, or the server stops) lets the thread finish what is queued and end; a request that
still reaches a closed batcher runs its own forward pass, so it is answered all the same.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future
from typing import Any

import torch

from sightline.data import ImageInput, Preprocess
from sightline.infer import (
    PredictionReport,
    Predictor,
    PreparedImages,
    Unknown,
    prepare_groups,
)
from sightline.serve.services.cpu_work import CpuWork

log = logging.getLogger("sightline.serve")

# Requests' (name, image) pairs -> each request's prepared images (infer.predict.prepare_groups).
Prepare = Callable[[list[Sequence[tuple[str, ImageInput]]]], list[PreparedImages]]

DEFAULT_MAX_BATCH = 64  # images per forward pass: past ~32 small images the gain per image is gone
PREPARE_CHUNK = 256  # images of one request prepared (and held) at a time, as predict_images does


class Batcher:
    """One inference thread for one loaded model: ``probabilities(images)`` from any thread.

    ``logits``: prepared uint8 images (N, C, H, W) → logits (N, K) on the CPU; it is only ever
    called from one thread at a time (the batcher's own, or a caller's after ``close``), so a
    PyTorch model is never run by two threads at once. The thread holds no reference to the
    ``Batcher``: one that is dropped without ``close`` (an app never started, in a test) is
    closed when it is garbage-collected, and its thread ends."""

    def __init__(
        self,
        name: str,
        logits: Callable[[torch.Tensor], torch.Tensor],
        input_shape: Sequence[int],
        max_batch: int = DEFAULT_MAX_BATCH,
        prepare: Prepare | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self.name = name
        self.input_shape = tuple(input_shape)
        self._queue = _Queue(name, logits, max_batch, prepare)
        self._thread = threading.Thread(
            target=self._queue.serve, name=f"sightline-batcher-{name}", daemon=True
        )
        self._thread.start()
        weakref.finalize(self, self._queue.close)

    @property
    def max_batch(self) -> int:
        return self._queue.max_batch

    def submit(self, images: torch.Tensor) -> Future:
        """A future of the probabilities (N, K) of prepared uint8 ``images`` (N, C, H, W)."""
        if (
            images.dtype != torch.uint8
            or images.ndim != 4
            or tuple(images.shape[1:]) != self.input_shape
        ):
            raise ValueError(
                f"{self.name}: expected prepared uint8 images (N, {', '.join(map(str, self.input_shape))}), "
                f"got {images.dtype} {tuple(images.shape)}"
            )
        return self._queue.submit(images)

    def submit_images(self, images: Sequence[tuple[str, ImageInput]]) -> Future:
        """A future of (``PreparedImages``, probabilities (N, K) or None when no image could be
        read) of (name, image) pairs, which the batcher's thread prepares with ``prepare``."""
        if self._queue.prepare is None:
            raise ValueError(f"{self.name}: this batcher was made without prepare=")
        return self._queue.submit(list(images))

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Probabilities (N, K) of prepared uint8 ``images``: waits for their batch."""
        if len(images) == 0:
            raise ValueError(f"{self.name}: no images to classify")
        return self.submit(images).result()

    def close(self, timeout: float | None = 0.0) -> None:
        """Stop taking requests: the thread answers what is queued, then ends. ``timeout``:
        seconds to wait for it (None: until it has)."""
        self._queue.close()
        if timeout is None or timeout > 0:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


class _Queue:
    """The queue of one ``Batcher`` and its thread's loop (apart from it: see ``Batcher``)."""

    def __init__(
        self,
        name: str,
        logits: Callable[[torch.Tensor], torch.Tensor],
        max_batch: int,
        prepare: Prepare | None = None,
    ) -> None:
        self.name = name
        self.logits = logits
        self.prepare = prepare
        self.max_batch = max_batch
        self.pending: deque[tuple[Any, Future]] = deque()
        self.cond = threading.Condition()
        self.closed = False
        self.run_lock = (
            threading.Lock()
        )  # the forward passes after close: one at a time, as before it

    def submit(self, images: Any) -> Future:
        future: Future = Future()
        with self.cond:
            if not self.closed:
                self.pending.append((images, future))
                self.cond.notify()
                return future
        # Closed (evicted while this request was on its way): answer it here, with the same model.
        with self.run_lock:
            self.resolve(self.prepared([(images, future)]))
        return future

    def prepared(self, jobs: list[tuple[Any, Future]]) -> list[tuple[torch.Tensor, Future]]:
        """The jobs with their images prepared: a job of (name, image) pairs becomes its uint8
        tensor, and its future gets (``PreparedImages``, probabilities or None when none could
        be read); a failure reaches only its own job."""
        given = [
            (payload, future) for payload, future in jobs if not isinstance(payload, torch.Tensor)
        ]
        out = [(payload, future) for payload, future in jobs if isinstance(payload, torch.Tensor)]
        if not given:
            return out
        assert self.prepare is not None, "a Batcher given images to prepare needs prepare="
        try:  # all the requests' images framed together (same-sized small ones in one pass)
            together: list[Any] = self.prepare([payload for payload, _ in given])
        except Exception:  # then one request at a time: a failure reaches only its own
            together = []
            for payload, _ in given:
                try:
                    together.append(self.prepare([payload])[0])
                except Exception as e:
                    together.append(e)
        for (_, future), prepared in zip(given, together, strict=True):
            if isinstance(prepared, Exception):
                future.set_exception(prepared)
                continue
            if not prepared.names:
                future.set_result((prepared, None))
                continue
            rows: Future = Future()
            rows.add_done_callback(functools.partial(_with_prepared, prepared, future))
            out.append((prepared.images, rows))
        return out

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def serve(self) -> None:
        """The inference thread: take everything queued (up to ``max_batch`` images; a larger
        request alone), answer it, repeat; end once closed and empty."""
        while True:
            with self.cond:
                while not self.pending and not self.closed:
                    self.cond.wait()
                if not self.pending:
                    return
                jobs = [self.pending.popleft()]
                count = len(jobs[0][0])
                while self.pending and count + len(self.pending[0][0]) <= self.max_batch:
                    jobs.append(self.pending.popleft())
                    count += len(jobs[-1][0])
            try:
                with self.run_lock:
                    self.resolve(self.prepared(jobs))
            except BaseException as e:  # a bug here must not leave requests waiting for ever
                for _, future in jobs:
                    if not future.done():
                        future.set_exception(e)
                raise

    def resolve(self, jobs: list[tuple[torch.Tensor, Future]]) -> None:
        """One forward pass for all ``jobs``; each future gets its rows, or the error."""
        if not jobs:
            return
        try:
            batch = jobs[0][0] if len(jobs) == 1 else torch.cat([images for images, _ in jobs])
            out = self.logits(batch)
            logits, scores = out if isinstance(out, tuple) else (out, None)
            probs = logits.softmax(1)
        except Exception as e:  # whatever it was belongs to the requests, not to this thread
            if len(jobs) > 1:  # one at a time: only the request whose images fail gets the error
                for job in jobs:
                    self.resolve([job])
                return
            log.debug("%s: a forward pass failed: %r", self.name, e)
            jobs[0][1].set_exception(e)
            return
        start = 0
        for images, future in jobs:
            end = start + len(images)
            future.set_result(
                probs[start:end] if scores is None else (probs[start:end], scores[start:end])
            )
            start = end


def _split(rows: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A future's rows: probabilities, or (probabilities, "none of these" scores)."""
    return rows if isinstance(rows, tuple) else (rows, None)


def _with_prepared(prepared: PreparedImages, outer: Future, rows: Future) -> None:
    error = rows.exception()
    if error is not None:
        outer.set_exception(error)
    else:
        outer.set_result((prepared, rows.result()))


class BatchedModel:
    """A ``Predictor``'s predictions through its ``Batcher``: the request's thread prepares
    its images and builds its rows; only the forward pass is shared with the other requests.
    ``BatchedModel(predictor)``, or ``BatchedModel(name, model, preprocess, classes, device)``
    for a model of one's own."""

    def __init__(
        self,
        predictor: Predictor | str,
        model: Any = None,
        preprocess: Preprocess | None = None,
        classes: Sequence[str] = (),
        device: torch.device | str | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        if not isinstance(predictor, Predictor):
            dev = None if device is None else torch.device(device)
            engine = "torch" if isinstance(model, torch.nn.Module) else "onnx"
            predictor = Predictor(model, preprocess, list(classes), dev, engine, None, predictor)
        self.predictor = predictor
        self.name = predictor.name or "model"
        self.engine = predictor.engine  # what its forward passes run on: each answer says it
        self.preprocess = predictor.preprocess
        self.classes = predictor.classes
        self.detector = predictor.detector

        # One forward pass for many requests: logits and, with a detector, the scores (the
        # batcher turns the logits into each request's probabilities).
        self.batcher = Batcher(
            self.name,
            predictor.scored_logits,
            predictor.preprocess.input_shape,
            max_batch,
            prepare=functools.partial(prepare_groups, predictor.preprocess),
        )

    def predict_images(
        self,
        images: Sequence[tuple[str, ImageInput]],
        top_k: int = 3,
        keep_seen: bool = False,
        unknown: Unknown = "auto",
    ) -> PredictionReport:
        """(name, image) pairs → ``PredictionReport``, as ``Predictor.predict_images``, the
        forward passes shared with other requests."""

        def forward(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
            return _split(self.batcher.probabilities(images))

        return self.predictor.predict_images(images, top_k, keep_seen, unknown, forward)

    def threshold(self, unknown: Unknown) -> float | None:
        """The threshold of ``unknown`` ("auto", "off" or a number) for this model
        (``infer.predict.unknown_threshold``: ConfigError for a bad one)."""
        return self.predictor.threshold(unknown)

    async def predict_images_async(
        self,
        images: Sequence[tuple[str, ImageInput]],
        top_k: int = 3,
        keep_seen: bool = False,
        large: Collection[str] = (),
        work: CpuWork | None = None,
        unknown: Unknown = "auto",
    ) -> PredictionReport:
        """``predict_images`` for an event loop, holding no thread while it waits (names
        unique). The batcher's thread decodes and frames the small images of every waiting
        request, then runs their one forward pass; the images named in ``large`` are decoded
        through ``work`` first (decoding a photo lets the GIL go, so two run on two cores, and
        it would hold up everyone's forward pass in the batcher's thread)."""
        order = {name: i for i, (name, _) in enumerate(images)}
        self.threshold(unknown)  # a bad rule fails before any image is decoded
        report = PredictionReport([], [])
        for start in range(0, len(images), PREPARE_CHUNK):
            chunk = images[start : start + PREPARE_CHUNK]
            small = [pair for pair in chunk if pair[0] not in large]
            parts = [asyncio.wrap_future(self.batcher.submit_images(small))] if small else []
            if len(small) < len(chunk):
                if work is None:
                    raise ValueError("large images need work= (a CpuWork) to be decoded on")
                parts.append(self._prepared_on(work, [p for p in chunk if p[0] in large]))
            # one part (a request of small images, the common case): no gather's task to make
            done = [await parts[0]] if len(parts) == 1 else await asyncio.gather(*parts)
            for prepared, rows in done:
                report.skipped += prepared.skipped
                if rows is not None:
                    probs, scores = _split(rows)
                    report.predictions += self.predictor.rows(
                        prepared, probs, scores, top_k, keep_seen, unknown
                    )
        report.predictions.sort(key=lambda p: order[p.path])
        report.skipped.sort(key=lambda skipped: order[skipped[0]])
        return report

    async def _prepared_on(
        self, work: CpuWork, images: Sequence[tuple[str, ImageInput]]
    ) -> tuple[PreparedImages, torch.Tensor | None]:
        prepared = await work(self.predictor.prepare, images)
        if not prepared.names:
            return prepared, None
        return prepared, await asyncio.wrap_future(self.batcher.submit(prepared.images))

    def close(self, timeout: float | None = 0.0) -> None:
        self.batcher.close(timeout)
