"""Bands: p5 / p50 / p95 of served, waiting and lost at the close over the unpublished parameters.

The profile's behaviour parameters (patience, retry probability, retry interval) were
never published. Each carries a range; the planner runs its plan over `N_SETS` parameter
sets spread over those ranges (a seeded Latin hypercube: every range cut into N strata,
each stratum used once) and reports the percentiles. The verdict uses p5 of served.

`RANGES` is the one place the ranges live until the profile carries its own
(`profile_ranges` prefers ranges the profile declares, when it has any).

    >>> sets = parameter_sets(RANGES, 8, seed=1)
    >>> len(sets), sorted(sets[0])
    (8, ['patience_minutes', 'retry_after_minutes', 'retry_probability'])
    >>> band([3.0, 1.0, 2.0, 4.0, 5.0])["p50"]
    3.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from analysis.backlog import FluidInputs
from scenarios.profile import Profile

__all__ = ["RANGES", "N_SETS", "parameter_sets", "band", "apply_set", "profile_ranges", "run_bands"]

# Stated defaults, not published: the span a planner should not be surprised by.
RANGES: dict[str, tuple[float, float]] = {
    "patience_minutes": (60.0, 240.0),       # one visit: one to four hours of trying
    "retry_probability": (0.70, 0.95),       # share of those who give up that come back
    "retry_after_minutes": (60.0, 240.0),    # the 2023 queue said "come back in 2 to 3 hours"
}
N_SETS = 20


def profile_ranges(profile: Profile) -> dict[str, tuple[float, float]]:
    """The profile's own parameter ranges where it declares them (`profile.ranges`), else `RANGES`.

    >>> from scenarios.profile import load_profile
    >>> sorted(profile_ranges(load_profile("casn2024")))
    ['patience_minutes', 'retry_after_minutes', 'retry_probability']
    """
    own = getattr(profile, "ranges", None)
    if isinstance(own, Mapping) and own:
        return {k: (float(v[0]), float(v[1])) for k, v in own.items() if k in RANGES}
    return dict(RANGES)


def parameter_sets(ranges: Mapping[str, tuple[float, float]], n: int, *, seed: int = 2024) -> list[dict[str, float]]:
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


def apply_set(inputs: FluidInputs, params: Mapping[str, float]) -> FluidInputs:
    """The inputs with one parameter set applied (unknown names ignored).

    >>> from analysis.backlog import inputs_from_profile
    >>> from scenarios.profile import load_profile
    >>> apply_set(inputs_from_profile(load_profile("steady")), {"patience_minutes": 30}).patience_s
    1800.0
    """
    kw: dict[str, Any] = {}
    if "patience_minutes" in params:
        kw["patience_s"] = params["patience_minutes"] * 60.0
    if "retry_probability" in params:
        kw["retry_probability"] = params["retry_probability"]
    if "retry_after_minutes" in params:
        kw["retry_after_s"] = params["retry_after_minutes"] * 60.0
    return replace(inputs, **kw)


def band(values: Sequence[float]) -> dict[str, float]:
    """{p5, p50, p95} of `values` (linear interpolation between order statistics).

    >>> band(range(101))
    {'p5': 5.0, 'p50': 50.0, 'p95': 95.0}
    """
    a = np.asarray(list(values), dtype=float)
    p5, p50, p95 = np.percentile(a, [5, 50, 95])
    return {"p5": float(p5), "p50": float(p50), "p95": float(p95)}


def run_bands(inputs: FluidInputs, outcome: Callable[[FluidInputs], dict[str, float]],
              ranges: Mapping[str, tuple[float, float]], n: int = N_SETS, *, seed: int = 2024,
              mapper: Callable[..., Any] = map) -> dict[str, dict[str, float]]:
    """Bands of served / waiting / lost: `outcome(inputs)` over `n` parameter sets.

    >>> from analysis.backlog import inputs_from_profile, fluid_totals
    >>> from scenarios.profile import load_profile
    >>> inp = inputs_from_profile(load_profile("flash-crowd"), stamps_per_second=5)
    >>> def oc(i):
    ...     s, l = fluid_totals(i)
    ...     return {"served": s, "lost": l, "waiting": i.total_applicants - s - l}
    >>> b = run_bands(inp, oc, RANGES, 6)
    >>> b["served"]["p5"] <= b["served"]["p50"] <= b["served"]["p95"]
    True
    """
    sets = [apply_set(inputs, s) for s in parameter_sets(ranges, n, seed=seed)]
    results = list(mapper(outcome, sets))
    return {k: band([r[k] for r in results]) for k in ("served", "waiting", "lost")}
