"""The open-model pool alone, on Locust's real runner and spawner, with journeys that only sleep
(test-only).

The pool's growth is what is measured, so the journey is `gevent.sleep(journey_s)`: no
HTTP, no target, so hundreds of arrivals per second cost little CPU and a test stays
cheap. Everything else is the production code: `ArrivalDispatcher`, `OpenModelShape`
(ticked by Locust's `LocalRunner.shape_worker`), Locust's `UsersDispatcher` spawning,
the flash-crowd schedule, and the warm-up wait of `scenarios.run.Rehearsal.start`.
Run in a subprocess (importing Locust patches the standard library with gevent)::

    python -m tests.pool_run --rate 300 --journey-s 2 --duration 8 --quiet-s 4
    # the old rule:
    python -m tests.pool_run --rate 300 --journey-s 2 --duration 8 --quiet-s 4 --fixed-spawn 100

It prints one JSON object: scheduled, dropped, dropped_by_reason, peak users, the spawn
rates the shape asked for, and the dispatch lag p99.
"""

from __future__ import annotations

import argparse
import json
import time
from types import SimpleNamespace
from typing import Any

import gevent
import numpy as np
from locust import User, task
from locust.env import Environment

import scenarios.pool as pool
from scenarios.arrivals import flash_crowd_schedule
from scenarios.pool import ArrivalDispatcher, OpenModelShape
from scenarios.recorder import DROP_REASONS, Recorder
from scenarios.run import POOL_WARMUP_MAX_S

BOX: dict[str, Any] = {}


class Sleeper(User):
    """A pool member whose journey is a sleep of `BOX['journey_s']`."""

    next_plan: Any = None

    def wait_time(self) -> float:
        """Take an arrival (blocking), as `scenarios.locustfile.Applicant` does."""
        d = BOX.get("d")
        if d is None:
            return 0.05
        self.next_plan = d.take()
        return 0.0

    def on_stop(self) -> None:
        """Give back an arrival taken but not begun."""
        plan, self.next_plan = self.next_plan, None
        if plan is not None and BOX.get("d") is not None:
            BOX["d"].give_back(plan)

    @task
    def serve(self) -> None:
        """'Journey' the arrival taken in wait_time, release."""
        d = BOX.get("d")
        plan, self.next_plan = self.next_plan, None
        if d is None or plan is None:
            return
        BOX["lags"].append(time.time() - plan.intended_unix)
        try:
            gevent.sleep(BOX["journey_s"])
        finally:
            d.release()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run one flash crowd on the pool and return the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--journey-s", type=float, default=2.0)
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--quiet-s", type=float, default=4.0)
    ap.add_argument("--cap", type=int, default=100_000)
    ap.add_argument(
        "--fixed-spawn", type=float, default=None, help="the old rule: one fixed spawn rate"
    )
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    if a.fixed_spawn is not None:
        pool.spawn_rate_for = lambda **_kw: float(
            a.fixed_spawn
        )  # the mutant: growth no longer followed
    sched = flash_crowd_schedule(rate=a.rate, duration_s=a.duration, quiet_s=a.quiet_s)
    times = sched.draw(np.random.default_rng(a.seed))
    rec = Recorder(origin_unix=time.time(), calendar_of=None)
    BOX.update(journey_s=a.journey_s, lags=[])
    env = Environment(user_classes=[Sleeper], shape_class=OpenModelShape(), events=None)
    runner = env.create_local_runner()
    asked: list[tuple[int, float]] = []

    def plan(i: int, due: float) -> Any:
        aid = f"0-{i + 1:06d}"
        rec.arrival_scheduled(aid, "sleep", due)
        return SimpleNamespace(applicant_id=aid, intended_unix=due)

    d = ArrivalDispatcher(
        times,
        make_plan=plan,
        recorder=rec,
        headroom_s=3.0,
        rate_at=sched.rate_at,
        pool_size=lambda: (runner.user_count, a.cap, runner.current_cpu_usage),
    )
    OpenModelShape.source = staticmethod(lambda: (d, a.cap, a.duration))
    tick = OpenModelShape.tick

    def spy(self: OpenModelShape) -> Any:
        t = tick(self)
        if t is not None and (not asked or asked[-1] != t):
            asked.append(t)
        return t

    OpenModelShape.tick = spy  # type: ignore[method-assign]
    BOX["d"] = d
    runner.start_shape()
    want = d.desired_idle(0.0)
    until = time.time() + POOL_WARMUP_MAX_S
    while len(d.idle) < min(want, a.cap) and time.time() < until:
        gevent.sleep(0.05)
    peak = 0
    g = gevent.spawn(d.run, time.time() + 0.2)
    while not g.dead:
        peak = max(peak, runner.user_count)
        gevent.sleep(0.1)
    gevent.sleep(a.journey_s + 0.5)
    runner.quit()
    c = rec.counts
    lags = BOX["lags"]
    return {
        "scheduled": c["scheduled"],
        "dropped": c["dropped"],
        "dropped_by_reason": {r: c.get(f"dropped_{r}", 0) for r in DROP_REASONS},
        "peak_users": peak,
        "spawn_rates": [round(r, 1) for _, r in asked],
        "lag_p99_ms": round(float(np.percentile(lags, 99)) * 1000, 1) if lags else None,
    }


if __name__ == "__main__":
    print(json.dumps(main()), flush=True)
