"""The capacity probe's load: its applicants, their journey, and the recorder of what they did.

`ProbeApplicant` (a Locust user) loops the new-applicant journey with no think time;
`RECORDER` collects each request, step and stamp seen done into the level being measured
(scenarios.probe's ladder decides the levels and batches). A stamp counts at the server's
`finished_at` when the answer carries one. A redirect from the target is recorded in
`REFUSED`, and `sleep_watching` stops the probe at the first.

Importing this module imports Locust, which patches the standard library with
gevent: import it only in a process that runs load.
"""

from __future__ import annotations

import bisect
import itertools
import json
import random
import time
from collections import Counter, defaultdict
from typing import Any

import gevent
import numpy as np
from locust import FastHttpUser, constant, task

from floor.errors import TargetError
from floor.timegrammar import unix_seconds
from floor.vocabulary import STEPS
from scenarios.identities import make_identity
from scenarios.journeys import ApplicantPlan, GiveUp, JourneyRun
from scenarios.profile_build import Journeys

PROBE_JOURNEYS = Journeys(mix={"new_applicant": 1.0}, think_time_s=(0.0, 0.0), patience_s=120.0,
                          poll_interval_s=0.2, retry_mix={"backoff": 1.0}, backoff_base_s=0.2,
                          backoff_max_s=2.0, max_attempts=3, request_timeout_s=30.0)

