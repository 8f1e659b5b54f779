"""Dynamic batching: requests that arrive within a few milliseconds share one forward pass.

Each served model gets a :class:`DynamicBatcher`: a request's images join a bounded queue;
one worker thread takes the oldest request, waits up to ``max_wait_ms`` for more (until
``max_batch`` images), runs ``Predictor.predict`` once on all of them and hands each
request its own slice of the outputs. When ``max_queue`` images are already waiting, a new
request is refused at once with :class:`QueueFull` (the app answers 503 with
``Retry-After``) instead of queueing without bound.

Written here rather than taken from a serving framework (Triton, TorchServe, Ray Serve
each batch this way) because those run their own server process; this batches inside the
FastAPI app the project already serves, with the Predictor's own pre/postprocessing.
A worker thread, not an asyncio task, so one batcher serves any event loop (uvicorn's,
or each ``TestClient``'s) and the forward pass never blocks the loop.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["BatchSettings", "DynamicBatcher", "Batchers", "QueueFull"]


@dataclass(frozen=True)
class BatchSettings:
    """``max_batch`` images per forward pass (<= 1: batching off), how long the first request
    waits for company (``max_wait_ms``) and how many images may wait (``max_queue``)."""

    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_queue: int = 64
    #: batches in flight at once: a second worker decodes/normalises one batch while the
    #: other runs its forward pass
    workers: int = 2

    def __post_init__(self) -> None:
        from visionforge.errors import ConfigError

        if self.max_wait_ms < 0 or self.max_queue < 1 or self.workers < 1:
            raise ConfigError(
                "batching: max_wait_ms must be >= 0, queue >= 1 and workers >= 1, got "
                f"{self.max_wait_ms}, {self.max_queue}, {self.workers}"
            )

    @property
    def enabled(self) -> bool:
        return self.max_batch > 1


class QueueFull(Exception):
    """The batch queue is full; ``retry_after`` is a whole-second estimate of when it drains."""

    def __init__(self, waiting: int, retry_after: int) -> None:
        super().__init__(f"server busy: {waiting} images are waiting; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class _Job:
    images: list[Any]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


def _slice(out: Any, start: int, stop: int) -> Any:
    """Samples ``start:stop`` of a predictor output (array, list, or dict of either)."""
    if isinstance(out, dict):
        return {k: _slice(v, start, stop) for k, v in out.items()}
    return out[start:stop]


def _resolve(fut: asyncio.Future, value: Any, error: BaseException | None) -> None:
    if fut.done():  # the client went away and the request was cancelled
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(value)


class DynamicBatcher:
    """Batch the calls of ``predict(images) -> outputs`` made through :meth:`submit`."""

    IDLE_EXIT_S = 30.0  # the worker thread ends after this long without work (restarts on demand)

    def __init__(self, predict: Callable[[list[Any]], Any], settings: BatchSettings) -> None:
        self.predict, self.settings = predict, settings
        self._jobs: deque[_Job] = deque()
        self._waiting = 0
        self._cv = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._batch_s = 0.0  # duration of the last forward pass, for Retry-After
        #: sizes of the batches run so far (tests and the load benchmark read it)
        self.batch_sizes: list[int] = []

    async def submit(self, images: list[Any]) -> Any:
        """Predict ``images`` (one request) together with whatever else arrives meanwhile."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._cv:
            if self._waiting + len(images) > self.settings.max_queue and self._waiting:
                batches = math.ceil(self._waiting / max(1, self.settings.max_batch))
                raise QueueFull(self._waiting, max(1, math.ceil(batches * self._batch_s)))
            self._jobs.append(_Job(list(images), fut, loop))
            self._waiting += len(images)
            self._threads = [t for t in self._threads if t.is_alive()]
            if len(self._threads) < self.settings.workers:
                t = threading.Thread(target=self._work, daemon=True, name="vf-batcher")
                self._threads.append(t)
                t.start()
            self._cv.notify()
        return await fut

    def _take(self) -> list[_Job] | None:
        """The next batch of jobs: the oldest, plus those arriving within ``max_wait_ms``."""
        s = self.settings
        with self._cv:
            if not self._jobs and not self._cv.wait_for(lambda: self._jobs, self.IDLE_EXIT_S):
                return None
            jobs = [self._jobs.popleft()]
            n = len(jobs[0].images)
            deadline = time.monotonic() + s.max_wait_ms / 1000
            while n < s.max_batch:
                if self._jobs:
                    if n + len(self._jobs[0].images) > s.max_batch:
                        break
                    jobs.append(self._jobs.popleft())
                    n += len(jobs[-1].images)
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or not self._cv.wait(left):
                    break
            self._waiting -= n
            return jobs

    def _work(self) -> None:
        while (jobs := self._take()) is not None:
            images = [im for j in jobs for im in j.images]
            t0 = time.perf_counter()
            try:
                out, error = self.predict(images), None
            except Exception as exc:  # every request of the batch gets the error
                out, error = None, exc
            self._batch_s = time.perf_counter() - t0
            self.batch_sizes.append(len(images))
            start = 0
            for j in jobs:
                stop = start + len(j.images)
                part = None if error is not None else _slice(out, start, stop)
                j.loop.call_soon_threadsafe(_resolve, j.future, part, error)
                start = stop


class Batchers:
    """One :class:`DynamicBatcher` per served model, made on first use."""

    def __init__(self, settings: BatchSettings) -> None:
        self.settings = settings
        self._by_model: dict[int, DynamicBatcher] = {}
        self._lock = threading.Lock()

    def for_model(self, m: Any) -> DynamicBatcher:
        """The batcher of served model ``m`` (its Predictor's ``predict`` on NHWC arrays)."""
        with self._lock:
            b = self._by_model.get(id(m))
            if b is None:
                pred = m.predictor
                b = DynamicBatcher(lambda imgs: pred.predict(imgs, layout="NHWC"), self.settings)
                self._by_model[id(m)] = b
            return b

    async def predict(self, m: Any, images: list[Any]) -> Any:
        """Predict ``images`` with model ``m``; 503 + ``Retry-After`` when its queue is full."""
        from fastapi import HTTPException

        try:
            return await self.for_model(m).submit(images)
        except QueueFull as exc:
            raise HTTPException(
                503, str(exc), headers={"Retry-After": str(exc.retry_after)}
            ) from None
