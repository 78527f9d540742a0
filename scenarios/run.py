"""A rehearsal inside one Locust process: set-up, arrivals, monitor, and the run directory at the
end.

`Rehearsal` is created by the locustfile's init handler from the resolved
`RunSettings`; `start()` runs in a greenlet at test start, `finish()` at test
stop. It writes every file of docs/run-directory.md "Rehearsal" except Locust's
own CSVs, which Locust writes itself and `publish_locust_csvs` moves in at exit.

    >>> draw_plan_vectors({"new_applicant": 1.0}, {2: 1.0}, {"backoff": 1.0}, 3,
    ...                   __import__("numpy").random.default_rng(0))[0].tolist()
    ['new_applicant', 'new_applicant', 'new_applicant']
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import numpy as np
from gevent.pool import Pool

from floor.jsonhttp import RedirectRefused
from scenarios.arrivals import ArrivalSchedule, profile_schedule, shaped_schedule
from scenarios.collector import quiet_collector
from scenarios.conclude import (  # noqa: F401 (re-exported: the run's end lives there)
    REHEARSAL_FILES,
    SETUP_MAX_BYTES,
    conclude,
    publish_locust_csvs,
    run_problems,
    stamp_time,
)
from scenarios.curve import ArrivalCurve
from scenarios.identities import IdentitiesAhead, make_identity
from scenarios.journeys import DEFAULT_JOURNEYS, Account, ApplicantPlan
from scenarios.options import RunSettings
from scenarios.patience import draw_patience
from scenarios.pool import ArrivalDispatcher
from scenarios.recorder import Recorder, iso_utc
from scenarios.schedule import admin_actions, play
from scenarios.setup_accounts import _http, prepare_account  # noqa: F401 (re-exported)
from scenarios.target import AdminClient
from scenarios.thresholds import ThresholdWatch

SETUP_CONCURRENCY = 16
PROGRESS_EVERY_S = 5.0
POOL_WARMUP_MAX_S = 10.0
# Faker parts made in one batch before the origin (about 35 us each)
IDENTITIES_BEFORE_START = 20_000
IDENTITIES_AHEAD = 64             # during the run, keep this many made ahead of the dispatcher ...
# ... topping up only when the next arrival is at least this far off
IDENTITY_SLACK_S = 0.005
PROGRESS_PREFIX = "[surgecast]"


def draw_plan_vectors(mix: dict[str, float], stamps: dict[int, float], retry_mix: dict[str, float],
                      n: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Journey, document count and retry policy of `n` arrivals."""
    def pick(d: dict[Any, float]) -> np.ndarray:
        keys = list(d)
        p = np.array([d[k] for k in keys], dtype=float)
        return np.array(keys, dtype=object)[rng.choice(len(keys), size=n, p=p / p.sum())]
    return pick(mix), pick(stamps), pick(retry_mix)


def build_schedule(s: RunSettings, share: float = 1.0) -> ArrivalSchedule:
    """The arrival schedule of the settings (constant rate or the profile's curve)."""
    if s.arrival_rate is not None:
        return shaped_schedule(s.arrival_shape, rate=s.arrival_rate, duration_s=s.duration_s,
                               max_rate=s.max_rate,
                               share=share)
    assert s.profile is not None and s.calendar_origin is not None
    cal = s.profile.calendar
    return profile_schedule(ArrivalCurve(s.profile),
                            calendar_origin_s=cal.seconds(s.calendar_origin),
                            compress=s.compress, scale=s.scale, duration_s=s.duration_s,
                            max_rate=s.max_rate,
                            share=share)


