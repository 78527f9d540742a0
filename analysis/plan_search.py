"""The planner's searches, all on the recommended plan as decided (its stage times fixed):

- the **target** (stated, or within `target_gap` of what an unlimited issuer would serve);
- **bands** p5/p50/p95 over the parameter ranges, and the parameter set at p5 of served;
- the **extension grid**: served share at every whole day 0..`max_extension_days` (on the
  p5 set, so the minimum extension agrees with the p5 verdict), the smallest meeting the target;
- **required capacity** (bisection on the capacity factor, checked at the answer);
- the **what-if table** (capacities around the decision region x whole-day extensions);
- **trade-offs**: one more day against one more stamp/s.

    >>> smallest_day([0.5, 0.95, 0.9], 0.93)
    (1, None)
    >>> smallest_day([0.5, 0.6], 0.93)[1]
    'not reached within 1 day(s) at this capacity: at most 60.0% served, target 93.0%'
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from analysis import bands as bands_mod
from analysis.backlog import FluidInputs
from analysis.extension import smallest_meeting

__all__ = ["search", "smallest_day", "workers"]

MAX_FACTOR = 16.0
# the searches run the model at 5-minute steps (the headline outcome at 1 minute)
SEARCH_STEP_S = 300.0


def smallest_day(shares: Sequence[float], target: float) -> tuple[int | None, str | None]:
    """(smallest whole day meeting the target, None) or (None, reason)."""
    d = smallest_meeting(shares, target)
    if d is not None:
        return d, None
    return None, (
        f"not reached within {len(shares) - 1} day(s) at this capacity: at most "
        f"{max(shares):.1%} served, "
        f"target {target:.1%}"
    )


def _share(
    model: Any,
    chosen: Any,
    days: int,
    factor: float = 1.0,
    params: dict[str, float] | None = None,
    step_s: float = SEARCH_STEP_S,
) -> dict[str, float]:
    inp: FluidInputs = model.inputs(days, factor, params, step_s)
    return model.outcome(inp, chosen.stages)


_CTX: tuple[Any, Any, Any] | None = None  # (function, model, extra), inherited by forked workers


def _task(job: Any) -> Any:
    assert _CTX is not None
    fn, model, extra = _CTX
    return fn(model, extra, *job) if extra is not None else fn(model, job)


def workers() -> int:
    """Worker processes for the searches: SURGECAST_WORKERS, else up to 2 (1 = no pool).

    >>> workers() >= 1
    True
    """
    env = os.environ.get("SURGECAST_WORKERS")
    if env and env.isdigit() and int(env) >= 1:
        return int(env)
    return max(1, min(2, os.cpu_count() or 1))


def _gevent_patched() -> bool:
    """True when gevent has patched the standard library (Locust imported): a forked pool would
    hang."""
    mod = sys.modules.get("gevent.monkey")
    try:
        return bool(mod and mod.is_module_patched("threading"))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - any doubt: run serially
        return True


def _default_signals() -> None:
    """In a forked worker: the default SIGTERM/SIGINT, not the parent's (which raise to stop a
    command).

    The pool ends its workers with SIGTERM; an inherited handler would print a traceback
    from each worker at the end of every plan.
    """
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, signal.SIG_DFL)


def pool_map(fn: Any, model: Any, jobs: list[Any], extra: Any = None) -> list[Any]:
    """[fn(model, job)] (or fn(model, extra, *job)), in forked workers when there are several
    jobs."""
    global _CTX
    n = workers()
    if (
        n <= 1
        or len(jobs) < 2
        or "fork" not in multiprocessing.get_all_start_methods()
        or _gevent_patched()
    ):
        return [fn(model, extra, *j) if extra is not None else fn(model, j) for j in jobs]
    _CTX = (fn, model, extra)
    try:
        with multiprocessing.get_context("fork").Pool(
            min(n, len(jobs)), initializer=_default_signals
        ) as pool:
            return pool.map(_task, jobs, chunksize=1)
    finally:
        _CTX = None


def _map(model: Any, chosen: Any, jobs: list[tuple[Any, ...]]) -> list[dict[str, float]]:
    """Run the jobs (days, capacity factor, parameter set[, step]) of the chosen plan."""
    return pool_map(_share, model, jobs, chosen)


def search(model: Any, cfg: Any, chosen: Any, total: float, base_cap: float) -> dict[str, Any]:
    """Everything the Plan needs besides the candidates (see module doc)."""
    e = cfg.extend_days
    notes: list[str] = []
    # Phase 1: the target, the bands and the what-if table (capacity rows need no search).
    attainable, bands, p5_set = _bands(model, cfg, chosen, total)
    # Phase 2: the extension grid on the p5 set, in batches until a day meets the target
    # (every day is tried, in order: the share need not grow with the extension).
    jobs2: list[tuple[Any, ...]] = [(e, (base_cap + 1.0) / base_cap, p5_set)]
    if p5_set is not None:
        jobs2.append((e, 1000.0, p5_set))
    res2 = _map(model, chosen, jobs2 + [(d, 1.0, p5_set) for d in sorted({e, e + 1})])
    more_cap = res2[0]["served"]
    if p5_set is not None:
        attainable = res2[1]["served"] / total
    by_day = {d: o for d, o in zip(sorted({e, e + 1}), res2[len(jobs2) :], strict=True)}
    # The target: stated, or within target_gap of what an unlimited issuer would serve in the
    # case the verdict uses (the p5 set: the outage loses more for good there).
    target = cfg.target if cfg.target is not None else max(0.0, attainable - cfg.target_gap)
    grid, req_days, reason = _extension_grid(model, cfg, chosen, total, target, p5_set, by_day)
    trade = {
        "one_more_day": by_day[e + 1]["served"] - by_day[e]["served"],
        "one_more_stamp_per_second": more_cap - by_day[e]["served"],
    }
    at_e = by_day[e]["served"] / total
    required = _required_capacity(model, chosen, e, p5_set, total, target, base_cap, at_e)
    if required is None:
        notes.append(
            f"required capacity: not reached below {MAX_FACTOR:g} x today's capacity by the "
            f"close in force"
        )
    return {
        "target_share": target,
        "attainable_share": attainable,
        "bands": bands,
        "p5_set": p5_set,
        "grid": grid,
        "required_extension_days": req_days,
        "extension_reason": reason,
        "required_capacity": required,
        "what_if": _what_if(model, cfg, chosen, total, base_cap, required),
        "trade_offs": trade,
        "notes": notes,
    }


def _bands(
    model: Any, cfg: Any, chosen: Any, total: float
) -> tuple[float, dict[str, Any] | None, Any]:
    """The share an unlimited issuer would serve, and with `cfg.bands` the bands of served,
    waiting and lost over the parameter sets and the set at p5 of served."""
    e = cfg.extend_days
    bands = p5_set = None
    sets = []
    jobs: list[tuple[Any, ...]] = [(e, 1000.0, None)]
    if cfg.bands:
        sets = bands_mod.parameter_sets(bands_mod.profile_ranges(model.profile), cfg.band_sets)
        jobs += [(e, 1.0, st, bands_mod.BAND_STEP_S) for st in sets]
    first = _map(model, chosen, jobs)
    attainable = first[0]["served"] / total
    if cfg.bands:
        outs = first[1:]
        bands = {k: bands_mod.band([o[k] for o in outs]) for k in ("served", "waiting", "lost")}
        p5 = bands["served"]["p5"]
        p5_set = min(zip(sets, outs, strict=True), key=lambda so: abs(so[1]["served"] - p5))[0]
    return attainable, bands, p5_set


def _extension_grid(
    model: Any,
    cfg: Any,
    chosen: Any,
    total: float,
    target: float,
    p5_set: Any,
    by_day: dict[int, dict[str, float]],
) -> tuple[list[dict[str, Any]], int | None, str | None]:
    """The served share at whole days 0..max_extension_days (on the p5 set), run in batches
    until a day meets the target; the smallest such day and, if none, why. Fills `by_day`."""
    days = list(range(cfg.max_extension_days + 1))
    batch = max(2, 2 * workers())
    for i in range(0, len(days), batch):
        todo = [d for d in days[i : i + batch] if d not in by_day]
        by_day.update(zip(todo, _map(model, chosen, [(d, 1.0, p5_set) for d in todo]), strict=True))
        if any(
            by_day[d]["served"] / total >= target - 1e-12 for d in days[: i + batch] if d in by_day
        ):
            break
    grid = [
        {"days": d, "served_share": by_day[d]["served"] / total, **by_day[d]}
        for d in days
        if d in by_day
    ]
    req_days, reason = smallest_day([g["served_share"] for g in grid], target)
    if req_days is None and len(grid) < len(days):
        reason = None
    return grid, req_days, reason


def _required_capacity(
    model: Any,
    chosen: Any,
    e: int,
    p5_set: Any,
    total: float,
    target: float,
    base_cap: float,
    share_now: float,
) -> float | None:
    """The capacity (stamps/s) that meets the target by the close in force: bisection on the
    capacity factor (`share_now` is the share served at today's); None below MAX_FACTOR."""

    def ok(f: float) -> bool:
        return _share(model, chosen, e, f, p5_set)["served"] / total >= target - 1e-12

    if share_now >= target - 1e-12:
        lo, hi = 0.0, 1.0
    else:
        lo, hi = 1.0, 2.0
        while hi <= MAX_FACTOR and not ok(hi):
            lo, hi = hi, hi * 2
    if hi > MAX_FACTOR:
        return None
    while (hi - lo) * base_cap > max(0.05, 0.005 * hi * base_cap):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi * base_cap


def _what_if(
    model: Any, cfg: Any, chosen: Any, total: float, base_cap: float, required: float | None
) -> list[dict[str, Any]]:
    """The what-if table: capacities around the decision region x whole-day extensions."""
    caps = _what_if_capacities(base_cap, required)
    cells = [(c, d) for c in caps for d in cfg.what_if_days]
    res3 = _map(model, chosen, [(d, c / base_cap, None) for c, d in cells])
    return [
        {
            "capacity": round(c, 3),
            "extension_days": d,
            "served": round(o["served"]),
            "waiting": round(o["waiting"]),
            "lost": round(o["lost"]),
            "served_share": round(o["served"] / total, 5),
        }
        for (c, d), o in zip(cells, res3, strict=True)
    ]


def _what_if_capacities(base: float, required: float | None) -> list[float]:
    """Rows around the decision region: from below today's capacity to beyond the required one.

    >>> _what_if_capacities(12.0, 20.0)
    [9.0, 12.0, 16.0, 20.0, 25.0]
    >>> _what_if_capacities(12.0, None)
    [6.0, 9.0, 12.0, 18.0, 24.0]
    """
    if required is None or abs(required - base) < 0.05 * base:
        return [base * f for f in (0.5, 0.75, 1.0, 1.5, 2.0)]
    lo, hi = min(base, required), max(base, required)
    vals = [lo * 0.75, lo, (lo + hi) / 2, hi, hi * 1.25]
    return [round(v, 3) for v in vals]
