"""The arrival curve: a profile's expected arrival rate as a pure function of calendar time.

    rate(t) = total * shape(t) / integral of shape over the window
    shape(t) = base(t) * daily_cycle(local hour) * (1 + A * exp(-(close - t) / tau)) * spikes(t)

`t` is calendar seconds since the window start (numpy arrays welcome)::

    >>> from scenarios.profile import load_profile
    >>> c = ArrivalCurve(load_profile("steady"))
    >>> round(float(c.cumulative(c.span_s)))  # the whole window holds every applicant
    100000
    >>> bool(c.rate(-1.0) == 0.0)
    True

Rates are applicants per calendar second. The curve is demand: what applicants
want, not what a failing service served. A profile with a [demand] accounts series
(casn2024) takes its shape from `AccountsCurve` instead (rush and spikes unused), scaled
to `applicants.total`, so rehearsals and the model play the same demand.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from scenarios.profile_model import Profile

_GRID_S = 60.0
# `AccountsCurve._stock` sums directly while k |ln L| stays below this (e^600 ~ 1e260), else in
# logs
_DIRECT_LOG_RANGE = 600.0


class ArrivalCurve:
    """Expected arrivals of a profile over its calendar (see module docstring)."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        cal = profile.calendar
        self.span_s = cal.span_s
        start = cal.window_start
        self._hour0 = start.hour + start.minute / 60 + start.second / 3600
        shape = profile.arrivals
        self._knot_t = np.array([d * 86400.0 for d, _ in shape.base])
        self._knot_w = np.array([w for _, w in shape.base])
        cycle = np.asarray(shape.daily_cycle, dtype=float)
        self._cycle = cycle / cycle.mean()
        self._spikes = [(cal.seconds(s.at), cal.seconds(s.at) + s.duration_hours * 3600, s.factor)
                        for s in shape.spikes]
        self._accounts = AccountsCurve(profile) if profile.demand is not None else None
        # Normalise on a fine grid; the cumulative curve is the running integral.
        n = max(1, int(np.ceil(self.span_s / _GRID_S)))
        edges = np.linspace(0.0, self.span_s, n + 1)
        mids = (edges[:-1] + edges[1:]) / 2
        mass = (np.diff(self._accounts.cumulative(edges)) if self._accounts is not None
                else self.shape(mids) * np.diff(edges))
        total_mass = float(mass.sum())
        if total_mass <= 0:
            from floor.errors import ProfileError
            raise ProfileError(
                "arrivals",
                "all weights",
                "the curve is zero over the whole window; give some weight > 0",
            )
        # A shape whose mass is tiny (1e-300 accounts at a conversion of 1e-9) has a scale past a
        # float's range (4e6 / 4e-303 is inf), though each share of the total is an ordinary
        # number: it is scaled in two steps, by its largest step's mass first. Any other keeps
        # the one step, so its figures are the same to the last bit as before.
        self._unit = 1.0
        self._scale = profile.applicants_total / total_mass
        if not math.isfinite(self._scale):
            self._unit = float(mass.max())
            self._scale = profile.applicants_total / float((mass / self._unit).sum())
        self._edges = edges
        self._cum = np.concatenate([[0.0], np.cumsum(mass / self._unit) * self._scale])

    def shape(self, t: np.ndarray | float) -> np.ndarray:
        """The unnormalised relative rate at calendar seconds `t`."""
        t = np.asarray(t, dtype=float)
        if self._accounts is not None:
            k = np.clip(np.floor(t / _GRID_S).astype(int), 0, len(self._edges) - 2)
            per = np.diff(self._accounts.cumulative(self._edges))[k] / np.diff(self._edges)[k]
            return np.where((t >= 0) & (t <= self.span_s), per, 0.0)
        base = np.interp(t, self._knot_t, self._knot_w)
        hours = (self._hour0 + t / 3600.0) % 24.0
        # Linear between hour centres, periodic over the day.
        x = hours - 0.5
        i0 = np.floor(x).astype(int) % 24
        frac = x - np.floor(x)
        cyc = self._cycle[i0] * (1 - frac) + self._cycle[(i0 + 1) % 24] * frac
        s = base * cyc
        rush = self.profile.arrivals.rush
        if rush is not None and rush.amplitude > 0:
            s = s * (
                1
                + rush.amplitude
                * np.exp(-np.clip(self.span_s - t, 0, None) / (rush.tau_hours * 3600))
            )
        for a, b, f in self._spikes:
            s = np.where((t >= a) & (t < b), s * f, s)
        return np.where((t >= 0) & (t <= self.span_s), s, 0.0)

    def rate(self, t: np.ndarray | float) -> np.ndarray:
        """Expected applicants per calendar second at `t`.

        >>> from scenarios.profile import load_profile
        >>> c = ArrivalCurve(load_profile("steady"))
        >>> float(c.rate(3600.0)) > 0
        True
        """
        return self.shape(t) / self._unit * self._scale

    def cumulative(self, t: np.ndarray | float) -> np.ndarray:
        """Expected applicants arrived by calendar second `t` (0 before, total after)."""
        return np.interp(np.asarray(t, dtype=float), self._edges, self._cum)

    def cumulative_at(self, when: datetime) -> float:
        """Expected applicants arrived by the aware datetime `when`."""
        return float(self.cumulative(self.profile.calendar.seconds(when)))

    def buckets(self, bucket_s: float = 3600.0) -> tuple[np.ndarray, np.ndarray]:
        """Bucket start times (calendar s) and expected arrivals in each bucket.

        >>> from scenarios.profile import load_profile
        >>> starts, counts = ArrivalCurve(load_profile("steady")).buckets(86400)
        >>> round(float(counts.sum()))
        100000
        """
        starts = np.arange(0.0, self.span_s, bucket_s)
        ends = np.minimum(starts + bucket_s, self.span_s)
        return starts, self.cumulative(ends) - self.cumulative(starts)

    def peak(self, bucket_s: float = 3600.0) -> tuple[datetime, float]:
        """The busiest bucket: its local start time and its expected arrivals."""
        starts, counts = self.buckets(bucket_s)
        i = int(np.argmax(counts))
        return self.profile.calendar.at(float(starts[i])), float(counts[i])