def monitor_loop(owner: Any, origin: Callable[[], float | None]) -> None:
    """The sampling loop of a rehearsal's coordinator (a single process, or the master): every
    `--sample-interval` test seconds (default 1).

    Samples the target's queues into `owner.recorder`, keeps the generator's peak CPU,
    evaluates thresholds (stopping the run on an ':abort' breach) and prints
    `owner.progress_line(t)` every PROGRESS_EVERY_S, until `owner.finished`. `owner`
    is a `Rehearsal` or `scenarios.distributed.MasterSide`; `origin()` is its wall-clock
    start of the arrivals.
    """
    last_print = 0.0
    every = float(getattr(owner.s, "sample_interval_s", 1.0) or 1.0)
    while not owner.finished:
        gevent.sleep(every)
        now = time.time()
        if owner.admin is not None:
            m = owner.admin.metrics()
            if m is not None:
                owner.recorder.queue_sample(now, m)
            for msg in owner.admin.refused:
                owner.refuse(msg)
        cpu = getattr(owner.runner, "current_cpu_usage", None)
        if cpu is not None:
            owner.cpu_max = max(owner.cpu_max or 0.0, float(cpu))
        start = origin()
        assert start is not None
        t = now - start
        abort = owner.watch.evaluate(t)
        if abort and owner.aborted_by is None and owner.runner is not None:
            owner.aborted_by = abort[0].threshold.expr
            print(f"{PROGRESS_PREFIX} threshold {owner.aborted_by} breached: stopping the run",
                  flush=True)
            gevent.spawn(owner.runner.quit)
        if not owner.s.quiet and now - last_print >= PROGRESS_EVERY_S:
            last_print = now
            print(owner.progress_line(t), flush=True)


def done_text(counts: dict[str, int]) -> str:
    """Finished journeys, completed apart from abandoned and failed.

    >>> done_text({"completed": 5, "abandoned": 2})
    'done 7 (completed 5, abandoned 2, failed 0)'
    """
    c, a, f = (int(counts.get(k, 0)) for k in ("completed", "abandoned", "failed"))
    return f"done {c + a + f} (completed {c}, abandoned {a}, failed {f})"


def draining(t: float, duration_s: float) -> str:
    """' draining' past the run's end: arrivals are over and journeys in flight are finishing.

    >>> draining(101, 90), draining(30, 90)
    (' (arrivals over; draining)', '')
    """
    return " (arrivals over; draining)" if t > duration_s else ""


