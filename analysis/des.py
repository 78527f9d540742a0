"""A fast discrete-event simulation of one resource: M/M/c (or G/G/c) FCFS with
exponential patience, retrials and total outages. It cross-checks the fluid model
(analysis/backlog/) and the formulas (analysis/queueing.py).

How it is fast: with c identical FCFS servers, each job, in arrival order, starts on
the server that frees first, at max(arrival, that server's free time). Keeping the c
free times in a binary heap makes a job one `heapreplace` (O(log c)), with no event
list. Abandonment fits the same scheme: a job whose start would come later than its
arrival + patience leaves at that moment without touching the servers (exact for
FCFS with impatient customers: they never delay anyone behind them). Retrials are
new arrivals pushed into a second heap and merged in time order. An outage
(capacity 0 from a to b) holds every start inside [a, b) until b; jobs already in
service finish (non-preemptive), a small approximation when service is short.

    >>> rng = np.random.default_rng(1)
    >>> arr = poisson_arrivals(rate=9.0, count=200_000, rng=rng)
    >>> res = simulate(arr, DesConfig(servers=10, service_rate=1.0), rng=rng)
    >>> from analysis.queueing import mmc
    >>> exact = mmc(arrival_rate=9.0, service_rate=1.0, servers=10).mean_wait
    >>> abs(res.mean_wait / exact - 1) < 0.15
    True
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from floor.errors import FieldError

__all__ = ["DesConfig", "DesResult", "simulate", "mmc_waits", "poisson_arrivals", "nhpp_arrivals"]


@dataclass(frozen=True, kw_only=True)
class DesConfig:
    """One resource: `servers` x `service_rate` (per server, per s); `patience_s` mean
    (None: infinitely patient); a share `retry_probability` of those who give up come
    back after an exponential time of mean `retry_after_s`; `outages`: (start, end) s.

    >>> DesConfig(servers=4, service_rate=0.5, patience_s=600.0)  # doctest: +NORMALIZE_WHITESPACE
    DesConfig(servers=4, service_rate=0.5, patience_s=600.0, retry_probability=0.0,
              retry_after_s=None, outages=())
    """

    servers: int
    service_rate: float
    patience_s: float | None = None
    retry_probability: float = 0.0
    retry_after_s: float | None = None
    outages: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.servers < 1:
            raise FieldError("servers", self.servers, "give at least 1 server")
        if not self.service_rate > 0:
            raise FieldError(
                "service_rate", self.service_rate, "give a rate > 0 per server per second"
            )
        if self.patience_s is not None and not self.patience_s > 0:
            raise FieldError("patience_s", self.patience_s, "give a mean patience > 0 s, or None")
        if not 0 <= self.retry_probability <= 1:
            raise FieldError(
                "retry_probability", self.retry_probability, "give a probability in [0, 1]"
            )
        if self.retry_probability > 0 and not (self.retry_after_s and self.retry_after_s > 0):
            raise FieldError(
                "retry_after_s", self.retry_after_s, "retries need a mean retry time > 0 s"
            )
        for a, b in self.outages:
            if not b > a:
                raise FieldError("outages", (a, b), "each outage needs end > start")


@dataclass(frozen=True, kw_only=True, repr=False)
class DesResult:
    """One row per attempt, in arrival order: `arrival`, `leave_queue` (start of service
    or the moment of giving up), `abandoned`, `retrial` (this attempt is a comeback),
    `service` (its service time; served attempts only are meaningful)."""

    arrival: np.ndarray
    leave_queue: np.ndarray
    abandoned: np.ndarray
    retrial: np.ndarray
    service: np.ndarray

    def __repr__(self) -> str:
        return (
            f"DesResult(attempts={len(self.arrival):,}, abandoned={int(self.abandoned.sum()):,}, "
            f"mean_wait={self.mean_wait:.4g} s)"
        )

    @property
    def wait(self) -> np.ndarray:
        """Time in queue of every attempt (to service, or to giving up)."""
        return self.leave_queue - self.arrival

    @property
    def mean_wait(self) -> float:
        """Mean time in queue over all attempts."""
        return float(self.wait.mean()) if len(self.arrival) else 0.0

    @property
    def served(self) -> np.ndarray:
        """Service start times of the attempts that were served."""
        return self.leave_queue[~self.abandoned]

    def queue_at(self, t: np.ndarray) -> np.ndarray:
        """Number waiting (arrived, not started, not given up) at each time in t.

        >>> r = DesResult(arrival=np.array([0.0, 1.0]), leave_queue=np.array([2.0, 1.5]),
        ...     abandoned=np.array([False, True]), retrial=np.zeros(2, bool), service=np.ones(2))
        >>> r.queue_at(np.array([0.5, 1.2, 1.7, 3.0])).tolist()
        [1, 2, 1, 0]
        """
        t = np.asarray(t, dtype=float)
        arrived = np.searchsorted(self.arrival, t, side="right")
        left = np.searchsorted(np.sort(self.leave_queue), t, side="right")
        return arrived - left

    def served_between(self, a: float, b: float) -> int:
        """Attempts whose service started in [a, b)."""
        s = np.sort(self.served)
        return int(np.searchsorted(s, b) - np.searchsorted(s, a))


def poisson_arrivals(
    *, rate: float, count: int, rng: np.random.Generator, start: float = 0.0
) -> np.ndarray:
    """`count` Poisson arrival times of intensity `rate` from `start` (sorted).

    >>> a = poisson_arrivals(rate=2.0, count=5, rng=np.random.default_rng(0))
    >>> bool(np.all(np.diff(a) > 0))
    True
    """
    return start + np.cumsum(rng.exponential(1.0 / rate, count))


def nhpp_arrivals(
    counts_per_step: np.ndarray, *, step_s: float, rng: np.random.Generator, t0: float = 0.0
) -> np.ndarray:
    """Arrivals of a Poisson process whose rate is constant within each step; the
    expected count in step k is `counts_per_step[k]`. Sorted, vectorised.

    >>> a = nhpp_arrivals(np.array([600.0, 0.0, 600.0]), step_s=60.0, rng=np.random.default_rng(0))
    >>> bool(((a >= 60) & (a < 120)).sum() == 0), 1000 < len(a) < 1400
    (True, True)
    """
    lam = np.asarray(counts_per_step, dtype=float)
    n = rng.poisson(lam)
    starts = t0 + step_s * np.arange(len(lam))
    t = np.repeat(starts, n) + rng.random(int(n.sum())) * step_s
    t.sort()
    return t


def mmc_waits(arrival: np.ndarray, service: np.ndarray, servers: int) -> np.ndarray:
    """Waiting times of FCFS c-server queue for given arrival and service times
    (no abandonment): the fast path used by the benchmark against SimPy.

    >>> mmc_waits(np.array([0.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0]), 2).tolist()
    [0.0, 0.0, 1.0]
    """
    free = [0.0] * servers
    heapreplace = heapq.heapreplace
    out = [0.0] * len(arrival)
    for j, (a, s) in enumerate(zip(arrival.tolist(), service.tolist(), strict=True)):
        f = free[0]
        st = a if a > f else f
        heapreplace(free, st + s)
        out[j] = st - a
    return np.array(out)


def simulate(
    arrival: np.ndarray | Sequence[float], config: DesConfig, *, rng: np.random.Generator
) -> DesResult:
    """Simulate the resource for the given (sorted) primary arrival times.

    >>> cfg = DesConfig(servers=2, service_rate=1.0, patience_s=5.0, retry_probability=0.5,
    ...                 retry_after_s=60.0)
    >>> r = simulate(poisson_arrivals(rate=3.0, count=20_000, rng=np.random.default_rng(3)), cfg,
    ...              rng=np.random.default_rng(4))
    >>> bool(r.retrial.any() and r.abandoned.any())
    True
    """
    arr = np.asarray(arrival, dtype=float)
    if len(arr) and np.any(np.diff(arr) < 0):
        raise FieldError("arrival", "unsorted", "give arrival times in increasing order")
    return _serve(arr.tolist(), config, _Draws(rng, config, max(1024, len(arr) // 4)))


class _Draws:
    """Random numbers drawn in blocks of `block`, consumed one of each per attempt: service time,
    patience, the retry coin and the retry delay."""

    def __init__(self, rng: np.random.Generator, config: DesConfig, block: int) -> None:
        self.rng, self.config, self.block = rng, config, block
        self.svc: list[float] = []
        self.pat: list[float] = []
        self.uni: list[float] = []
        self.back: list[float] = []

    def refill(self) -> None:
        rng, cfg, block = self.rng, self.config, self.block
        self.svc.extend(rng.exponential(1.0 / cfg.service_rate, block).tolist())
        self.pat.extend(
            (
                rng.exponential(cfg.patience_s, block)
                if cfg.patience_s is not None
                else np.full(block, math.inf)
            ).tolist()
        )
        self.uni.extend(rng.random(block).tolist())
        self.back.extend(
            (
                rng.exponential(cfg.retry_after_s, block)
                if cfg.retry_probability > 0
                else np.zeros(block)
            ).tolist()
        )


def _serve(prim: list[float], config: DesConfig, draws: _Draws) -> DesResult:
    """The event loop of `simulate` (the hot path: primary arrivals and retries in time order,
    FIFO over `config.servers` servers, starts held past outages)."""
    p_ret = config.retry_probability
    outs = sorted(config.outages)
    o_start = [a for a, _ in outs]
    svc, pat, uni, back = draws.svc, draws.pat, draws.uni, draws.back
    free = [0.0] * config.servers
    retry_heap: list[float] = []
    n_prim = len(prim)
    i = 0
    j = 0
    out_a: list[float] = []
    out_l: list[float] = []
    out_ab: list[bool] = []
    out_rt: list[bool] = []
    out_s: list[float] = []
    heappush, heappop, heapreplace = heapq.heappush, heapq.heappop, heapq.heapreplace
    while i < n_prim or retry_heap:
        if retry_heap and (i >= n_prim or retry_heap[0] < prim[i]):
            t = heappop(retry_heap)
            is_retry = True
        else:
            t = prim[i]
            i += 1
            is_retry = False
        if j >= len(svc):
            draws.refill()
        f = free[0]
        st = t if t > f else f
        if outs:
            k = bisect.bisect_right(o_start, st) - 1
            while k >= 0 and k < len(outs) and outs[k][0] <= st < outs[k][1]:
                st = outs[k][1]
                k += 1
        s = svc[j]
        if st - t > pat[j]:
            leave = t + pat[j]
            out_ab.append(True)
            if uni[j] < p_ret:
                heappush(retry_heap, leave + back[j])
        else:
            heapreplace(free, st + s)
            leave = st
            out_ab.append(False)
        out_a.append(t)
        out_l.append(leave)
        out_rt.append(is_retry)
        out_s.append(s)
        j += 1
    return DesResult(
        arrival=np.array(out_a),
        leave_queue=np.array(out_l),
        abandoned=np.array(out_ab, dtype=bool),
        retrial=np.array(out_rt, dtype=bool),
        service=np.array(out_s),
    )
