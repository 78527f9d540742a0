"""The testbed's issuer stage as its clients live it, simulated applicant by applicant (seeded
trials).

The fluid model (`analysis.backlog`) moves averages: at the knife edge a rehearsal sits on
(everyone served just within their patience) an average applicant either makes it or not,
so its served count swings between far too many and far too few. This simulation keeps the
spread that decides who makes it: exponential service at the issuer (its workers, FIFO),
the clients' poll phase and think times, the rate gate's tokens and the clients' retries.

Inputs, all from a rehearsal's own files (`SimInputs`, built by
`analysis.rehearsal_model.sim_inputs`): each applicant's intended start, patience deadline,
documents and retry policy; when its first upload reached the issuer (measured by the
server; else its journey's measured transit, through the gate); the issuer's rate per test
second (counted by the server where it was saturated); the stamping gate's changes. Each
applicant uploads its documents one after another; after a stamp is done its client sees it
at its next poll, thinks, downloads, thinks and uploads the next (the measured client time
between uploads); it gives up for good at its deadline (a job it left stays queued: the
testbed keeps accepted work). Served: the last stamp seen before the deadline with time
left to send the download.

    >>> import numpy as np
    >>> inp = SimInputs(intended=np.zeros(4), deadline=np.full(4, 30.0), documents=np.full(4, 2),
    ...                 first_upload=np.full(4, 1.0), refresh=np.zeros(4, bool),
    ...                 rate_t=np.array([0.0]), rate=np.array([16.0]), workers=4, gates=[],
    ...                 end_s=60.0)
    >>> simulate(inp, seed=1).served
    4
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SimInputs", "SimResult", "simulate", "trials"]


@dataclass(frozen=True, kw_only=True, repr=False)
class SimInputs:
    """One rehearsal's applicants and issuer (test seconds from the run's origin)."""

    intended: np.ndarray  # intended start of each applicant
    deadline: np.ndarray  # intended + the client's patience
    documents: np.ndarray  # stamps each needs
    # measured arrival of its first upload at the issuer (nan: not measured)
    first_upload: np.ndarray
    refresh: np.ndarray  # retry policy refresh (else backoff)
    rate_t: np.ndarray  # issuer rate changes: at these test seconds ...
    rate: np.ndarray  # ... the issuer completes this many stamps/s (all workers busy)
    workers: int
    gates: list[tuple[float, str, float, float]]  # stamping gate: (at, mode, rate_per_s, burst)
    end_s: float
    # intended -> first upload if not measured
    transit: np.ndarray = field(default_factory=lambda: np.zeros(0))
    think_s: tuple[float, float] = (0.2, 1.5)
    poll_s: float = 0.5
    overhead_s: float = 0.2  # request time per upload cycle (download + upload) beyond the pauses
    # one upload request's time (a refresh client re-sends at once after it)
    request_s: float = 0.05
    # an applicant without a measured first upload tries one at intended + transit
    # (False: the front end is as measured, and it never reached the issuer)
    unmeasured_enter: bool = True
    # the server's completion times: when given, the issuer completes the head of its queue at
    # each (its measured path)
    epochs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tail_rate: float = 16.0  # stamps/s after the last epoch (replay only)
    # from these test seconds ... one poll takes this long (s)
    poll_latency_t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    poll_latency: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # measured stamp done -> next upload (else poll + think + overhead + think)
    gaps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    max_attempts: int = 5
    backoff: tuple[float, float] = (0.5, 10.0)
    sample_s: float = 0.25
    exponential: bool = True
    # not exponential: lognormal service of this log-space sd (0: constant)
    service_sigma: float = 0.0

    def __repr__(self) -> str:
        return (f"SimInputs(applicants={len(self.intended)}, workers={self.workers}, "
                f"gates={len(self.gates)})")


@dataclass(frozen=True, kw_only=True)
class SimResult:
    """One trial: served count, stamps done, the issuer backlog (queued + in service) per sample."""

    served: int
    stamps_done: int
    waits: np.ndarray  # intended start -> done (test s) of each applicant served
    refused_out: int = (
        0  # applicants who gave up at a refused upload (attempts or patience ran out)
    )
    uploads: np.ndarray | None = None  # uploads the issuer accepted, per applicant
    done_at: np.ndarray | None = None  # when each stamp was done (test s), in order
    served_mask: np.ndarray | None = None  # which applicants were served
    t: np.ndarray
    backlog: np.ndarray


class _Gate:
    """The testbed's stamping token bucket (testbed/gates.py), on the simulated clock.

    As the testbed's: a change of mode starts a rate gate with a full bucket, and a refused
    request's Retry-After is ceil((1 - tokens) / rate). An upload the rehearsal measured was
    admitted by the real bucket, so it takes its token here too even when the simulated bucket
    is empty: the bucket then owes it (tokens below zero) and admits nothing else until the
    refill has paid it back. Over any stretch the gate so admits at most burst + rate x time,
    measured uploads included, as the real one did.
    """

    def __init__(self, gates: list[tuple[float, str, float, float]]) -> None:
        self.changes = sorted(gates)
        self.mode, self.rate, self.burst, self.tokens, self.stamp = "open", 0.0, 0.0, 0.0, 0.0

    def _at(self, now: float) -> None:
        while self.changes and self.changes[0][0] <= now:
            _, self.mode, self.rate, self.burst = self.changes.pop(0)
            self.tokens = self.burst
            self.stamp = now

    def take(self, now: float, measured: bool = False) -> float | None:
        """None if admitted, else the Retry-After seconds (a measured upload was admitted: it
        only spends, into debt if need be)."""
        self._at(now)
        if self.mode == "open" or measured:
            if self.mode == "rate":
                self._refill(now)
                self.tokens -= 1.0
            return None
        if self.mode == "closed":
            return 60.0
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return float(max(1, math.ceil((1.0 - max(self.tokens, 0.0)) / self.rate)))

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now


def _step_value(t: np.ndarray, v: np.ndarray, now: float) -> float:
    """The value of a step function (v from each t on) at `now`."""
    return float(v[max(0, np.searchsorted(t, now, side="right") - 1)])


class _Trial:
    """One trial's state and its event handlers (upload tried, stamp done, issuer epoch)."""

    def __init__(self, inp: SimInputs, seed: int) -> None:
        self.inp, self.rng, self.gate = inp, np.random.default_rng(seed), _Gate(inp.gates)
        self.ev: list[
            tuple[float, int, str, int, int]
        ] = []  # (time, order, kind, applicant, attempt)
        self.order = 0
        n = len(inp.intended)
        self.left = inp.documents.astype(int).copy()
        self.accepted = np.zeros(n, dtype=int)
        self.ok = np.zeros(n, dtype=bool)
        self.done_at: list[float] = []
        self.waits: list[float] = []
        self.queue: list[int] = []  # FIFO of applicants' jobs (in replay: queued and in service)
        self.busy = self.served = self.done_n = self.refused_out = 0
        self.replay = len(inp.epochs) > 0
        self.last_epoch = float(inp.epochs[-1]) if self.replay else 0.0
        self.tail = False  # a synthetic epoch is pending (past the measured ones)
        for i in range(n):
            if np.isfinite(inp.first_upload[i]):
                self.push(float(inp.first_upload[i]), "first", i)
            elif inp.unmeasured_enter:
                self.push(
                    float(inp.intended[i] + (inp.transit[i] if len(inp.transit) else 0.0)),
                    "upload",
                    i,
                )

    def push(self, t: float, kind: str, a: int, attempt: int = 1) -> None:
        self.order += 1
        heapq.heappush(self.ev, (t, self.order, kind, a, attempt))

    def start(self, now: float) -> None:
        """Start service where workers are free; in replay, make sure an epoch follows the
        measured ones."""
        inp, q = self.inp, self.queue
        if self.replay:
            if q and now >= self.last_epoch and not self.tail:
                self.tail = True
                self.push(now + 1.0 / max(inp.tail_rate, 1e-9), "epoch", -1)
            return
        while q and self.busy < inp.workers:
            a = q.pop(0)
            self.busy += 1
            mean = inp.workers / max(_step_value(inp.rate_t, inp.rate, now), 1e-9)
            self.push(now + self.service_time(mean), "done", a)

    def service_time(self, mean: float) -> float:
        """One service time of the issuer's law, of mean `mean` (the testbed's distributions)."""
        inp = self.inp
        if inp.exponential:
            return float(self.rng.exponential(mean))
        if inp.service_sigma > 0:
            s = inp.service_sigma
            return mean * float(self.rng.lognormal(-s * s / 2.0, s))
        return mean

    def upload(self, now: float, kind: str, a: int, attempt: int) -> None:
        """An upload tried: admitted (queued), or refused and retried per the client's policy."""
        inp, dl = self.inp, float(self.inp.deadline[a])
        if now >= dl:
            return  # gave up before sending it
        wait = self.gate.take(now, measured=kind == "first")
        if wait is None:
            self.accepted[a] += 1
            self.queue.append(a)
            self.start(now)
            return
        if attempt >= inp.max_attempts:
            self.refused_out += 1  # gave up after max_attempts refusals
            return
        if inp.refresh[a]:
            self.push(now + inp.request_s, "upload", a, attempt + 1)
            return
        d = min(inp.backoff[1], inp.backoff[0] * 2 ** (attempt - 1)) * self.rng.uniform(0.5, 1.5)
        d = max(d, wait)
        if now + d < dl:
            self.push(now + d, "upload", a, attempt + 1)
        else:
            self.refused_out += 1  # its patience runs out before the next try

    def done(self, now: float, a: int) -> None:
        """A stamp done: the client sees it at its next poll, then downloads and uploads the
        next, or is served."""
        inp, rng, dl = self.inp, self.rng, float(self.inp.deadline[a])
        self.busy -= 1
        self.done_n += 1
        self.done_at.append(now)
        self.start(now)
        lat = (
            _step_value(inp.poll_latency_t, inp.poll_latency, now) if len(inp.poll_latency) else 0.0
        )
        seen = now + rng.uniform(0.0, inp.poll_s + lat) + lat  # the next poll's answer
        if seen >= dl:
            return  # gave up while polling (its job was still done)
        self.left[a] -= 1
        t1 = seen + rng.uniform(*inp.think_s)  # think after the poll, then download
        if self.left[a] <= 0:
            if t1 < dl:
                self.served += 1
                self.ok[a] = True
                self.waits.append(t1 - float(inp.intended[a]))
            return
        if len(inp.gaps):  # the client time the rehearsal measured
            t2 = now + max(float(inp.gaps[rng.integers(len(inp.gaps))]), seen - now)
        else:
            t2 = t1 + inp.overhead_s + rng.uniform(*inp.think_s)
        if t2 < dl:
            self.push(t2, "upload", a)

    def run(self) -> SimResult:
        inp = self.inp
        samples_t = np.arange(0.0, inp.end_s, inp.sample_s)
        backlog = np.zeros(len(samples_t))
        si = 0
        for e in inp.epochs:
            self.push(float(e), "epoch", -1)
        while self.ev:
            now, _, kind, a, attempt = heapq.heappop(self.ev)
            while si < len(samples_t) and samples_t[si] <= now:
                backlog[si] = len(self.queue) + self.busy
                si += 1
            if kind == "epoch":
                if now > self.last_epoch:
                    self.tail = False
                if self.queue:  # else the testbed finished work the model has not
                    self.busy += 1
                    self.done(now, self.queue.pop(0))
            elif kind == "done":
                self.done(now, a)
            else:
                self.upload(now, kind, a, attempt)
        backlog[si:] = 0.0
        return SimResult(
            served=self.served,
            stamps_done=self.done_n,
            waits=np.array(self.waits),
            refused_out=self.refused_out,
            uploads=self.accepted,
            done_at=np.array(self.done_at),
            served_mask=self.ok,
            t=samples_t,
            backlog=backlog,
        )


