"""The capacity probe's load: a stepped closed-model Locust run (Locust used as a library).

A fixed pool of `n` applicants loops the new-applicant journey with no think
time; `n` steps through 1, 2, 4, 8, ... (x4 while the server's issuer queue stays
empty, or throughput grows near-linearly and no stamp queues: below the knee a level
says nothing about the capacity and each costs its filling time; that is why a
ladder may read 1, 4, 16, 32 or 1, 2, 8, 32). Each
level fills (every new applicant has reached the issuer), settles for `warmup_s`,
then is measured in batches of `batch_s` (sub-windows). A stamp counts when the
client **sees it done** (GET /v1/stamps/{id} says `done`): completions, not
accepted 202s, so it works on any target. It is counted at the server's
`finished_at` when the answer carries one (else when it was seen), so the
moment a poll happens to see it does not move it between batches. After each batch a
`Judge` (given by the caller, from `analysis.probe`) compares the level with the one below:

* rising (significantly): go to the next level;
* no queue at the issuer: the level has headroom whatever its short, noisy rate
  says: climb on (after two batches when the server's queue stayed empty, else
  after `step_duration_s`);
* stamps queue at the issuer (the judge's `queued`: the server's queue non-empty at
  the batch edges, else the client's waits `queue_factor` x the least) and the step
  is flat (or a gain not shown, at most `climb_gain`): levelled. That level is
  **held** (more batches, no new applicants, so no filling transient; one level
  deeper if its queue was thin) until the interval is within `precision` or the
  budget is spent; falling: the level below is held instead;
* the climb stops at `1 - hold_share` of `budget_s`, so the hold always gets its
  share; out of climbing time, the current level is held and the analysis judges
  it (a clear rise into it is never called the peak).

Each batch records how late its closing edge came (`late_s`). A batch is a timed sleep of
the client, so a late edge means the client itself did not run (an overloaded machine):
it sent nothing meanwhile and the target's queue drained for a reason that is not the
target's. Such a batch, and the one after it (the target idles until the resumed
applicants reach it again), are written but neither judged nor counted (the judge's `steady`).

A level whose requests fail more than `max_error_ratio` stops the climb (the
level below is held). When the target has an admin API, `server_completed`
(the issuer's `completed` counter, its busy share and queue) is read at every
batch boundary, as a cross-check of the client's count. The result is the rows of probe.csv and
probe_batches.csv (docs/run-directory.md); `analysis.probe` turns them into
capacity.json. Usage::

    judge = Judge(estimate=..., assess=..., queued=...)
    run = run_probe(ProbeSettings(host="http://127.0.0.1:8080"), judge=judge)

Importing this module imports Locust, which patches the standard library with
gevent: import it only in a process that runs load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent
import numpy as np
from locust.env import Environment

from scenarios.probe_load import (
    PROBE_JOURNEYS,
    RECORDER,
    REFUSED,
    LevelRecorder,
    ProbeApplicant,
    ProbeJourney,
)
from scenarios.probe_load import sleep_watching as _sleep_watching
from scenarios.probe_settings import Judge, ProbeRun, ProbeSettings, precise

__all__ = ["PROBE_JOURNEYS", "RECORDER", "REFUSED", "TAIL_S", "Judge", "LevelRecorder",
           "ProbeApplicant", "ProbeInterrupted", "ProbeJourney", "ProbeRun", "ProbeSettings",
           "run_probe"]

TAIL_S = 2.0   # at most this long, after the last batch, for its stamps to be seen done


class ProbeInterrupted(KeyboardInterrupt):
    """SIGTERM/SIGINT during the probe; `run` holds what was measured before it."""

    def __init__(self, signame: str, run: ProbeRun) -> None:
        super().__init__(signame)
        self.signame, self.run = signame, run


class _Ladder:
    """The probe's state machine: levels, batches, the hold (see the module docstring)."""

    def __init__(self, s: ProbeSettings, judge: Judge,
                 server_completed: Callable[[], dict[str, Any] | None] | None,
                 progress: Callable[[str], None]) -> None:
        self.s, self.judge, self.server, self.say = s, judge, server_completed, progress
        self.batches: list[dict[str, Any]] = []
        # the budget holds the whole probe: keep the last stamps' sighting (run_probe) inside it
        self.deadline = time.monotonic() + s.budget_s - TAIL_S
        self._edge: tuple[float, dict[str, Any] | None, dict[str, int]] | None = None
        self.hold_stopped_by: str | None = None
        self.env = Environment(user_classes=[ProbeApplicant], host=s.host)
        self.runner = self.env.create_local_runner()

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def go_to(self, n: int) -> None:
        """Change the pool to n applicants and let it settle (`warmup_s` after it filled).

        Going down, the applicants stopped take with them what they had not seen yet: first the
        batch just closed is given the client's lag to be seen whole (its last stamps are seen
        a poll after they finished, and an applicant stopped no longer polls). Their stamps
        still queued are then done by the issuer but seen by no client, so the level below
        waits until they have drained, or the client's count would fall short of what the
        issuer did (seen: 1 stamp seen of the server's 9, then 15 of 24, in the first two
        batches of a hold after a step down from 64 to 16 applicants, which had waited for one
        stamp per stopped applicant; each has `documents` of them). With the server's figures
        the wait is exact: until the issuer has finished every stamp it held at the stop (its
        queue and its busy workers; the stopped ones are among them). Without them: each
        stopped applicant's documents, at the highest rate measured so far.
        """
        RECORDER.measure(None)
        self._edge = None
        before = self.runner.user_count
        going_down = before > n
        if going_down:
            _sleep_watching(min(TAIL_S, RECORDER.lag_s(), max(0.0, self.left())))
        held = self._server() if going_down else None
        self.runner.start(n, spawn_rate=min(100, max(10, n)))
        settle = self.s.warmup_s
        if going_down:
            room = max(0.0, min(15.0, self.left() - 3 * self.s.batch_s))
            if held is not None:
                self._drain(held, room)
            else:
                settle += min(room, self._drain_guess(before - n))
        else:
            # Going up: the new applicants register, log in and pay before their first stamp.
            # Until every one of them has reached the issuer the level is still filling, and a
            # window measured then reads a transient, not the level (at most 10 s more, and
            # never into the time kept for the hold).
            # The server's queue may end the wait sooner: an issuer already saturated (stamps
            # waiting, every worker busy) stays so as the rest arrive, so its rate is the level's.
            limit = time.monotonic() + min(10.0, max(4.0, self.climb_left()))
            while (RECORDER.stampers < n and time.monotonic() < limit and self.left() > 0
                   and not self.busy_now()):
                _sleep_watching(0.25)
        _sleep_watching(settle)

    def _drain_guess(self, stopped: int) -> float:
        """Seconds for `stopped` applicants' stamps to drain, without the server's figures: each
        applicant's documents, at the highest rate measured so far."""
        rate = max((self.estimate(m).stamps_per_second for m in RECORDER.levels), default=1.0)
        return stopped * self.s.documents / max(rate, 1.0)

    def _drain(self, held: dict[str, Any], room: float) -> None:
        """Wait (at most `room` seconds) until the issuer has finished, done or failed, every
        stamp it held in `held` (a server reading: its queue and busy workers)."""
        target = _finished(held) + int(held.get("queue") or 0) + int(held.get("busy") or 0)
        limit = time.monotonic() + room
        while time.monotonic() < limit:
            c = self._server()
            if c is None or _finished(c) >= target:
                return
            _sleep_watching(0.1)

    def busy_now(self) -> bool:
        """The server says its issuer is saturated now: 2+ stamps waiting, every worker busy."""
        c = self._server()
        return c is not None and c.get("queue", 0) >= 2 and (c.get("busy_share") or 0.0) >= 1.0

    def climb_left(self) -> float:
        """Seconds the ladder may still climb: the budget less the share kept for the hold."""
        return self.left() - self.s.hold_share * self.s.budget_s

    def _boundary(self) -> tuple[float, dict[str, Any] | None, dict[str, int]]:
        """One batch edge: the server's figures and the client's cut at (nearly) the same moment.

        The edge's time, which splits the client's stamps (by their `finished_at`) between two
        batches, is the middle of the server's answer: the moment its `completed` was read."""
        before = time.time()
        c = self._server()
        at = (before + time.time()) / 2 if c is not None else time.time()
        return at, c, RECORDER.cut()

    def batch(self, n: int, phase: str) -> None:
        """Measure one batch at level n; consecutive batches share their edges."""
        if RECORDER.level != n or self._edge is None:
            RECORDER.measure(n)
            self._edge = self._boundary()
        t0, c0, _ = self._edge
        _sleep_watching(max(0.0, self.s.batch_s - (time.time() - t0)))
        self._edge = t1, c1, counts = self._boundary()
        RECORDER.levels[n].seconds += t1 - t0
        both = c0 is not None and c1 is not None
        self.batches.append({"concurrency": n, "phase": phase, "start_unix": t0,
                             "duration_s": t1 - t0, "stamps": None, **counts,
                             "server_stamps": (c1["completed"] - c0["completed"]) if both else None,
                             "server_busy_share": c1.get("busy_share") if c1 else None,
                             "server_queue": c1.get("queue") if c1 else None,
                             "late_s": round(max(0.0, t1 - t0 - self.s.batch_s), 4)})

    def steady(self, batches: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """The batches the client did not stall in (the judge's `stalled`: its closing edge
        came too late for the batch to say anything about the target)."""
        return self.judge.steady(self.batches if batches is None else batches, self.s.batch_s)

    def steady_count(self, n: int) -> int:
        """How many of level n's batches speak for the target (`steady`)."""
        return sum(b["concurrency"] == n for b in self.steady())

    def counted(self, horizon: float | None = None, *, steady: bool = False
                ) -> list[dict[str, Any]]:
        """The batches with their stamps counted, each cut at `horizon` (stamps finished later
        may not have been seen yet); batches wholly after it are left out, and with `steady`
        the batches the client stalled in."""
        out = []
        for b in self.steady() if steady else self.batches:
            t0 = b["start_unix"]
            t1 = t0 + b["duration_s"] if horizon is None else min(t0 + b["duration_s"], horizon)
            if t1 - t0 < 0.2 * self.s.batch_s:
                continue
            full = horizon is None or t1 >= t0 + b["duration_s"]
            out.append({**b, "stamps": RECORDER.count(t0, t1), "duration_s": t1 - t0,
                        "server_stamps": b["server_stamps"] if full else None})
        return out

    def _server(self) -> dict[str, Any] | None:
        if self.server is None:
            return None
        try:
            return self.server()
        except Exception:  # the cross-check is optional: a failing admin API leaves it empty
            return None

    def estimate(self, n: int) -> Any:
        every = self.counted(time.time() - RECORDER.lag_s(), steady=True)
        # none counted yet (or every one of the level's batches stalled): its batches with no
        # stamps, an estimate of nothing rather than no estimate
        level = ([b for b in self.steady() if b["concurrency"] == n]
                 or [b for b in self.batches if b["concurrency"] == n])
        mine = [b for b in every if b["concurrency"] == n] or [{**b, "stamps": 0} for b in level]
        return self.judge.estimate(mine, every)

    def climb(self, n: int, below: int | None) -> str:
        """Measure level n until it can be judged against `below`: the verdict.

        rising: climb on (headroom: no clear rise, but no queue either: climb on too).
        flat / falling: stamps queue at the issuer at n (saturation) and
        the step into n is not a significant rise (a gain not shown counts as flat only up
        to `climb_gain`). A level without a queue has headroom whatever its short, noisy
        rate says, so it is never flat. errors / budget: stop.
        """
        self.go_to(n)
        before = self.steady_count(n)
        while True:
            self.batch(n, "ladder")
            measured = self.steady_count(n) - before   # stalled batches and recoveries: not counted
            if RECORDER.error_ratio(n) > self.s.max_error_ratio:
                return "errors"
            if self.left() <= 0:
                return "budget"
            if measured < 2:
                continue
            if below is None:
                return "rising"
            last = measured * self.s.batch_s >= self.s.step_duration_s or self.climb_left() <= 0
            verdict = self.judge.assess(self.estimate(below), self.estimate(n), final=last)
            if verdict == "rising":
                return "rising"   # a clear rise may be called after two batches
            if not self.saturated(n) and (last or self.idle(n)):
                # no clear rise, but no queue either (the server's never held one): climb on
                return "headroom"
            if measured < self.s.min_batches or not self.saturated(n) or verdict == "undecided":
                continue
            if verdict == "inconclusive":
                x0, x1 = self.estimate(below).stamps_per_second, self.estimate(n).stamps_per_second
                return "flat" if x0 > 0 and x1 / x0 <= 1 + self.s.climb_gain else "rising"
            return verdict

    def saturated(self, n: int) -> bool:
        """Stamps queue at the issuer at level n (the judge's rule: the server's queue, else
        client waits)."""
        waits = {m: float(np.median(lv.stamp_s)) * 1000
                 for m, lv in RECORDER.levels.items() if lv.stamp_s}
        return n in self.judge.queued(self.steady(), waits)

    def wait_ratio(self, n: int) -> float:
        """Median stamp wait (accepted to seen done) at level n over the least median of any."""
        med = {m: float(np.median(lv.stamp_s)) for m, lv in RECORDER.levels.items() if lv.stamp_s}
        if n not in med:
            return 0.0
        return med[n] / max(min(med.values()), 1e-3)

    def idle(self, n: int) -> bool:
        """The server reported its issuer queue at level n, and it was empty at every batch edge."""
        edges = [b["server_queue"] for b in self.steady()
                 if b["concurrency"] == n and b["server_queue"] is not None]
        return bool(edges) and max(edges) == 0

    def thin(self, n: int) -> bool:
        """Level n is not robustly saturated: at some batch edge fewer than 2 stamps waited or a
        worker idled; without the server's figures, client waits under 2 x `queue_factor` x the
        least."""
        mine = [b for b in self.steady() if b["concurrency"] == n and b["server_queue"] is not None]
        if not mine:
            return self.wait_ratio(n) < 2 * self.s.queue_factor
        return (min(b["server_queue"] for b in mine) < 2
                or min(b["server_busy_share"] or 0.0 for b in mine) < 1.0)

    def hold(self, n: int, settle: bool) -> None:
        """Keep measuring level n until its interval is tight enough or the budget is spent
        (`hold_stopped_by` says which: "precision" or "budget"). A stop for precision comes
        after `min_batches` held batches at the least: a regular issuer's interval can be tight
        after one (seen: a 20/s constant issuer's probe held 2 batches, +-1.6 %), and the hold
        is the measurement, not a confirmation of the ladder's short window."""
        if settle:
            self.go_to(n)
        self.hold_stopped_by = "budget"
        held = 0
        while self.left() >= self.s.batch_s * 0.5:
            self.batch(n, "hold")
            held += 1
            if held >= self.s.min_batches and self.precise(n):
                self.hold_stopped_by = "precision"
                break

    def precise(self, n: int) -> bool:
        """Level n's interval is within `precision`, on what the client has seen and then on the
        batch just closed seen whole.

        When a batch closes, its last stamps reach the client only a poll later, and the
        published interval counts them: a last batch that dipped (12 stamps against 15-17, the
        server's count too) once widened the published interval to +-4.3 % after a stop called
        at +-2.5 % on the part seen. So a stop is judged again after the client's lag (the
        load runs on meanwhile, inside the next batch, which is not counted yet).
        """
        horizon = time.time() - RECORDER.lag_s()
        if not precise(self.judge, self.counted(horizon, steady=True), n, self.s.precision):
            return False
        closed = self.batches[-1]["start_unix"] + self.batches[-1]["duration_s"]
        _sleep_watching(max(0.0, min(closed - horizon, 0.5 * self.s.batch_s)))
        whole = self.counted(time.time() - RECORDER.lag_s(), steady=True)
        return precise(self.judge, whole, n, self.s.precision)

    def next_level(self, n: int, below: int | None) -> int | None:
        """Double; quadruple while throughput is near-linear and no stamp queues (below the knee
        a level says nothing about the capacity, and each costs its filling time)."""
        step = 2
        if self.idle(n):
            step = 4          # the issuer never queued: far from the knee
        elif below is not None and not self.saturated(n):
            x0, x1 = self.estimate(below).stamps_per_second, self.estimate(n).stamps_per_second
            step = 4 if x0 > 0 and x1 / x0 >= 1 + 0.6 * (n / below - 1) else 2
        for k in (step, 2):
            if n * k <= self.s.max_concurrency:
                return n * k
        return None

    def run(self) -> str:
        """The whole ladder; returns why it stopped (levelled, errors, budget, top)."""
        below: int | None = None
        n = 1
        while True:
            verdict = self.climb(n, below)
            x = self.estimate(n).stamps_per_second
            self.say(f"concurrency {n:>4}: {x:8.2f} stamps/s done, "
                     f"error ratio {RECORDER.error_ratio(n):.1%}, "
                     f"{'stamps queue, ' if self.saturated(n) else ''}{verdict}")
            if verdict == "errors":
                if below is not None:
                    self.hold(below, settle=True)
                return "errors"
            if verdict == "falling" and below is not None:
                self.hold(below, settle=True)
                return "levelled"
            if verdict in ("flat", "falling"):
                # saturated here: hold here (no new applicants, so no filling transient), unless the
                # queue was thin (a random lull could empty it): then one level deeper
                deeper = n * 2 if n * 2 <= self.s.max_concurrency and self.thin(n) else None
                self.hold(deeper or n, settle=deeper is not None)
                return "levelled"
            if verdict == "budget" or self.climb_left() <= 0:
                # out of climbing time while still rising: hold here, or one level deeper if this
                # one is not robustly saturated (a closed loop saturates with more applicants), and
                # let the analysis judge (a significant rise into it is never called the peak)
                can = n * 2 <= self.s.max_concurrency and self.thin(n) and verdict != "budget"
                deeper = n * 2 if can else None
                self.hold(deeper or n, settle=deeper is not None)
                return "budget"
            nxt = self.next_level(n, below)
            if nxt is None:
                if verdict != "rising":   # more data may show it flat; a clear rise will not level
                    self.hold(n, settle=False)
                return "top"
            n, below = nxt, n

    def close(self) -> None:
        self.runner.quit()
        self.env.runner = None


def _finished(c: dict[str, Any]) -> int:
    """Stamps a server reading says its issuer has finished: done or failed."""
    return int(c.get("completed") or 0) + int(c.get("failed") or 0)


def run_probe(s: ProbeSettings, *, judge: Judge,
              server_completed: Callable[[], dict[str, Any] | None] | None = None,
              progress: Callable[[str], None] | None = None) -> ProbeRun:
    """Climb the ladder, hold where it levels, and return what was measured (module docstring).

    A redirect from the target stops it with a TargetError; SIGTERM/SIGINT stop it with
    `ProbeInterrupted` carrying what was measured so far (users stopped first).
    """
    REFUSED.clear()
    ProbeApplicant.host = s.host
    ProbeApplicant.documents = s.documents
    ProbeApplicant.seed = s.seed
    RECORDER.__init__()
    t0 = time.monotonic()
    ladder = _Ladder(s, judge, server_completed, progress or (lambda _m: None))
    try:
        stopped = ladder.run()
        RECORDER.measure(None)
        gevent.sleep(min(TAIL_S, RECORDER.lag_s()))  # let the last batch's stamps be seen
    except KeyboardInterrupt as e:
        so_far = _measured(ladder, "interrupted", t0)
        raise ProbeInterrupted(getattr(e, "signame", "SIGINT"), so_far) from None
    finally:
        ladder.close()
    return _measured(ladder, stopped, t0)


def _measured(ladder: _Ladder, stopped: str, t0: float) -> ProbeRun:
    """What the ladder measured, its batches counted (at the end, or when a signal stopped it)."""
    batches = ladder.counted()
    for n, lv in RECORDER.levels.items():
        lv.stamps = sum(b["stamps"] for b in batches if b["concurrency"] == n)
    rows = [r for n in sorted(RECORDER.levels) for r in RECORDER.rows(n)]
    for b in batches:
        b["start_unix"], b["duration_s"] = round(b["start_unix"], 3), round(b["duration_s"], 4)
    return ProbeRun(rows=rows, batches=batches, stopped=stopped,
                    wall_s=round(time.monotonic() - t0, 3), hold_stopped_by=ladder.hold_stopped_by)