class Rehearsal:
    """One process's rehearsal (see the module docstring)."""

    def __init__(self, settings: RunSettings, *, worker: int = 0, workers: int = 1,
                 runner: Any = None) -> None:
        self.s = settings
        self.worker = worker
        self.runner = runner
        self.admin = AdminClient(settings.host,
                                 token=settings.admin_token) if settings.admin_token else None
        self.journeys = settings.profile.journeys if settings.profile else DEFAULT_JOURNEYS
        self.schedule = build_schedule(settings, share=1.0 / workers)
        seq = np.random.SeedSequence(settings.seed).spawn(workers)[worker]
        self.rng = np.random.default_rng(seq)
        self.times = self.schedule.draw(self.rng)
        stamps = settings.profile.stamps_per_applicant if settings.profile else {2: 1.0}
        self.kinds, self.docs, self.policies = draw_plan_vectors(
            self.journeys.mix, stamps, self.journeys.retry_mix, len(self.times), self.rng)
        # drawn last: a fixed law draws nothing, so every draw before stays as it was
        self.patience = draw_patience(self.journeys.patience_law, self.journeys.patience_s,
                                      len(self.times), self.rng)
        self.run_tag = uuid.uuid4().hex[:6]
        self.ahead = IdentitiesAhead(self._plan_rng, total=len(self.times))
        self.accounts: dict[int, Account | None] = {}
        self.recorder = Recorder(origin_unix=time.time(), calendar_of=self._calendar_iso,
                                 worker=worker)
        self.watch = ThresholdWatch(list(settings.thresholds), window_s=settings.threshold_window_s)
        self.dispatcher: ArrivalDispatcher | None = None
        self.action_log: list[dict[str, Any]] = []
        self.gates_before: dict[str, Any] | None = None
        self.started_unix = time.time()
        self.origin_unix: float | None = None
        self.setup_s = 0.0
        self.cpu_max: float | None = None
        self.aborted_by: str | None = None
        # redirects off the target, refused (the run stops at the first)
        self.refused: list[str] = []
        self.interrupted = False            # stopped by a signal before its end: results incomplete
        self.finished = False
        self._greenlets: list[gevent.Greenlet] = []
        self._setup_pool: Pool | None = None

    def refuse(self, message: str) -> None:
        """The target redirected off its origin: record it and stop the run (no more load goes
        there)."""
        if message not in self.refused:
            self.refused.append(message)
        if len(self.refused) == 1:
            print(f"{PROGRESS_PREFIX} refused: {message}; stopping the run", flush=True)
            if self.runner is not None:
                gevent.spawn(self.runner.quit)

    # ---- plans ---------------------------------------------------------------------------
    def _calendar_iso(self, test_s: float) -> str:
        at = self.s.calendar_at(test_s)
        if at is None:  # --arrival-rate: the calendar is the wall clock (UTC, compress 1)
            return iso_utc((self.origin_unix or self.started_unix) + test_s).replace("Z", "+00:00")
        return at.isoformat(timespec="milliseconds")

    def applicant_id(self, i: int) -> str:
        """The id of arrival `i` of this process."""
        return f"{self.worker}-{i + 1:06d}"

    def _plan_rng(self, i: int) -> random.Random:
        return random.Random(f"{self.s.seed}:{self.worker}:{i}")

    def plan(self, i: int, intended_unix: float) -> ApplicantPlan:
        """The plan of arrival `i`: identity and behaviour come from a seed of (seed, worker, i)."""
        rng = self._plan_rng(i)
        aid = self.applicant_id(i)
        ident = make_identity(rng, applicant_id=aid, run_tag=self.run_tag, ahead=self.ahead.made)
        return ApplicantPlan(applicant_id=aid, journey=str(self.kinds[i]),
                             intended_unix=intended_unix,
                             documents=int(self.docs[i]), retry_policy=str(self.policies[i]),
                             rng=rng, patience_s=float(self.patience[i]),
                             identity=ident, account=self.accounts.get(i))

    def make_plan(self, i: int, due: float) -> ApplicantPlan:
        """Called by the dispatcher when arrival `i` is due."""
        p = self.plan(i, due)
        self.recorder.arrival_scheduled(p.applicant_id, p.journey, due, patience_s=p.patience_s)
        return p

    def between_arrivals(self, i: int, slack_s: float) -> None:
        """Called by the dispatcher before it sleeps until arrival `i`: make identities ahead while
        it is quiet."""
        a = self.ahead
        if slack_s >= IDENTITY_SLACK_S and a.next < i + IDENTITIES_AHEAD // 2:
            a.fill(i + IDENTITIES_AHEAD, limit=max(1, int(slack_s / 4 / 50e-6)))

    # ---- the run -----------------------------------------------------------------------------
    def setup_accounts(self) -> None:
        """Make the accounts of returning and stamp-only applicants before the run (un-timed)."""
        t0 = time.time()
        need = [i for i, k in enumerate(self.kinds) if k != "new_applicant"]
        pool = self._setup_pool = Pool(SETUP_CONCURRENCY)

        def one(i: int) -> None:
            plan = self.plan(i, 0.0)
            try:
                acc = prepare_account(self.s.host, plan, with_quota=plan.journey == "stamp_only")
            except RedirectRefused as e:
                self.refuse(str(e))
                acc = None
            self.accounts[i] = acc
            if acc is not None:
                aid = plan.applicant_id
                self.recorder.ledger_row(aid, "account", acc.account_id, account_id=acc.account_id,
                                         email=acc.email, status="created_in_setup",
                                         unix=time.time())
                o = plan.extra.get("setup_order")
                if o:
                    for kind in ("order", "payment"):
                        told = ({"http_status": o["pay_status"],
                                 "payment_id": o["payment_id"]} if kind == "payment"
                                else {"http_status": 201, "quantity_told": o["quantity_told"],
                                      "idempotency_keys": o["idempotency_key"]})
                        status = "credited" if kind == "payment" else "pending_payment"
                        self.recorder.ledger_row(aid, kind, o["order_id"],
                                                 account_id=acc.account_id,
                                                 email=acc.email, quantity=o["quantity"],
                                                 amount=o["amount"], status=status,
                                                 unix=time.time(), **told)
        for i in need:
            if self.refused or self.finished:
                break
            pool.spawn(one, i)
        pool.join()
        self.setup_s = time.time() - t0

    def start(self, go: Any = None) -> None:
        """Set up, then start the arrivals, the admin player and the monitor (run in a greenlet).

        In a distributed worker `go` is a callable that reports this process ready and blocks
        until the master gives the common origin (Unix seconds); the worker then runs only its
        dispatcher (admin actions, queue sampling and thresholds are the master's).
        """
        if self.admin is not None and go is None:
            m = self.admin.metrics()
            self.gates_before = (m or {}).get("gates")
        self.setup_accounts()
        self.ahead.fill(IDENTITIES_BEFORE_START, limit=IDENTITIES_BEFORE_START)
        d = ArrivalDispatcher(self.times, make_plan=self.make_plan, recorder=self.recorder,
                              headroom_s=self.s.headroom_s, rate_at=self.schedule.rate_at,
                              on_drop=lambda p,
                              t: self.watch.outcome("dropped", t - (self.origin_unix or t)),
                              between=self.between_arrivals, pool_size=self.pool_size)
        self.dispatcher = d  # the shape now sizes the pool for the first seconds
        want = min(self.s.user_cap, d.desired_idle(0.0))
        wait_until = time.time() + POOL_WARMUP_MAX_S
        while len(d.idle) < want and time.time() < wait_until:
            gevent.sleep(0.05)
        quiet_collector()
        given = time.time() + 0.2 if go is None else go()
        if given is None or self.finished:  # the master stopped the run before it began
            return
        origin = float(given)
        self.origin_unix = origin
        self.recorder.origin_unix = origin
        self._greenlets.append(gevent.spawn(d.run, origin))
        if go is not None:
            return
        if self.admin is not None:
            acts = admin_actions(self.s)
            if acts:
                self._greenlets.append(gevent.spawn(play, self.admin, acts, origin, self.action_log,
                                                    gevent.sleep))
        self._greenlets.append(gevent.spawn(self.monitor))

    def pool_size(self) -> tuple[int, int, float | None]:
        """(live Locust users, this process's share of --user-cap, Locust's CPU %): for drop
        reasons."""
        r = self.runner
        live = int(getattr(r, "user_count", 0) or 0)
        # Locust spreads the pool evenly over workers
        cap = -(-self.s.user_cap // max(1, self.s.workers))
        cpu = getattr(r, "current_cpu_usage", None)
        return live, cap, float(cpu) if isinstance(cpu, int | float) else None

    def monitor(self) -> None:
        """Each second: sample the target's queues, check thresholds, print progress every 5 s."""
        monitor_loop(self, lambda: self.origin_unix)

    def progress_line(self, t: float) -> str:
        """The progress line: test and calendar time, arrivals, dropped, busy (backlog) and the
        issuer queue."""
        c = self.recorder.counts
        d = self.dispatcher
        cal = self._calendar_iso(min(t, self.s.duration_s))
        q = self.recorder.queue_rows[-1][2] if self.recorder.queue_rows else "-"
        return (f"{PROGRESS_PREFIX} t={t:5.0f}s/{self.s.duration_s:.0f}s"
                + draining(t, self.s.duration_s)
                + (f"  calendar {cal[:16].replace('T', ' ')}" if cal else "")
                + f"  arrivals {c.get('scheduled', 0)}/{len(self.times)}"
                f"  dropped {c.get('dropped', 0)}"
                f"  in journey {d.busy if d else 0}  {done_text(c)}  issuer queue {q}")

    # ---- the end -----------------------------------------------------------------------------
    def close_journeys(self) -> None:
        """Stop this process's greenlets; journeys the stop cut short end as abandoned."""
        self.finished = True
        for g in self._greenlets:
            g.kill(block=False)
        if self._setup_pool is not None:
            self._setup_pool.kill(block=False)
        now = time.time()
        for a in self.recorder.arrivals.values():
            if not a["outcome"] and a["started"] is not None:
                self.recorder.arrival_finished(a["applicant_id"], "abandoned",
                                               a["ended_step"] or "", a["attempts"], now)

    def setup_extra(self) -> dict[str, Any]:
        """run.json's set-up fields of this process."""
        return {"setup_s": round(self.setup_s, 3),
                "setup_accounts": sum(1 for a in self.accounts.values() if a is not None),
                "setup_failed": sum(1 for a in self.accounts.values() if a is None)}

    def finish(self, out: Path | None) -> int:
        """Stop, collect the target's audit and ledger, write the run directory; return the exit
        code."""
        if self.finished:
            return self.exit_code
        self.close_journeys()
        self.exit_code = conclude(
            self.s, self.recorder, out=out, admin=self.admin, gates_before=self.gates_before,
            action_log=self.action_log, watch=self.watch,
                                  origin_unix=self.origin_unix or self.started_unix,
            started_unix=self.started_unix, scheduled_expected=self.schedule.expected(),
                                  cpu_max=self.cpu_max,
            extra={**self.setup_extra(), "aborted_by": self.aborted_by},
            refused=self.refused, interrupted=self.interrupted)
        self.concluded = True
        return self.exit_code

    exit_code = 0
    concluded = False
