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
want, not what a failing service served.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from scenarios.profile import Profile

_GRID_S = 60.0


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
        # Normalise on a fine grid; the cumulative curve is the running integral.
        n = max(1, int(np.ceil(self.span_s / _GRID_S)))
        edges = np.linspace(0.0, self.span_s, n + 1)
        mids = (edges[:-1] + edges[1:]) / 2
        mass = self.shape(mids) * np.diff(edges)
        total_mass = float(mass.sum())
        if total_mass <= 0:
            from surgecast.errors import ProfileError
            raise ProfileError("arrivals", "all weights", "the curve is zero over the whole window; give some weight > 0")
        self._scale = profile.applicants_total / total_mass
        self._edges = edges
        self._cum = np.concatenate([[0.0], np.cumsum(mass) * self._scale])

    def shape(self, t: np.ndarray | float) -> np.ndarray:
        """The unnormalised relative rate at calendar seconds `t`."""
        t = np.asarray(t, dtype=float)
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
            s = s * (1 + rush.amplitude * np.exp(-np.clip(self.span_s - t, 0, None) / (rush.tau_hours * 3600)))
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
        return self.shape(t) * self._scale

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
