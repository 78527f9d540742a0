"""The open-model pool: an arrival dispatcher that hands arrivals to idle Locust users, and a
load shape that keeps the pool just big enough.

* `ArrivalDispatcher.run()` (a greenlet) walks the drawn arrival times; at each it
  hands the arrival to the longest-idle user, or, when none is idle, records it as
  dropped at once. Arrivals are never queued or delayed.
* `ArrivalDispatcher.take()` is what an idle user blocks on, from its `wait_time()`:
  Locust marks a user WAITING before it calls `wait_time()`, so Locust may stop an idle
  user at once; a busy user finishes its journey first (`stop_timeout`). A user stopped
  after `take()` returned but before its journey began gives the arrival back
  (`give_back`, from its `on_stop`).
* `OpenModelShape.tick()` (the master/local runner, each second) grows the pool to
  busy + headroom (headroom = expected arrivals over the next `headroom_s`, at least
  2), never above `--user-cap`; it never asks Locust to shrink (Locust would pick
  busy users). Instead surplus idle users retire themselves.
* The spawn rate follows the expected growth (`spawn_rate_for`): while journeys of
  length L fill up, the busy pool grows by one user per arrival, to about rate x L
  (Little's law), so each tick asks for the missing users plus the next second's
  arrivals, times `SPAWN_HEADROOM`, at least `MIN_SPAWN_RATE` and at most the cap.
  Locust spawns floor(rate) users per one-second step, so the deficit is filled in
  the tick's first step (a fixed 100 users/s made flash crowds above ~100/s drop).
* A dropped arrival carries its reason (`DROP_REASONS`): `pool_cap` (the pool was at
  `--user-cap`, all busy), `cpu` (the process was saturated: the dispatcher woke more
  than `LATE_S` late or Locust measured at least `CPU_BUSY_PERCENT`), else
  `spawn_lag` (the pool had not yet grown to what the shape asked for).

Distributed mode (later): each worker runs its own dispatcher on its share (1/N)
of the rate with its own seed stream and reports busy/idle counts to the master,
whose shape adds them up; `PoolStatus` is the message body.

    >>> import numpy as np
    >>> d = ArrivalDispatcher(np.array([0.0, 0.1]), make_plan=lambda i, t: None, recorder=None,
    ...                       headroom_s=3)
    >>> d.desired_idle(0.0) >= 2
    True
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
import numpy as np
from gevent.event import AsyncResult
from locust import LoadTestShape
from locust.exception import StopUser

from scenarios.locust_compat import nudged
from scenarios.recorder import DROP_REASONS  # noqa: F401  (the reasons `drop_reason` returns)

MIN_IDLE = 2
RETIRE = object()  # handed to an idle user to make it leave the pool
MIN_SPAWN_RATE = 100.0  # users/s: the floor of the spawn rate (the old fixed rate)
SPAWN_HEADROOM = 1.5  # spawn this many times the expected growth
LATE_S = 0.05  # a dispatcher this late at an arrival means the process is CPU-bound
CPU_BUSY_PERCENT = 90.0  # Locust's own CPU reading (every 5 s) at or above this: CPU-bound


def spawn_rate_for(
    *,
    want: int,
    live: int,
    arrival_rate: float,
    cap: int,
    floor: float = MIN_SPAWN_RATE,
    headroom: float = SPAWN_HEADROOM,
) -> float:
    """Users per second to ask Locust for: (missing users + the next second's arrivals) x headroom.

    At least `floor`, at most `cap` (more than the whole pool per second buys nothing)::

        >>> spawn_rate_for(want=900, live=300, arrival_rate=300.0, cap=5000)
        1350.0
        >>> (spawn_rate_for(want=10, live=10, arrival_rate=5.0, cap=5000),
        ...  spawn_rate_for(want=9e3, live=0, arrival_rate=0, cap=2000))
        (100.0, 2000.0)
    """
    growth = max(0, want - live) + max(0.0, arrival_rate)
    return float(min(max(floor, headroom * growth), max(float(cap), floor)))


class _HighSpawnRateNote(logging.Filter):
    """Drop Locust's "spawn rate is very high (>100)" warning: the shape asks for it on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "spawn rate is very high" not in record.getMessage()


logging.getLogger("locust.runners").addFilter(_HighSpawnRateNote())
SPAWN_CHUNK = 50  # users spawned between two yields to the event loop


def chunked_spawning(runner: Any, chunk: int = SPAWN_CHUNK) -> None:
    """Make `runner` spawn a big batch in chunks of `chunk` users, yielding to the event loop
    between.

    Locust spawns floor(spawn rate) users per one-second step without yielding; at a flash
    crowd's rates a step of ~1,000 users kept the dispatcher from its next arrival for
    ~100 ms. Chunks keep each stall to a few milliseconds. Wraps the instance's
    `spawn_users` (Locust 2.x); idempotent::

        >>> class Runner:
        ...     calls = []
        ...     def spawn_users(self, counts, wait=False):
        ...         self.calls.append(counts); return []
        >>> r = Runner(); chunked_spawning(r, chunk=50); chunked_spawning(r, chunk=50)
        >>> _ = r.spawn_users({"Applicant": 120}); r.calls
        [{'Applicant': 50}, {'Applicant': 50}, {'Applicant': 20}]
    """
    if runner is None or getattr(runner, "_surgecast_chunked", False):
        return
    original = runner.spawn_users

    def spawn_users(counts: dict[str, int], wait: bool = False) -> list[Any]:
        todo = {k: int(n) for k, n in counts.items() if n > 0}
        out: list[Any] = []
        while todo:
            room, part = chunk, {}
            for k in list(todo):
                n = min(todo[k], room)
                part[k], room = n, room - n
                todo[k] -= n
                if not todo[k]:
                    del todo[k]
                if not room:
                    break
            out += original(part, wait=False)
            gevent.sleep(0)
        if wait:
            runner.user_greenlets.join()
        return out

    runner.spawn_users = spawn_users
    runner._surgecast_chunked = True


def drop_reason(*, live: int, cap: int, late_s: float, cpu_percent: float | None) -> str:
    """Why an arrival found no idle user (see the module docstring).

    >>> drop_reason(live=50, cap=50, late_s=0.0, cpu_percent=20.0)
    'pool_cap'
    >>> (drop_reason(live=10, cap=50, late_s=0.2, cpu_percent=None),
    ...  drop_reason(live=10, cap=50, late_s=0.0, cpu_percent=30.0))
    ('cpu', 'spawn_lag')
    """
    if live >= cap:
        return "pool_cap"
    if late_s > LATE_S or (cpu_percent is not None and cpu_percent >= CPU_BUSY_PERCENT):
        return "cpu"
    return "spawn_lag"


@dataclass(frozen=True, kw_only=True)
class PoolStatus:
    """What a process tells the shape: busy and idle users, and the expected rate now."""

    busy: int
    idle: int
    rate_per_s: float
    finished: bool


class ArrivalDispatcher:
    """Dispatch arrivals at test seconds `times` (see the module docstring)."""

    def __init__(
        self,
        times: np.ndarray,
        *,
        make_plan: Callable[[int, float], Any],
        recorder: Any,
        headroom_s: float = 3.0,
        rate_at: Callable[[float], float] | None = None,
        on_drop: Callable[[Any, float], None] | None = None,
        between: Callable[[int, float], None] | None = None,
        pool_size: Callable[[], tuple[int, int, float | None]] | None = None,
    ) -> None:
        self.times = times
        self.pool_size = pool_size  # () -> (live users, this process's cap, Locust's CPU %)
        self.between = between
        self.make_plan = make_plan
        self.recorder = recorder
        self.headroom_s = headroom_s
        self.rate_at = rate_at or (lambda t: 0.0)
        self.on_drop = on_drop
        self.idle: deque[AsyncResult] = deque()
        self.busy = 0
        self.dispatched = 0
        self.origin_unix: float | None = None
        self.finished = False

    # ---- the dispatcher greenlet -----------------------------------------------------------
    def run(self, origin_unix: float) -> None:
        """Walk the arrival times from `origin_unix` (blocking; run it in a greenlet)."""
        self.origin_unix = origin_unix
        try:
            for i, t in enumerate(self.times):
                due = origin_unix + float(t)
                delay = due - time.time()
                if delay > 0 and self.between is not None:
                    self.between(
                        i, delay
                    )  # quiet time before arrival i (e.g. make identities ahead)
                    delay = due - time.time()
                if delay > 0:
                    gevent.sleep(delay)
                plan = self.make_plan(i, due)
                self.dispatched += 1
                if not self._hand_over(plan):
                    self._drop(plan, time.time() - due)
        finally:
            self.finished = True

    def _drop(self, plan: Any, late_s: float) -> None:
        live, cap, cpu = self.pool_size() if self.pool_size is not None else (0, 1 << 30, None)
        reason = drop_reason(live=live, cap=cap, late_s=late_s, cpu_percent=cpu)
        self.recorder.arrival_dropped(plan.applicant_id, reason)
        if self.on_drop is not None:
            self.on_drop(plan, time.time())

    def _hand_over(self, plan: Any) -> bool:
        while self.idle:
            slot = self.idle.popleft()
            if not slot.ready():
                slot.set(plan)
                return True
        return False

    # ---- the users' side ---------------------------------------------------------------------
    def desired_idle(self, test_s: float) -> int:
        """Idle users to keep ready: the expected arrivals over the next headroom_s, at least 2."""
        rate = max(self.rate_at(test_s), self.rate_at(test_s + self.headroom_s))
        return max(MIN_IDLE, math.ceil(rate * self.headroom_s))

    def now_s(self) -> float:
        """Test seconds since the origin (0 before it)."""
        return 0.0 if self.origin_unix is None else max(0.0, time.time() - self.origin_unix)

    def take(self, user: Any = None) -> Any:
        """Block until an arrival comes (call it from the user's `wait_time()`, where Locust has
        marked the user WAITING); StopUser when the pool has too many idle users."""
        if self.finished or len(self.idle) > 2 * self.desired_idle(self.now_s()) + MIN_IDLE:
            raise StopUser()
        slot: AsyncResult = AsyncResult()
        self.idle.append(slot)
        try:
            plan = slot.get()
        except BaseException:
            if slot.ready():  # handed over just as we were stopped: give it on
                plan = slot.get()
                if not self._hand_over(plan):
                    self._drop(plan, 0.0)
            else:
                with contextlib.suppress(ValueError):
                    self.idle.remove(slot)
            raise
        if plan is RETIRE:
            raise StopUser()
        self.busy += 1
        return plan

    def give_back(self, plan: Any) -> None:
        """A taken arrival whose user was stopped before its journey began: to another idle user,
        else recorded as dropped."""
        self.busy -= 1
        if not self._hand_over(plan):
            self._drop(plan, 0.0)

    def trim(self) -> int:
        """Retire surplus idle users (the newest first); return how many."""
        keep = 2 * self.desired_idle(self.now_s()) + MIN_IDLE
        n = 0
        while len(self.idle) > keep:
            slot = self.idle.pop()
            if not slot.ready():
                slot.set(RETIRE)
                n += 1
        return n

    def release(self) -> None:
        """The user finished its journey."""
        self.busy -= 1

    def status(self) -> PoolStatus:
        """Busy and idle counts and the expected rate now (for the shape and the progress line)."""
        return PoolStatus(
            busy=self.busy,
            idle=len(self.idle),
            rate_per_s=self.rate_at(self.now_s()),
            finished=self.finished,
        )


class OpenModelShape(LoadTestShape):
    """Pool size for Locust: grow to busy + headroom within the cap; stop when the schedule is done.

    `source` returns (dispatcher or None, user_cap, duration_s) so the shape can be
    created before the run is set up (Locust instantiates it at import).
    """

    source: Callable[[], tuple[Any, int, float]] | None = None
    spawn_rate = MIN_SPAWN_RATE  # the floor of the spawn rate (`spawn_rate_for`)

    def __init__(self) -> None:
        super().__init__()
        self._flip = 0
        self._last: tuple[int, float] | None = None

    def tick(self) -> tuple[int, float] | None:
        """(users, spawn rate) each second; None to stop."""
        if self.source is None:
            return None
        dispatcher, cap, _duration = self.source()
        runner = self.runner
        chunked_spawning(runner)
        live = runner.user_count if runner is not None else 0
        if dispatcher is None:
            return (min(cap, MIN_IDLE), self.spawn_rate)
        if dispatcher.finished:
            return None
        dispatcher.trim()
        st = dispatcher.status()
        want = min(cap, st.busy + dispatcher.desired_idle(dispatcher.now_s()))
        target = min(cap, max(want, live))
        rate = round(
            spawn_rate_for(
                want=want, live=live, arrival_rate=st.rate_per_s, cap=cap, floor=self.spawn_rate
            ),
            1,
        )
        tick = nudged(target, rate, self._flip)
        if self._last is not None and target == self._last[0]:
            if live >= want:
                return (
                    self._last
                )  # nothing to grow: no new start() (in a distributed run, no messages)
            if tick == self._last:
                # Locust calls start() only when the tick changes; flip the spawn rate by a hair so
                # users that retired themselves are replaced.
                self._flip ^= 1
                tick = nudged(target, rate, self._flip)
        self._last = tick
        return tick
