"""Bands: p5 / p50 / p95 of served, waiting and lost at the close over the unpublished parameters.

Everything a profile states without a source carries a range in its [ranges] table
(patience, persistence, returns, the outage's capacity factor, the bypass share, the
conversion of accounts, the share re-aiming at an extended close). The planner runs its
plan over `N_SETS` parameter sets spread over those ranges (a seeded Latin hypercube:
every range cut into N strata, each stratum used once) and reports the percentiles.
The verdict uses p5 of served.

    >>> sets = parameter_sets(RANGES, 8, seed=1)
    >>> len(sets), sorted(sets[0])
    (8, ['behaviour.patience_minutes', 'behaviour.retry_after_minutes'])
    >>> band([3.0, 1.0, 2.0, 4.0, 5.0])["p50"]
    3.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from scenarios.profile_model import Profile

__all__ = [
    "RANGES",
    "N_SETS",
    "EXCLUDED",
    "BAND_STEP_S",
    "parameter_sets",
    "band",
    "profile_ranges",
]

# Used only for profiles without a [ranges] table (stated defaults, not published).
RANGES: dict[str, tuple[float, float]] = {
    "behaviour.patience_minutes": (5.0, 60.0),  # one visit
    "behaviour.retry_after_minutes": (
        60.0,
        360.0,
    ),  # the 2023 queue said "come back in 2 to 3 hours"
}
N_SETS = 16
# Not banded: the issuer's capacity is what the plan is made for (the what-if table and the
# required capacity answer it), so the bands hold it fixed.
EXCLUDED = ("capacity.stamps_per_second",)
BAND_STEP_S = 300.0  # the bands run the model at 5-minute steps (as `analysis.forecast.bands`)


def profile_ranges(profile: Profile) -> dict[str, tuple[float, float]]:
    """The profile's [ranges] (names as in `analysis.forecast.PARAMS`), less the capacity;
    else `RANGES`.

    >>> from scenarios.profile import load_profile
    >>> "behaviour.persistence_days" in profile_ranges(load_profile("casn2024"))
    True
    >>> "capacity.stamps_per_second" in profile_ranges(load_profile("casn2024"))
    False
    """
    from analysis.forecast import PARAMS

    own = getattr(profile, "ranges", None)
    src = own if isinstance(own, Mapping) and own else RANGES
    return {
        k: (float(v[0]), float(v[1])) for k, v in src.items() if k in PARAMS and k not in EXCLUDED
    }


def parameter_sets(
    ranges: Mapping[str, tuple[float, float]], n: int, *, seed: int = 2024
) -> list[dict[str, float]]:
    """`n` parameter sets, a seeded Latin hypercube over `ranges` (each stratum once per parameter).

    >>> s = parameter_sets({"a": (0.0, 1.0)}, 4, seed=0)
    >>> sorted(int(x["a"] * 4) for x in s)
    [0, 1, 2, 3]
    """
    rng = np.random.default_rng(seed)
    out: list[dict[str, float]] = [{} for _ in range(n)]
    for name, (lo, hi) in ranges.items():
        strata = (rng.permutation(n) + rng.random(n)) / n
        for i in range(n):
            out[i][name] = float(lo + (hi - lo) * strata[i])
    return out


def band(values: Sequence[float]) -> dict[str, float]:
    """{p5, p50, p95} of `values` (linear interpolation between order statistics).

    >>> band(range(101))
    {'p5': 5.0, 'p50': 50.0, 'p95': 95.0}
    """
    a = np.asarray(list(values), dtype=float)
    p5, p50, p95 = np.percentile(a, [5, 50, 95])
    return {"p5": float(p5), "p50": float(p50), "p95": float(p95)}
