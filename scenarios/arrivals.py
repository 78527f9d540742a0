"""The open-model arrival process: a non-homogeneous Poisson process in test time.

An `ArrivalSchedule` holds the expected cumulative arrivals Λ(τ) on a fine grid
of test seconds. Arrival times are drawn exactly by inverting Λ over unit-rate
exponential gaps: if E₁ < E₂ < … are the points of a unit Poisson process, then
Λ⁻¹(Eᵢ) are the points of a Poisson process with intensity λ = Λ'::

    >>> import numpy as np
    >>> s = constant_schedule(rate=50.0, duration_s=10.0)
    >>> round(s.expected())
    500
    >>> t = s.draw(np.random.default_rng(1))
    >>> bool(abs(len(t) - 500) < 4 * 500 ** 0.5 and t.min() >= 0 and t.max() < 10)
    True

Profile time is mapped to test time by compression: calendar t = origin +
compress x τ, and the test rate is scale x compress x λ_cal(t), clipped at
`max_rate`. In a distributed run each process draws its `share` (1/N) of the
rate with its own seed stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scenarios.curve import ArrivalCurve

_MAX_GRID = 200_000


@dataclass(frozen=True, kw_only=True, repr=False)
class ArrivalSchedule:
    """Expected cumulative arrivals `cum` at test seconds `grid` (both increasing, cum[0] = 0)."""

    grid: np.ndarray
    cum: np.ndarray

    def __repr__(self) -> str:
        return f"ArrivalSchedule(duration_s={self.duration_s:g}, expected={self.expected():.1f})"

    @property
    def duration_s(self) -> float:
        """Length of the schedule in test seconds."""
        return float(self.grid[-1])

    def expected(self, t0: float = 0.0, t1: float | None = None) -> float:
        """Expected arrivals in test seconds [t0, t1).

        >>> constant_schedule(rate=2.0, duration_s=10.0).expected(0, 5)
        10.0
        """
        t1 = self.duration_s if t1 is None else t1
        return float(np.interp(t1, self.grid, self.cum) - np.interp(t0, self.grid, self.cum))

    def rate_at(self, t: float, window_s: float = 1.0) -> float:
        """Mean expected rate (arrivals per test second) over [t, t + window_s)."""
        return self.expected(t, t + window_s) / window_s

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """Draw arrival times (test seconds, sorted) from this schedule.

        >>> import numpy as np
        >>> a = constant_schedule(rate=5.0, duration_s=4.0).draw(np.random.default_rng(0))
        >>> bool(np.all(np.diff(a) >= 0))
        True
        """
        total = float(self.cum[-1])
        if total <= 0:
            return np.empty(0)
        points: list[np.ndarray] = []
        last = 0.0
        while True:
            n = int(max(16, (total - last) * 1.1 + 6 * np.sqrt(max(total - last, 1.0))))
            chunk = last + np.cumsum(rng.exponential(1.0, size=n))
            inside = chunk[chunk < total]
            points.append(inside)
            if len(inside) < len(chunk):
                break
            last = float(chunk[-1])
        u = np.concatenate(points)
        return np.interp(u, self.cum, self.grid)


def _grid(duration_s: float) -> np.ndarray:
    n = int(min(_MAX_GRID, max(1000, np.ceil(duration_s / 0.01))))
    return np.linspace(0.0, duration_s, n + 1)


def _clip(grid: np.ndarray, cum: np.ndarray, max_rate: float | None,
          share: float) -> ArrivalSchedule:
    inc = np.diff(cum)
    if max_rate is not None:
        inc = np.minimum(inc, max_rate * np.diff(grid))
    inc = np.clip(inc, 0.0, None) * share
    return ArrivalSchedule(grid=grid, cum=np.concatenate([[0.0], np.cumsum(inc)]))


def constant_schedule(*, rate: float, duration_s: float, max_rate: float | None = None,
                      share: float = 1.0) -> ArrivalSchedule:
    """A homogeneous Poisson schedule of `rate` arrivals per test second.

    >>> round(constant_schedule(rate=100.0, duration_s=1.0, max_rate=10.0).expected(), 6)
    10.0
    """
    grid = _grid(duration_s)
    return _clip(grid, rate * grid, max_rate, share)


# The "flash-crowd" shape is a step test of the generator (--arrival-shape, with
# --arrival-rate): 0 -> R/s within a second. It is not the flash-crowd *profile*
# (scenarios/profiles/flash-crowd.toml, --profile): a calendar day whose announcement
# brings 8x the rate for an hour.
ARRIVAL_SHAPES = ("constant", "flash-crowd")
FLASH_QUIET_S = 5.0   # a flash crowd: nobody for this long (at most a quarter of the run) ...
FLASH_RISE_S = 1.0    # ... then 0 -> R arrivals/s within this long, held to the end


def flash_crowd_schedule(*, rate: float, duration_s: float, quiet_s: float | None = None,
                         rise_s: float = FLASH_RISE_S, max_rate: float | None = None,
                         share: float = 1.0) -> ArrivalSchedule:
    """A flash crowd: 0 arrivals/s for `quiet_s`, a linear rise to `rate` within `rise_s`, then
    `rate`.

    Λ(τ) is exact on the grid: 0, then rate·(τ−q)²/2r, then rate·(τ−q−r/2)::

        >>> s = flash_crowd_schedule(rate=100.0, duration_s=20.0)
        >>> round(s.expected(0, 5), 6), round(s.expected(5, 6), 3), round(s.rate_at(10.0), 3)
        (0.0, 50.0, 100.0)
    """
    q = min(FLASH_QUIET_S, duration_s / 4) if quiet_s is None else quiet_s
    grid = _grid(duration_s)
    x = np.clip(grid - q, 0.0, None)
    cum = rate * np.where(x < rise_s, x * x / (2 * rise_s), x - rise_s / 2)
    return _clip(grid, cum, max_rate, share)


def shaped_schedule(shape: str, *, rate: float, duration_s: float, max_rate: float | None = None,
                    share: float = 1.0) -> ArrivalSchedule:
    """The schedule of an `--arrival-rate R --arrival-shape SHAPE` run (one of `ARRIVAL_SHAPES`).

    >>> (round(shaped_schedule("constant", rate=2.0, duration_s=10.0).expected()),
    ...  round(shaped_schedule("flash-crowd", rate=2.0, duration_s=10.0).expected()))
    (20, 14)
    """
    if shape == "flash-crowd":
        return flash_crowd_schedule(rate=rate, duration_s=duration_s, max_rate=max_rate,
                                    share=share)
    return constant_schedule(rate=rate, duration_s=duration_s, max_rate=max_rate, share=share)


def profile_schedule(curve: ArrivalCurve, *, calendar_origin_s: float, compress: float,
                     scale: float,
                     duration_s: float, max_rate: float | None = None,
                     share: float = 1.0) -> ArrivalSchedule:
    """The schedule of a profile: calendar t = origin + compress x τ, rate x scale x compress.

    `calendar_origin_s` is in calendar seconds since the profile's window start.

    >>> from scenarios.profile import load_profile
    >>> c = ArrivalCurve(load_profile("steady"))
    >>> s = profile_schedule(c, calendar_origin_s=0, compress=7 * 86400 / 60, scale=0.01,
    ...                      duration_s=60)
    >>> round(s.expected())  # 1% of 100,000 applicants
    1000
    """
    grid = _grid(duration_s)
    cal = calendar_origin_s + compress * grid
    cum = scale * (curve.cumulative(cal) - curve.cumulative(calendar_origin_s))
    return _clip(grid, cum, max_rate, share)


def bucket_counts(times: np.ndarray, duration_s: float,
                  bucket_s: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Bucket starts and counts of `times` in buckets of `bucket_s` over [0, duration_s).

    >>> import numpy as np
    >>> bucket_counts(np.array([0.5, 1.5, 12.0]), 20.0)[1].tolist()
    [2, 1]
    """
    edges = np.arange(0.0, duration_s + bucket_s * 0.5, bucket_s)
    if edges[-1] < duration_s:
        edges = np.append(edges, duration_s)
    counts, _ = np.histogram(times, bins=edges)
    return edges[:-1], counts
