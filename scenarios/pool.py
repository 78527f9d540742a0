"""The open-model pool: an arrival dispatcher that hands arrivals to idle Locust users, and a
load shape that keeps the pool just big enough.

* `ArrivalDispatcher.run()` (a greenlet) walks the drawn arrival times; at each it
  hands the arrival to the longest-idle user, or, when none is idle, records it as
  dropped at once. Arrivals are never queued or delayed.
* `ArrivalDispatcher.take(user)` is what an idle user blocks on. While it waits the
  user is in Locust's WAITING state, so Locust may stop it at once; a busy user
  finishes its journey first (`stop_timeout`).
* `OpenModelShape.tick()` (the master/local runner, each second) grows the pool to
  busy + headroom (headroom = expected arrivals over the next `headroom_s`, at least
  2), never above `--user-cap`; it never asks Locust to shrink (Locust would pick
  busy users). Instead surplus idle users retire themselves.

Distributed mode (later): each worker runs its own dispatcher on its share (1/N)
of the rate with its own seed stream and reports busy/idle counts to the master,
whose shape adds them up; `PoolStatus` is the message body.

    >>> import numpy as np
    >>> d = ArrivalDispatcher(np.array([0.0, 0.1]), make_plan=lambda i, t: None, recorder=None, headroom_s=3)
    >>> d.desired_idle(0.0) >= 2
    True
"""

from __future__ import annotations

import contextlib
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

from scenarios.locust_compat import mark_running, mark_waiting, nudged

MIN_IDLE = 2
RETIRE = object()  # handed to an idle user to make it leave the pool


@dataclass(frozen=True, kw_only=True)
class PoolStatus:
    """What a process tells the shape: busy and idle users, and the expected rate now."""

    busy: int
    idle: int
    rate_per_s: float
    finished: bool


class ArrivalDispatcher:
    """Dispatch arrivals at test seconds `times` (see the module docstring)."""

    def __init__(self, times: np.ndarray, *, make_plan: Callable[[int, float], Any], recorder: Any,
                 headroom_s: float = 3.0, rate_at: Callable[[float], float] | None = None,
                 on_drop: Callable[[Any, float], None] | None = None,
                 between: Callable[[int, float], None] | None = None) -> None:
        self.times = times
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
                    self.between(i, delay)  # quiet time before arrival i (e.g. make identities ahead)
                    delay = due - time.time()
                if delay > 0:
                    gevent.sleep(delay)
                plan = self.make_plan(i, due)
                self.dispatched += 1
                if not self._hand_over(plan):
                    self.recorder.arrival_dropped(plan.applicant_id)
                    if self.on_drop is not None:
                        self.on_drop(plan, time.time())
        finally:
            self.finished = True

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

    def take(self, user: Any) -> Any:
        """Block until an arrival comes for `user`; StopUser when the pool has too many idle users."""
        if self.finished or len(self.idle) > 2 * self.desired_idle(self.now_s()) + MIN_IDLE:
            raise StopUser()
        slot: AsyncResult = AsyncResult()
        self.idle.append(slot)
        mark_waiting(user)                      # Locust may stop a waiting user at once
        try:
            plan = slot.get()
        except BaseException:
            if slot.ready():                    # handed over just as we were stopped: give it on
                plan = slot.get()
                if not self._hand_over(plan):
                    self.recorder.arrival_dropped(plan.applicant_id)
                    if self.on_drop is not None:
                        self.on_drop(plan, time.time())
            else:
                with contextlib.suppress(ValueError):
                    self.idle.remove(slot)
            raise
        if plan is RETIRE:
            raise StopUser()
        mark_running(user)
        self.busy += 1
        return plan

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
        return PoolStatus(busy=self.busy, idle=len(self.idle), rate_per_s=self.rate_at(self.now_s()),
                          finished=self.finished)


class OpenModelShape(LoadTestShape):
    """Pool size for Locust: grow to busy + headroom within the cap; stop when the schedule is done.

    `source` returns (dispatcher or None, user_cap, duration_s) so the shape can be
    created before the run is set up (Locust instantiates it at import).
    """

    source: Callable[[], tuple[Any, int, float]] | None = None
    spawn_rate = 100.0

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
        live = runner.user_count if runner is not None else 0
        if dispatcher is None:
            return (min(cap, MIN_IDLE), self.spawn_rate)
        if dispatcher.finished:
            return None
        dispatcher.trim()
        st = dispatcher.status()
        want = min(cap, st.busy + dispatcher.desired_idle(dispatcher.now_s()))
        target = min(cap, max(want, live))
        tick = nudged(target, self.spawn_rate, self._flip)
        if tick == self._last and live < want:
            # Locust calls start() only when the tick changes; flip the spawn rate by a hair so
            # users that retired themselves are replaced.
            self._flip ^= 1
            tick = nudged(target, self.spawn_rate, self._flip)
        self._last = tick
        return tick
