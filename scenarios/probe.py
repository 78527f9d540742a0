"""The capacity probe's load: a stepped closed-model Locust run (Locust used as a library).

A fixed pool of `n` applicants loops the new-applicant journey with no think
time; `n` steps through 1, 2, 4, 8, ... Each level first warms up, then is
measured for `step_duration_s`. The probe stops when the completed-stamp
throughput has not risen by `min_gain` for `patience_levels` levels, when the
error ratio passes `max_error_ratio`, or at `max_concurrency`. The result is
rows of docs/run-directory.md's probe.csv; `analysis.probe` turns them into
capacity.json. Usage::

    rows = run_probe(ProbeSettings(host="http://127.0.0.1:8080"))

Importing this module imports Locust, which patches the standard library with
gevent: import it only in a process that runs load.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
import numpy as np
from locust import FastHttpUser, constant, task
from locust.env import Environment

from scenarios.identities import make_identity
from scenarios.journeys import ApplicantPlan, GiveUp, JourneyRun
from scenarios.profile import Journeys
from surgecast.errors import TargetError

STEPS = ("register", "login", "order", "pay", "wait_quota", "stamp", "poll_stamp", "download")
PROBE_JOURNEYS = Journeys(mix={"new_applicant": 1.0}, think_time_s=(0.0, 0.0), patience_s=120.0,
                          poll_interval_s=0.2, retry_mix={"backoff": 1.0}, backoff_base_s=0.2,
                          backoff_max_s=2.0, max_attempts=3, request_timeout_s=30.0)


@dataclass(frozen=True, kw_only=True)
class ProbeSettings:
    """How the probe steps its load.

    >>> ProbeSettings(host="http://127.0.0.1:1").levels()[:5]
    [1, 2, 4, 8, 16]
    """

    host: str
    step_duration_s: float = 8.0
    warmup_s: float = 2.0
    max_concurrency: int = 128
    max_error_ratio: float = 0.05
    min_gain: float = 0.05
    patience_levels: int = 2
    documents: int = 2
    seed: int = 1

    def levels(self) -> list[int]:
        """Concurrency levels 1, 2, 4, ... up to max_concurrency."""
        out = [1]
        while out[-1] * 2 <= self.max_concurrency:
            out.append(out[-1] * 2)
        return out


class LevelRecorder:
    """What the journeys of one level did; reset at the start of each measured window."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything and start the window now."""
        self.started = time.time()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.journey_s: list[float] = []
        self.journey_errors = 0
        self.stamps = 0
        self.stamp_s: list[float] = []

    # the recorder interface JourneyRun calls
    def request_done(self, step: str, sent_unix: float, seconds: float, ok: bool) -> None:
        """One request finished."""
        self.latency[step].append(seconds)
        if not ok:
            self.errors[step] += 1

    def step_done(self, step: str, end_unix: float, seconds: float) -> None:
        """A step finished (the probe has no think time, so this is the step's own time)."""
        if step == "poll_stamp":
            self.stamp_s.append(seconds)

    def ledger_row(self, applicant_id: str, kind: str, ref: str, *, status: str, **_: Any) -> None:
        """Count stamps the issuer finished."""
        if kind == "stamp" and status == "done":
            self.stamps += 1

    def journey_done(self, seconds: float, ok: bool) -> None:
        """A whole journey ended."""
        self.journey_s.append(seconds)
        if not ok:
            self.journey_errors += 1

    def rows(self, concurrency: int) -> list[dict[str, Any]]:
        """probe.csv rows of this window."""
        duration = max(1e-9, time.time() - self.started)

        def row(step: str, samples: list[float], errors: int, completed: float) -> dict[str, Any]:
            n = len(samples)
            pct = np.percentile(np.asarray(samples) * 1000, [50, 95, 99]) if n else [None] * 3
            return {"concurrency": concurrency, "step": step, "requests": n, "errors": errors,
                    "error_ratio": round(errors / n, 6) if n else 0.0,
                    "throughput_per_s": round(completed / duration, 4),
                    "p50_ms": _r(pct[0]), "p95_ms": _r(pct[1]), "p99_ms": _r(pct[2]),
                    "duration_s": round(duration, 3)}

        out = [row(s, self.latency[s], self.errors[s], len(self.latency[s]) - self.errors[s])
               for s in STEPS if self.latency.get(s)]
        out.append(row("journey", self.journey_s, self.journey_errors, len(self.journey_s) - self.journey_errors))
        stamp_errors = sum(self.errors.values())
        all_requests = sum(len(v) for v in self.latency.values())
        out.append({**row("stamps", self.stamp_s, 0, self.stamps),
                    "requests": self.stamps, "errors": stamp_errors,
                    "error_ratio": round(stamp_errors / all_requests, 6) if all_requests else 0.0})
        return out


