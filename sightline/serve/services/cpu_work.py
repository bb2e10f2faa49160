"""A request's CPU-bound work on as many threads as the process has cores.

A plain ``def`` route runs on one of anyio's 40 request threads. With 16 clients, 16 of them
decoded and framed images at once and fought for the GIL: every numpy, Pillow or PyTorch call
that let it go cost a context switch when it came back (~100 a request for a 28 px PNG, a
third of the server's CPU in the kernel). So the routes that decode are ``async``: the event
loop reads the upload, and the decoding, framing and answering run through ``CpuWork`` on at
most ``threads`` threads; the wait for a shared forward pass holds no thread at all.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from sightline.devices import cpu_cores

T = TypeVar("T")


class CpuWork:
    """``await work(func, *args)``: ``func(*args)`` on a thread, at most ``threads`` at once."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or cpu_cores()
        # One limiter per event loop: an anyio limiter belongs to the loop it first waited in
        # (tests start one app under several loops).
        self._limiters: weakref.WeakKeyDictionary[Any, anyio.CapacityLimiter] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, func: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        limiter = self._limiters.get(loop)
        if limiter is None:
            limiter = self._limiters[loop] = anyio.CapacityLimiter(self.threads)
        return await anyio.to_thread.run_sync(func, *args, limiter=limiter)
