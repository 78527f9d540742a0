"""The capacity model: a resource is a pool of workers behind one FIFO queue.

The serial-number issuer and the payment gateway are both a :class:`Resource`:
``workers`` servers, service times drawn from a distribution (constant,
exponential, lognormal; real seconds), a queue bound, and an overload mode
(``unbounded``: a submitter waits for room; ``shed``: it is refused at once).
Jobs are processed by two hooks: ``on_start(job)`` when a worker takes the job,
``on_finish(job) -> bool`` (True = completed) after its service time::

    import asyncio, random
    async def demo():
        r = Resource("issuer", cfg, random.Random(1), on_start=print, on_finish=lambda j: True)
        r.start(); r.put("job-1"); await asyncio.sleep(1); await r.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections import deque
from collections.abc import Callable
from typing import Any

from testbed.config import ResourceConfig, ServiceTime

log = logging.getLogger("testbed.capacity")


def draw_service_time(st: ServiceTime, rng: random.Random) -> float:
    """Draw one service time (seconds) whose mean is ``st.mean``.

    >>> draw_service_time(ServiceTime(distribution="constant", mean=0.2), random.Random(0))
    0.2
    >>> 0 < draw_service_time(ServiceTime(distribution="lognormal", mean=0.2), random.Random(0))
    True
    """
    if st.mean <= 0:
        return 0.0
    if st.distribution == "constant":
        return st.mean
    if st.distribution == "exponential":
        return rng.expovariate(1.0 / st.mean)
    mu = math.log(st.mean) - st.sigma**2 / 2.0
    return rng.lognormvariate(mu, st.sigma)


class Resource:
    """A pool of workers serving jobs from a FIFO queue (see the module docstring)."""

    def __init__(self, name: str, cfg: ResourceConfig, rng: random.Random, *,
                 on_start: Callable[[Any], Any], on_finish: Callable[[Any], bool]) -> None:
        self.name = name
        self.cfg = cfg
        self.rng = rng
        self.on_start = on_start
        self.on_finish = on_finish
        self.queue: deque[Any] = deque()
        self.in_service: set[Any] = set()
        self.busy = 0
        self.completed = 0
        self.failed = 0
        self.shed = 0
        self.paused = False
        self.slow_factor = 1.0
        self._idle: deque[asyncio.Future[None]] = deque()
        self._room: deque[asyncio.Future[None]] = deque()
        self._tasks: list[asyncio.Task[None]] = []

    # ---- admission -------------------------------------------------------------
    def has_room(self) -> bool:
        """True if one more job fits under the queue bound."""
        return len(self.queue) < self.cfg.queue_bound

    async def wait_for_room(self) -> None:
        """Wait until one more job fits (the ``unbounded`` overload mode)."""
        while not self.has_room():
            fut = asyncio.get_running_loop().create_future()
            self._room.append(fut)
            try:
                await fut
            finally:
                with contextlib.suppress(ValueError):
                    self._room.remove(fut)

    def retry_after(self) -> int:
        """Seconds a shed client should wait: the time to drain the queue, at least the floor."""
        per_job = self.cfg.service.mean * self.slow_factor / self.cfg.workers
        return max(self.cfg.shed_retry_after_s, math.ceil(len(self.queue) * per_job))

    def put(self, job: Any) -> None:
        """Append ``job`` to the queue (call after admission) and wake one idle worker."""
        self.queue.append(job)
        self._wake(self._idle, 1)

    # ---- control ---------------------------------------------------------------
    def pause(self) -> None:
        """Stop taking new jobs (jobs in service finish): an outage."""
        self.paused = True

    def resume(self) -> None:
        """Take jobs again."""
        self.paused = False
        self._wake(self._idle, len(self._idle))

    def start(self) -> None:
        """Start the workers on the running loop."""
        self._tasks = [asyncio.create_task(self._worker(), name=f"{self.name}-{i}")
                       for i in range(self.cfg.workers)]

    async def stop(self) -> None:
        """Cancel the workers; jobs left are still durable in storage."""
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def state(self) -> dict[str, Any]:
        """The figures served in /admin/metrics under ``resources``."""
        return {"queue_depth": len(self.queue), "busy": self.busy, "workers": self.cfg.workers,
                "completed": self.completed, "failed": self.failed, "shed": self.shed,
                "paused": self.paused, "slow_factor": self.slow_factor,
                "waiting_for_room": len(self._room), "queue_bound": self.cfg.queue_bound,
                "overload": self.cfg.overload}

    # ---- internals -------------------------------------------------------------
    @staticmethod
    def _wake(waiters: deque[asyncio.Future[None]], n: int) -> None:
        while n > 0 and waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                n -= 1

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self.paused or not self.queue:
                fut = loop.create_future()
                self._idle.append(fut)
                await fut
                continue
            job = self.queue.popleft()
            self._wake(self._room, 1)
            self.busy += 1
            self.in_service.add(job)
            try:
                self.on_start(job)
                await asyncio.sleep(draw_service_time(self.cfg.service, self.rng) * self.slow_factor)
                if self.on_finish(job):
                    self.completed += 1
                else:
                    self.failed += 1
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not kill the worker; the audit will show the job
                log.exception("%s: job %r raised", self.name, job)
                self.failed += 1
            finally:
                self.busy -= 1
                self.in_service.discard(job)