def simulate(inp: SimInputs, *, seed: int) -> SimResult:
    """One seeded trial (see the module docstring)."""
    return _Trial(inp, seed).run()


def trials(inp: SimInputs, *, n: int = 20, seed: int = 0) -> dict[str, Any]:
    """`n` seeded trials: mean and standard deviation of served and of the peak backlog, the p95
    of the served applicants' waits (test s), the mean backlog series (and its sample times).

    >>> inp = SimInputs(intended=np.zeros(40), deadline=np.full(40, 6.0), documents=np.full(40, 2),
    ...                 first_upload=np.full(40, 0.5), refresh=np.zeros(40, bool),
    ...                 rate_t=np.array([0.0]), rate=np.array([16.0]), workers=4, gates=[],
    ...                 end_s=30.0)
    >>> r = trials(inp, n=10)
    >>> 0 < r["served_mean"] < 40, r["peak_mean"] <= 40
    (True, True)
    """
    runs = [simulate(inp, seed=seed + i) for i in range(n)]
    served = np.array([r.served for r in runs], dtype=float)
    peaks = np.array([r.backlog.max() for r in runs], dtype=float)
    return {
        "served_mean": float(served.mean()),
        "served_sd": float(served.std(ddof=1)) if n > 1 else 0.0,
        "peak_mean": float(peaks.mean()),
        "peak_sd": float(peaks.std(ddof=1)) if n > 1 else 0.0,
        "stamps_done_mean": float(np.mean([r.stamps_done for r in runs])),
        "refused_out_mean": float(np.mean([r.refused_out for r in runs])),
        "p95_wait_s": (
            float(np.percentile(np.concatenate([r.waits for r in runs]), 95))
            if any(len(r.waits) for r in runs)
            else None
        ),
        "t": runs[0].t,
        "backlog": np.mean([r.backlog for r in runs], axis=0),
        "n": n,
    }