class AccountsCurve:
    """Demand from the registered-accounts series (a signal the outage did not censor).

    Each new account is, with probability `conversion`, an applicant who will want to
    submit. They become ready after a lag with hazard `pull / (time left to their close)`
    measured on the daily-cycle clock u(t) = ∫ cycle, so everyone is ready by the close and
    readiness follows the day. Survival over a step is ((u_C − u_{t+Δ}) / (u_C − u_t))^pull.
    `closes` is the sequence of (decision time, new close) in calendar seconds after the
    first close: at each decision a share `retarget` of those not yet ready (and every later
    account) aims at the new close; the rest keep the old one. Arrivals before a decision
    never change. Accounts beyond the last series point stay flat.

    >>> from scenarios.profile import load_profile
    >>> p = load_profile("casn2024")
    >>> c = AccountsCurve(p)
    >>> total = float(c.cumulative(c.span_s))
    >>> round(total / (p.demand.conversion * p.demand.accounts[-1][1]), 6)
    1.0
    """

    def __init__(
        self,
        profile: Profile,
        *,
        closes: list[tuple[float, float]] | None = None,
        retarget: float | None = None,
        conversion: float | None = None,
        pull: float | None = None,
        step_s: float = _GRID_S,
    ) -> None:
        d = profile.demand
        if d is None:
            from floor.errors import ProfileError

            raise ProfileError(
                "demand", None, "this profile has no [demand] accounts series; add one"
            )
        self.profile = profile
        cal = profile.calendar
        if closes is None:
            closes = []
            if cal.extension is not None:
                at = (
                    cal.seconds(d.extension_announced) if d.extension_announced is not None else 0.0
                )
                closes.append((at, cal.seconds(cal.extension)))
        self.first_close_s = cal.seconds(cal.deadline)
        self.closes = [(float(a), float(c)) for a, c in closes]
        self.span_s = max([self.first_close_s] + [c for _, c in self.closes])
        self.conversion = d.conversion if conversion is None else float(conversion)
        self.pull = d.pull if pull is None else float(pull)
        self.retarget = d.retarget_share if retarget is None else float(retarget)
        n = max(1, int(np.ceil(self.span_s / step_s - 1e-9)))
        self._edges = np.minimum(step_s * np.arange(n + 1), self.span_s)
        ready = self._ready_fast(profile)
        self._cum = np.concatenate([[0.0], np.cumsum(ready)])

    def accounts(self, t: np.ndarray | float) -> np.ndarray:
        """Registered accounts by calendar second `t` (linear between series points)."""
        cal = self.profile.calendar
        xs = np.array([cal.seconds(a) for a, _ in self.profile.demand.accounts])
        ys = np.array([v for _, v in self.profile.demand.accounts])
        return np.interp(np.asarray(t, dtype=float), xs, ys, left=0.0)

    def _clock(self, profile: Profile) -> tuple[np.ndarray, np.ndarray, list[float], list[int]]:
        """Inflow per step, the daily-cycle clock u at the edges, u at each close, decision
        steps."""
        edges = self._edges
        inflow = self.conversion * np.diff(self.accounts(edges))
        hour0 = profile.calendar.window_start.hour + profile.calendar.window_start.minute / 60
        cycle = np.asarray(profile.arrivals.daily_cycle, dtype=float)
        cycle = cycle / cycle.mean()
        mids = (edges[:-1] + edges[1:]) / 2
        w = cycle[(np.floor(hour0 + mids / 3600.0) % 24).astype(int)]
        u = np.concatenate([[0.0], np.cumsum(w * np.diff(edges))])
        targets = [self.first_close_s] + [c for _, c in self.closes]
        u_close = [float(v) for v in np.interp(targets, edges, u)]
        step = float(edges[1] - edges[0]) if len(edges) > 1 else 1.0
        decide = [int(np.ceil(a / step - 1e-9)) for a, _ in self.closes]
        return inflow, u, u_close, decide

    def _ready_fast(self, profile: Profile) -> np.ndarray:
        """Ready per step, vectorised: a population aiming at close C keeps, after step j,
        Σ_{m<=j} in_m (L_{j+1} / L_m)^pull with L = u_C − u (the survival telescopes), so
        its stock is L_{j+1}^pull × cumsum(in × L^−pull). At a decision the retargeted share of the
        stock leaves one population (a negative inflow) and joins the next."""
        inflow, u, u_close, decide = self._clock(profile)
        n, k = len(inflow), self.pull
        flows = [np.zeros(n) for _ in u_close]
        bounds = [0] + [min(d, n) for d in decide] + [n]
        for i in range(len(u_close)):  # new accounts aim at the close in force
            lo, hi = bounds[i], max(bounds[i], bounds[i + 1])
            flows[i][lo:hi] += inflow[lo:hi]
        for i, d in enumerate(decide):  # then each decision moves a share of the stock
            if d >= n:
                break
            before = self._stock(flows[i], u, u_close[i], k)[d - 1] if d > 0 else 0.0
            moved = self.retarget * (
                before + (flows[i][d] - (inflow[d] if bounds[i] <= d < bounds[i + 1] else 0.0))
            )
            flows[i][d] -= moved
            flows[i + 1][d] += moved
        stocks = [self._stock(fl, u, uc, k) for fl, uc in zip(flows, u_close, strict=True)]
        cum = np.maximum(np.cumsum(inflow) - sum(stocks), 0.0)
        return np.diff(np.concatenate([[0.0], cum]))

    @staticmethod
    def _stock(flow: np.ndarray, u: np.ndarray, uc: float, k: float) -> np.ndarray:
        """Not-yet-ready stock after each step of a population aiming at clock value uc:
        Σ_{m<=j} flow_m (L_{j+1} / L_m)^k with L = uc − u, as L_{j+1}^k × cumsum(flow × L^−k).

        L^k and L^−k apart pass a float's range once k |ln L| nears 709 (k ≈ 50 over a clock
        of 10^6 s), though each ratio is at most 1: such a population is summed in logs
        (`_stock_in_logs`).
        """
        left = np.maximum(uc - u, 0.0)  # at the edges
        open_ = left[left > 0]
        # the largest |ln L| is at the smallest or the largest L
        if open_.size and k * max(abs(math.log(open_.min())),
                                  abs(math.log(open_.max()))) > _DIRECT_LOG_RANGE:
            return AccountsCurve._stock_in_logs(flow, left, k)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(left[:-1] > 0, left[:-1] ** -k, 0.0)
            acc = np.cumsum(flow * w)
            out = np.where(left[1:] > 0, left[1:] ** k * acc, 0.0)
        return out

    @staticmethod
    def _stock_in_logs(flow: np.ndarray, left: np.ndarray, k: float) -> np.ndarray:
        """`_stock` summed in logs (`np.logaddexp.accumulate`): each term's exponent is
        k (ln L_{j+1} − ln L_m) <= 0, whatever k. Inflows and the (negative) retargeted outflows
        are summed apart."""
        with np.errstate(divide="ignore", invalid="ignore"):
            log_left = np.log(left)  # -inf at and after the close
            log_w = np.where(left[:-1] > 0, -k * log_left[:-1], -np.inf)
            log_tail = np.where(left[1:] > 0, k * log_left[1:], -np.inf)
            out = np.zeros(len(flow))
            for sign in (1.0, -1.0):
                part = np.where(sign * flow > 0, np.log(np.abs(flow)) + log_w, -np.inf)
                out += sign * np.exp(np.logaddexp.accumulate(part) + log_tail)
        return np.where(left[1:] > 0, out, 0.0)

    def _ready(self, profile: Profile, step_s: float) -> np.ndarray:
        """The same as `_ready_fast`, step by step (the reference the tests compare against)."""
        edges = self._edges
        inflow = self.conversion * np.diff(self.accounts(edges))
        hour0 = profile.calendar.window_start.hour + profile.calendar.window_start.minute / 60
        cycle = np.asarray(profile.arrivals.daily_cycle, dtype=float)
        cycle = cycle / cycle.mean()
        mids = (edges[:-1] + edges[1:]) / 2
        w = cycle[(np.floor(hour0 + mids / 3600.0) % 24).astype(int)]
        u = np.concatenate([[0.0], np.cumsum(w * np.diff(edges))])
        targets = [self.first_close_s] + [c for _, c in self.closes]
        u_close = np.interp(targets, edges, u)
        decide = [int(np.ceil(a / step_s - 1e-9)) for a, _ in self.closes]
        pops = [0.0] * len(targets)
        cur = 0
        out = np.zeros(len(inflow))
        k = self.pull
        for j in range(len(inflow)):
            while cur + 1 < len(targets) and j >= decide[cur]:
                moved = pops[cur] * self.retarget  # earlier populations keep their close
                pops[cur] -= moved
                cur += 1
                pops[cur] += moved
            pops[cur] += inflow[j]
            total = 0.0
            for i in range(cur + 1):
                if pops[i] <= 0.0:
                    continue
                left0, left1 = u_close[i] - u[j], u_close[i] - u[j + 1]
                s = (left1 / left0) ** k if left1 > 0 and left0 > 0 else 0.0
                r = pops[i] * (1.0 - s)
                pops[i] -= r
                total += r
            out[j] = total
        return out

    def cumulative(self, t: np.ndarray | float) -> np.ndarray:
        """Applicants ready to submit by calendar second `t`."""
        return np.interp(np.asarray(t, dtype=float), self._edges, self._cum)

    def cumulative_at(self, when: datetime) -> float:
        """Applicants ready to submit by the aware datetime `when`."""
        return float(self.cumulative(self.profile.calendar.seconds(when)))