class _Level:
    """What the journeys did while one level was measured (all its batches)."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.journey_s: list[float] = []
        self.journey_errors = 0
        self.stamps = 0
        self.stamp_s: list[float] = []
        self.seconds = 0.0


class LevelRecorder:
    """Collects what the journeys did into the level being measured and the current batch.

    While `level` is None (settling after a change of level) nothing is kept.
    """

    def __init__(self) -> None:
        self.levels: dict[int, _Level] = {}
        self.level: int | None = None
        self.done: list[float] = []
        self.lags: list[float] = []
        self.stampers = 0  # applicants that have had a stamp accepted (ever)
        self.cut()

    def measure(self, level: int | None) -> None:
        """Record into `level` from now on (None: settling, record nothing)."""
        self.level = level
        if level is not None:
            self.levels.setdefault(level, _Level())
        self.cut()

    def cut(self) -> dict[str, int]:
        """End the current batch: return its counts and start the next one."""
        out = {"requests": getattr(self, "_requests", 0), "errors": getattr(self, "_errors", 0)}
        self._requests = self._errors = 0
        return out

    def _cur(self) -> _Level | None:
        return None if self.level is None else self.levels[self.level]

    # the recorder interface JourneyRun calls
    def request_done(self, step: str, sent_unix: float, seconds: float, ok: bool) -> None:
        """One request finished."""
        cur = self._cur()
        if cur is None:
            return
        cur.latency[step].append(seconds)
        self._requests += 1
        if not ok:
            cur.errors[step] += 1
            self._errors += 1

    def step_done(self, step: str, end_unix: float, seconds: float) -> None:
        """A step finished (the probe has no think time, so this is the step's own time)."""
        cur = self._cur()
        if cur is not None and step == "poll_stamp":
            cur.stamp_s.append(seconds)

    def ledger_row(self, applicant_id: str, kind: str, ref: str, *, status: str, **_: Any) -> None:
        """The journey's ledger (the probe counts stamps through stamp_done instead)."""

    def stamp_done(self, finished_unix: float) -> None:
        """A stamp the client saw done (not an accepted upload), at the time the issuer finished it.

        Kept while settling too: a batch's last stamps are often seen after it ended.
        """
        bisect.insort(self.done, finished_unix)
        self.lags.append(max(0.0, time.time() - finished_unix))
        del self.lags[:-200]

    def lag_s(self) -> float:
        """How late the client sees most stamps done (95th percentile of the last 200), seconds."""
        return float(np.percentile(self.lags, 95)) if self.lags else 0.5

    def count(self, t0: float, t1: float) -> int:
        """Stamps finished in [t0, t1)."""
        return bisect.bisect_left(self.done, t1) - bisect.bisect_left(self.done, t0)

    def journey_done(self, seconds: float, ok: bool) -> None:
        """A whole journey ended."""
        cur = self._cur()
        if cur is None:
            return
        cur.journey_s.append(seconds)
        if not ok:
            cur.journey_errors += 1

    def error_ratio(self, level: int) -> float:
        """Share of the level's requests that failed so far."""
        lv = self.levels[level]
        n = sum(len(v) for v in lv.latency.values())
        return sum(lv.errors.values()) / n if n else 0.0

    def rows(self, concurrency: int) -> list[dict[str, Any]]:
        """probe.csv rows of one level (all its measured batches)."""
        lv = self.levels[concurrency]
        duration = max(1e-9, lv.seconds)

        def row(step: str, samples: list[float], errors: int, completed: float) -> dict[str, Any]:
            n = len(samples)
            pct = np.percentile(np.asarray(samples) * 1000, [50, 95, 99]) if n else [None] * 3
            return {"concurrency": concurrency, "step": step, "requests": n, "errors": errors,
                    "error_ratio": round(errors / n, 6) if n else 0.0,
                    "throughput_per_s": round(completed / duration, 4),
                    "p50_ms": _r(pct[0]), "p95_ms": _r(pct[1]), "p99_ms": _r(pct[2]),
                    "duration_s": round(duration, 3)}

        out = [row(s, lv.latency[s], lv.errors[s], len(lv.latency[s]) - lv.errors[s])
               for s in STEPS if lv.latency.get(s)]
        ok_journeys = len(lv.journey_s) - lv.journey_errors
        out.append(row("journey", lv.journey_s, lv.journey_errors, ok_journeys))
        stamp_errors = sum(lv.errors.values())
        all_requests = sum(len(v) for v in lv.latency.values())
        out.append({**row("stamps", lv.stamp_s, 0, lv.stamps),
                    "requests": lv.stamps, "errors": stamp_errors,
                    "error_ratio": round(stamp_errors / all_requests, 6) if all_requests else 0.0})
        return out


def _r(x: Any) -> float | None:
    return None if x is None else round(float(x), 3)


RECORDER = LevelRecorder()
REFUSED: list[str] = []   # redirects the journeys refused: the probe stops at the first
_IDS = itertools.count(1)
_RUN_TAG = f"probe{int(time.time())}"


class ProbeJourney(JourneyRun):
    """The journey, polling a queued stamp less often the longer it waits (0.2 s, x1.5, to 1 s).

    Deep in saturation every applicant waits at the issuer; polling each every 0.2 s
    would load the target (and this client) with status reads and lower the very
    throughput being measured. Backing off bounds the reads per stamp; the count
    of completions is unbiased in steady state (only the moment a stamp is seen shifts).
    """

    POLL_MAX_S = 1.0

    def send(self, step: str, method: str, path: str, **kw: Any) -> Any:
        """As JourneyRun.send; a poll that finds the stamp done keeps the server's `finished_at`."""
        r = super().send(step, method, path, **kw)
        if step == "poll_stamp":
            self._finished = _finished_unix(r)
        elif (step == "stamp" and 200 <= r.status_code < 300
              and getattr(self, "owner", None) is not None and not self.owner.stamping):
            self.owner.stamping = True  # this applicant has reached the issuer: the level fills
            self.rec.stampers += 1
        return r

    def ledger(self, kind: str, ref: str, **kw: Any) -> None:
        """As JourneyRun.ledger; a stamp seen done counts at the moment the issuer finished it."""
        if kind == "stamp" and kw.get("status") == "done":
            self.rec.stamp_done(getattr(self, "_finished", None) or time.time())
        super().ledger(kind, ref, **kw)

    def _step_start(self, step: str) -> None:
        if step == "poll_stamp":
            self._polls = 0
        super()._step_start(step)

    def _pause(self, seconds: float, *, giving_up_ok: bool = False) -> None:
        if self.step == "poll_stamp":
            self._polls = getattr(self, "_polls", 0) + 1
            seconds = min(self.POLL_MAX_S, seconds * 1.5 ** (self._polls - 1))
        super()._pause(seconds, giving_up_ok=giving_up_ok)


def _finished_unix(resp: Any) -> float | None:
    """The `finished_at` of a GET /v1/stamps/{id} answer as Unix seconds, or None."""
    try:
        v = json.loads(resp.content or b"{}").get("finished_at")
    except (ValueError, TypeError, AttributeError):
        return None
    return unix_seconds(v) if isinstance(v, str) and v else None


class ProbeApplicant(FastHttpUser):
    """Loops the new-applicant journey with no think time (closed model)."""

    wait_time = constant(0)
    host = "http://127.0.0.1"
    network_timeout = 30.0
    connection_timeout = 30.0
    documents = 2
    seed = 1
    stamping = False  # set once this applicant's first stamp was accepted

    @task
    def journey(self) -> None:
        """One whole journey; the next starts as soon as it ends."""
        n = next(_IDS)
        rng = random.Random(self.seed * 1_000_003 + n)
        plan = ApplicantPlan(applicant_id=f"p{n}", journey="new_applicant",
                             intended_unix=time.time(),
                             documents=self.documents, retry_policy="backoff", rng=rng,
                             identity=make_identity(rng, applicant_id=f"p{n}", run_tag=_RUN_TAG))
        t0 = time.time()
        try:
            run = ProbeJourney(self.client, plan, PROBE_JOURNEYS, RECORDER,
                               on_refused=REFUSED.append)
            run.owner = self
            outcome, _ = run.run()
        except GiveUp as g:  # run() turns these into outcomes; kept for safety
            outcome = g.outcome
        RECORDER.journey_done(time.time() - t0, outcome == "completed")


def sleep_watching(seconds: float) -> None:
    """Sleep `seconds` in small steps; a redirect refused meanwhile stops the probe."""
    end = time.time() + seconds
    while time.time() < end and not REFUSED:
        gevent.sleep(min(0.2, max(0.0, end - time.time())))
    if REFUSED:
        raise TargetError(f"{REFUSED[0]}; the probe stopped (no load follows a redirect)")