def _r(x: Any) -> float | None:
    return None if x is None else round(float(x), 3)


RECORDER = LevelRecorder()
REFUSED: list[str] = []   # redirects the journeys refused: the probe stops at the first
_IDS = itertools.count(1)
_RUN_TAG = f"probe{int(time.time())}"


class ProbeApplicant(FastHttpUser):
    """Loops the new-applicant journey with no think time (closed model)."""

    wait_time = constant(0)
    host = "http://127.0.0.1"
    network_timeout = 30.0
    connection_timeout = 30.0
    documents = 2
    seed = 1

    @task
    def journey(self) -> None:
        """One whole journey; the next starts as soon as it ends."""
        n = next(_IDS)
        rng = random.Random(self.seed * 1_000_003 + n)
        plan = ApplicantPlan(applicant_id=f"p{n}", journey="new_applicant", intended_unix=time.time(),
                             documents=self.documents, retry_policy="backoff", rng=rng,
                             identity=make_identity(rng, applicant_id=f"p{n}", run_tag=_RUN_TAG))
        t0 = time.time()
        try:
            outcome, _ = JourneyRun(self.client, plan, PROBE_JOURNEYS, RECORDER, on_refused=REFUSED.append).run()
        except GiveUp as g:  # run() turns these into outcomes; kept for safety
            outcome = g.outcome
        RECORDER.journey_done(time.time() - t0, outcome == "completed")


class ProbeInterrupted(KeyboardInterrupt):
    """SIGTERM/SIGINT during the probe; `rows` holds the levels measured before it."""

    def __init__(self, signame: str, rows: list[dict[str, Any]]) -> None:
        super().__init__(signame)
        self.signame, self.rows = signame, rows


def _sleep_watching(seconds: float) -> None:
    end = time.time() + seconds
    while time.time() < end and not REFUSED:
        gevent.sleep(min(0.2, max(0.0, end - time.time())))
    if REFUSED:
        raise TargetError(f"{REFUSED[0]}; the probe stopped (no load follows a redirect)")


def run_probe(s: ProbeSettings, *, progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Step the load and return the probe.csv rows of every measured level.

    A redirect from the target stops it with a TargetError; SIGTERM/SIGINT stop it with
    `ProbeInterrupted` carrying the rows measured so far (users stopped first).
    """
    REFUSED.clear()
    ProbeApplicant.host = s.host
    ProbeApplicant.documents = s.documents
    ProbeApplicant.seed = s.seed
    env = Environment(user_classes=[ProbeApplicant], host=s.host)
    runner = env.create_local_runner()
    rows: list[dict[str, Any]] = []
    best = 0.0
    flat = 0
    try:
        for n in s.levels():
            runner.start(n, spawn_rate=max(10, n))
            _sleep_watching(s.warmup_s)
            RECORDER.reset()
            _sleep_watching(s.step_duration_s)
            level = RECORDER.rows(n)
            rows.extend(level)
            stamps = next(r for r in level if r["step"] == "stamps")
            x, err = stamps["throughput_per_s"], stamps["error_ratio"]
            if progress:
                progress(f"concurrency {n:>4}: {x:8.2f} stamps/s, error ratio {err:.1%}")
            if err > s.max_error_ratio:
                break
            if x > best * (1 + s.min_gain):
                best, flat = x, 0
            else:
                flat += 1
                if flat >= s.patience_levels:
                    break
    except KeyboardInterrupt as e:
        runner.quit()
        raise ProbeInterrupted(getattr(e, "signame", "SIGINT"), rows) from None
    finally:
        runner.quit()
        env.runner = None
    return rows
