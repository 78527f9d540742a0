"""The issuer's overload physics: the USL fall past the peak, ghost work, fixed-patience uploads."""

from __future__ import annotations

import math
from collections import deque

__all__ = ["FixedPatienceQueue", "issuer_overloaded", "usl_factor"]


def usl_factor(load: float, alpha: float, beta: float, peak: float) -> float:
    """Throughput at `load` x the peak concurrency, as a share of throughput at the peak
    (1 up to it).

    X(N) = N / (1 + α(N−1) + βN(N−1)); the factor is X(load·N*) / X(N*) for load > 1.

    >>> usl_factor(0.5, 0.1, 0.001, 30.0), round(usl_factor(4.0, 0.1, 0.001, 30.0), 3)
    (1.0, 0.702)
    """
    if load <= 1.0:
        return 1.0
    n = load * peak

    def x(v: float) -> float:
        return v / (1.0 + alpha * (v - 1.0) + beta * v * (v - 1.0))

    return min(1.0, x(n) / x(peak))


def issuer_overloaded(
    qs: float,
    ghost: float,
    cs: float,
    f_ab: float,
    waste: bool,
    usl: tuple[float, float, float] | None,
    timeout_steps: float,
) -> tuple[float, float, float, float]:
    """One issuer step with overload physics: (served, queue, ghost work, abandoned).

    The capacity (lowered by the USL once the pending work exceeds `timeout_steps` of
    capacity) serves the queue FIFO. With `waste` the requests of clients who gave up stay
    queued as ghost work, and the head of the queue, which has waited W = work / capacity
    (in steps), is live with probability e^{-θW}; the rest of what is served is ghost
    work. Without waste live and ghost share the capacity in proportion.
    """
    work = qs + ghost
    cap = cs
    if usl is not None and cs > 0:
        cap = cs * usl_factor(work / (cs * timeout_steps), *usl)
    done = work if work < cap else cap
    if waste and work > 0 and cs > 0:
        # FIFO serves the oldest first: the head has waited W = work ahead / capacity, and
        # its client is still there with probability e^{-W/patience} (exponential patience).
        alive = math.exp(-(work / cs) * -math.log1p(-f_ab)) if f_ab < 1.0 else 0.0
        ss = min(qs, done * alive)
        g = min(ghost, done - ss)
        ss = min(qs, done - g)
        ghost -= g
    elif work > 0:
        ss = done * qs / work
        ghost -= done * ghost / work
    else:
        ss = 0.0
    qs -= ss
    ab = qs * f_ab
    qs -= ab
    if waste:
        ghost += ab
    return ss, qs, ghost, ab


class FixedPatienceQueue:
    """The issuer queue of a testbed client (`FluidInputs.fixed_patience`): each applicant uploads
    their stamps one after another, so an applicant with n stamps passes through the FIFO queue
    n times, one upload outstanding at a time, and gives up (for good) once `steps` steps have
    passed since it was first admitted; with `waste` its outstanding upload stays queued as ghost
    work (a testbed keeps a job it accepted). Cohorts are [live applicants, ghost stamps, the
    step they give up at (first admitted + patience, less `gap_steps` for each later pass spent
    client-side between uploads), passes left]; n is 2 or 3 in the shares that make `spa` stamps
    per applicant on average (floor and ceiling). Capacity is in stamps per step. Under overload
    every queued applicant progresses one pass per round, so few finish within their patience:
    the collapse a testbed shows, which serving each applicant's whole work at once misses.

    >>> q = FixedPatienceQueue(3.0, True, 1.0)
    >>> q.step(0, 4.0, 2.0), q.step(1, 0.0, 2.0), q.step(2, 0.0, 2.0)
    ((2.0, 0.0, 2.0, 0.0), (2.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0))
    """

    def __init__(self, steps: float, waste: bool, spa: float, gap_steps: float = 0.0) -> None:
        self.steps, self.waste, self.gap = steps, waste, gap_steps
        lo = max(1, int(math.floor(spa)))
        hi_share = min(1.0, max(0.0, spa - lo))
        self.split = [(lo, 1.0 - hi_share), (lo + 1, hi_share)]
        self.q: deque[list[float]] = deque()
        self.pending: list[
            list[float]
        ] = []  # next uploads refused by a rate gate, retrying client-side
        self.gated = False

    def readmit(self, budget: float) -> float:
        """Let up to `budget` pending uploads (oldest first) into the queue; return how many."""
        used = 0.0
        while self.pending and budget - used > 1e-12:
            c = self.pending[0]
            take = min(c[0], budget - used)
            used += take
            if take >= c[0] - 1e-12:
                self.q.append(self.pending.pop(0))
            else:
                self.q.append([take, 0.0, c[2], c[3]])
                c[0] -= take
        return used

    def step(
        self, k: int, admitted: float, cap: float, left: float | None = None
    ) -> tuple[float, float, float, float]:
        """One step (cap in stamps): (applicants done, applicants who gave up, applicants queued,
        ghost stamps).

        `left`: patience left (steps) of those admitted now; cohorts keep the step they give up
        at."""
        if admitted > 0:
            steps = self.steps if left is None else left
            for n, share in self.split:
                if share > 0:
                    self.q.append(
                        [
                            admitted * share,
                            0.0,
                            float(k) + steps - (n - 1) * self.gap - 1.0,
                            float(n),
                        ]
                    )
        done, left, again = 0.0, cap, []
        while self.q and left > 1e-12:
            c = self.q[0]
            tot = c[0] + c[1]
            f = 1.0 if tot <= left else left / tot
            live = c[0] * f
            left -= tot * f
            c[0] -= live
            c[1] -= c[1] * f
            if c[0] <= 1e-12 and c[1] <= 1e-12:
                self.q.popleft()
            if live > 0:
                if c[3] <= 1:
                    done += live
                else:
                    again.append([live, 0.0, c[2], c[3] - 1])
            if f < 1.0:
                break
        if self.gated:
            self.pending.extend(again)  # the next upload needs a token of the rate gate
        else:
            self.q.extend(self.pending + again)  # the next upload joins the back of the queue
            self.pending = []
        gave_up = 0.0
        for c in self.pending:
            if k >= c[2]:
                gave_up += c[0]
                c[0] = 0.0
        self.pending = [c for c in self.pending if c[0] > 1e-12]
        for c in self.q:
            if c[0] > 0 and k >= c[2]:
                gave_up += c[0]
                if self.waste:
                    c[1] += c[0]
                c[0] = 0.0
        while self.q and self.q[0][0] <= 0.0 and self.q[0][1] <= 1e-12:
            self.q.popleft()
        return done, gave_up, float(sum(c[0] for c in self.q)), float(sum(c[1] for c in self.q))
