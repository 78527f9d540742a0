"""The capacity model: a resource is a pool of workers behind one FIFO queue.

The serial-number issuer and the payment gateway are both a :class:`Resource`:
``workers`` servers, service times drawn from a distribution (constant,
exponential, lognormal; real seconds), a queue bound, and an overload mode
(``unbounded``: a submitter waits for room; ``shed``: it is refused at once).
Jobs are processed by two async hooks: ``on_start(job)`` when a worker takes the
job, ``on_finish(job) -> bool`` (True = completed) after its service time.

Admission hands out room as a :class:`Slot`, counted against the bound from the
moment it is granted until the job is put (or the slot released). Room is granted
to waiters in FIFO order whenever it appears (a job dequeued, a slot released, a
waiter gone), so a waiter that ends up adding nothing (an idempotent replay, a 402,
an order already paying) gives its room to the next waiter instead of swallowing
the wakeup, and a waiter whose client has gone stops waiting::

    import asyncio, random
    async def demo():
        r = Resource("issuer", cfg, random.Random(1), on_start=start, on_finish=finish)
        r.start()
        async with r.admission() as slot:
            slot.put("job-1")
        await asyncio.sleep(1); await r.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from testbed.config import ResourceConfig, ServiceTime

log = logging.getLogger("testbed.capacity")
MAX_CATCH_UP_S = 5.0   # a busy worker catches up at most this much lateness (seconds)


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


class QueueFull(Exception):
    """The queue is full and the overload mode is ``shed``: refuse at once."""


class ClientGone(Exception):
    """The client of a request waiting for room went away; it was given no room."""


class Slot:
    """Room for one job, held from admission until :meth:`put` or release."""

    def __init__(self, res: Resource) -> None:
        self._res = res
        self._open = True

    def put(self, job: Any) -> None:
        """Queue ``job`` in this room and wake one idle worker."""
        if self._open:
            self._open = False
            self._res._held -= 1
        # (after a release only if the caller was cancelled mid-commit)
        self._res.queue.append(job)
        self._res.queued_at[job] = asyncio.get_running_loop().time()
        self._res._wake(self._res._idle, 1)

    def release(self) -> None:
        """Give the room back unused (and to the next waiter)."""
        if self._open:
            self._open = False
            self._res._held -= 1
            self._res._grant()


class Resource:
    """A pool of workers serving jobs from a FIFO queue (see the module docstring)."""

    def __init__(self, name: str, cfg: ResourceConfig, rng: random.Random, *,
                 on_start: Callable[[Any], Awaitable[None]],
                 on_finish: Callable[[Any], Awaitable[bool]]) -> None:
        self.name = name
        self.cfg = cfg
        self.rng = rng
        self.on_start = on_start
        self.on_finish = on_finish
        self.queue: deque[Any] = deque()
        # loop time a job was put (a service never starts before)
        self.queued_at: dict[Any, float] = {}
        self.in_service: set[Any] = set()
        self.busy = 0
        self.completed = 0
        self.failed = 0
        self.shed = 0
        self.paused = False
        self.slow_factor = 1.0
        self._idle: deque[asyncio.Future[None]] = deque()
        self._room: deque[asyncio.Future[None]] = deque()
        self._held = 0                    # slots granted, job not yet put
        self._tasks: list[asyncio.Task[None]] = []

    # ---- admission -------------------------------------------------------------
    def has_room(self) -> bool:
        """True if one more job fits under the queue bound (counting slots already granted)."""
        return len(self.queue) + self._held < self.cfg.queue_bound

    @contextlib.asynccontextmanager
    async def admission(self, gone: Callable[[], Awaitable[Any]] | None = None
                        ) -> AsyncIterator[Slot]:
        """Hold room for one job; put it with ``slot.put(job)``, else the room is passed on.

        ``shed``: raise :class:`QueueFull` when full. ``unbounded``: wait in FIFO order;
        if ``gone()`` completes first (the client left), raise :class:`ClientGone`.
        """
        slot = await self._acquire(gone)
        try:
            yield slot
        finally:
            slot.release()

    async def _acquire(self, gone: Callable[[], Awaitable[Any]] | None) -> Slot:
        if self.has_room() and not self._room:
            self._held += 1
            return Slot(self)
        if self.cfg.overload == "shed":
            self.shed += 1
            raise QueueFull(self.name)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._room.append(fut)
        watcher = asyncio.ensure_future(gone()) if gone is not None else None
        try:
            if watcher is None:
                await fut
            else:
                await asyncio.wait({fut, watcher}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            self._abandon(fut)
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
        if watcher is not None and watcher.done() and not watcher.cancelled():
            self._abandon(fut)          # gone (even if room came at the same moment: pass it on)
            raise ClientGone(self.name)
        return Slot(self)

    def _abandon(self, fut: asyncio.Future[None]) -> None:
        """A waiter leaves: if room was already granted to it, pass it on."""
        if fut.done() and not fut.cancelled():
            self._held -= 1
            self._grant()
        else:
            fut.cancel()
            with contextlib.suppress(ValueError):
                self._room.remove(fut)

    def _grant(self) -> None:
        """Hand room to waiters, oldest first, while there is any."""
        while self._room and self.has_room():
            fut = self._room.popleft()
            if not fut.done():
                self._held += 1
                fut.set_result(None)

    def retry_after(self) -> int:
        """Seconds a shed client should wait: the time to drain the queue, at least the floor."""
        per_job = self.cfg.service.mean * self.slow_factor / self.cfg.workers
        return max(self.cfg.shed_retry_after_s, math.ceil(len(self.queue) * per_job))

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
                "waiting_for_room": sum(not f.done() for f in self._room),
                "queue_bound": self.cfg.queue_bound,
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
        """Serve jobs on a virtual service clock.

        Each job's completion is due one service time after the previous one's *due*
        moment while the worker stays busy (after an idle spell or a pause, after now).
        The storage writes around a job and a late wake-up of a busy event loop are thus
        caught up by the next job instead of adding to every service time: the issuer keeps
        its configured rate (workers / mean service time) on a loaded machine. The draws,
        and so the service time distribution, are unchanged. A worker never runs more than
        `MAX_CATCH_UP_S` behind (a machine too slow to keep up is then simply slower).
        """
        loop = asyncio.get_running_loop()
        due: float | None = None          # the virtual clock: when the last job was due to finish
        while True:
            if self.paused or not self.queue:
                due = None                    # idle (or an outage): the clock restarts from now
                fut = loop.create_future()
                self._idle.append(fut)
                await fut
                continue
            job = self.queue.popleft()
            self._grant()
            self.busy += 1
            self.in_service.add(job)
            now = loop.time()
            queued = self.queued_at.pop(job, None)
            start = now if due is None else max(due, queued or due, now - MAX_CATCH_UP_S)
            due = start + draw_service_time(self.cfg.service, self.rng) * self.slow_factor
            try:
                await self.on_start(job)
                await asyncio.sleep(max(0.0, due - loop.time()))
                if await self.on_finish(job):
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
