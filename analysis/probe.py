"""Capacity from a probe: probe.csv + probe_batches.csv -> the capacity.json dict.

A probe (`surgecast probe`) runs stepped closed-model load (concurrency 1, 2, 4, ...),
measures each level in short batches (sub-windows, `probe_batches.csv`) and writes one
row per level and journey step to probe.csv, plus `step = journey` (whole journeys) and
`step = stamps` (stamps the client saw **done** at the issuer, not accepted 202s).
This module only reads (the files through floor.rundir.probe_files; `read_probe_csv` and
`read_batches_csv` are re-exported here); the same functions judge the ladder while it runs.

* **per level**: stamps/s = stamps / measured seconds, with a batch-means confidence
  interval (Student t over the per-batch rates; `level_estimate`).
* **levelling** (`assess`): the gain from one level to the next is the ratio of their
  rates, with a delta-method standard error. `rising` when the ratio's lower bound is
  above 1 + `min_gain`; `falling` when its upper bound is below 1; `flat` when its
  upper bound is below 1 + `min_gain`; otherwise undecided (a final judgement then
  takes the point estimate).
* **sustainable stamps/s**: the rate at the level the probe held (the most measured
  seconds), with its interval (the held level's own batch variability), if throughput
  had levelled there (`levelled_at`): a step next to it is flat or falling, or stamps
  queued at the issuer there (`queued_levels`: the server's queue non-empty at 90 % of
  the level's batch edges; without the server's figures the client's median stamp wait
  is `queue_factor` = 3 times the least of any level) and the step into it is not a
  significant rise, its gain at most `climb_gain` (25 %). Otherwise nothing is called the
  peak: `levelled` is false, `stamps_per_second` null, and `note` says so. A level whose
  error ratio passes `max_error_ratio` stops the ladder; the level below it is then the
  capacity (`limited_by = "errors"`).
* **peak concurrency** per step and a **USL** fit per step (at least 4 levels), as
  before; the USL is description, never the capacity.

    >>> batches = [{"concurrency": n, "stamps": x, "duration_s": 1.0,
    ...             "server_queue": 5 if n >= 4 else 0}
    ...            for n, xs in [(1, [5, 5, 6]), (2, [10, 9, 11]), (4, [15, 16, 16, 15, 16]),
    ...                          (8, [16, 15, 16, 16, 17, 15, 16, 16])] for x in xs]
    >>> cap = capacity_from_probe([], batches=batches, measured_at="2024-09-01T00:00:00Z")
    >>> cap["stamps_per_second"], cap["levelled"], cap["capacity_concurrency"]
    (15.875, True, 8)
    >>> cap["ci_low"] < 15.875 < cap["ci_high"]
    True
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from analysis.probe_stats import (
    CLIMB_GAIN,
    CONFIDENCE,
    MIN_GAIN,
    QUEUE_FACTOR,
    QUEUED_SHARE,
    STALL_SHARE,
    LevelEstimate,
    assess,
    dispersion,
    level_estimate,
    level_spread,
    levelled_at,
    plateau,
    queued_levels,
    robust_levels,
    stalled,
    steady,
)
from analysis.usl import MIN_POINTS, fit_usl
from floor.errors import InputFileError
from floor.rundir.probe_files import parse_batch_row as _parse_batch
from floor.rundir.probe_files import parse_probe_row as _parse_row
from floor.rundir.probe_files import read_batches_csv, read_probe_csv
from floor.rundir.schema import BATCH_COLUMNS, PROBE_COLUMNS

USL_KEYS = ("alpha", "beta", "gamma", "peak_load", "peak_throughput", "limit_throughput", "r2")
__all__ = ["BATCH_COLUMNS", "PROBE_COLUMNS", "LevelEstimate", "assess", "capacity_from_probe",
           "dispersion", "level_estimate", "level_spread", "levelled_at", "plateau",
           "queued_levels", "robust_levels", "read_batches_csv", "read_probe_csv", "stalled",
           "steady"]


def _usl_entry(levels: list[int], xs: list[float]) -> dict[str, Any]:
    pairs = [(n, x) for n, x in zip(levels, xs, strict=True) if x > 0]
    distinct = len({n for n, _ in pairs})
    if distinct < MIN_POINTS:
        return {**dict.fromkeys(USL_KEYS), "points": distinct,
                "note": f"{distinct} usable concurrency level(s); the USL fit needs at least "
                        f"{MIN_POINTS}: not fitted"}
    try:
        fit = fit_usl([n for n, _ in pairs], [x for _, x in pairs])
    except InputFileError as e:  # levels the fit cannot use (out of range): say why, keep the rest
        return {**dict.fromkeys(USL_KEYS), "points": distinct, "note": f"not fitted: {e}"}
    out: dict[str, Any] = {k: getattr(fit, k) for k in USL_KEYS}
    out.update({"alpha_se": fit.alpha_se, "beta_se": fit.beta_se, "gamma_se": fit.gamma_se,
                "points": distinct})
    if fit.peak_load is not None and fit.peak_load > max(levels):
        out["note"] = (f"peak load {fit.peak_load:.0f} is beyond the highest measured level "
                       f"{max(levels)}: extrapolated")
    return out


def capacity_from_probe(rows: Iterable[Mapping[str, Any]], *,
                        batches: Iterable[Mapping[str, Any]] | None = None,
                        max_error_ratio: float = 0.01, min_gain: float = MIN_GAIN,
                        climb_gain: float = CLIMB_GAIN, queue_factor: float = QUEUE_FACTOR,
                        confidence: float = CONFIDENCE, configured: Mapping[str, Any] | None = None,
                        configured_stamps_per_second: float | None = None,
                        measured_at: str | None = None) -> dict[str, Any]:
    """The capacity.json dict from probe rows (PROBE_COLUMNS) and, better, their batches
    (BATCH_COLUMNS).

    Without batches the levels carry no interval and levelling is judged on point
    estimates only (`note` says so).

    >>> capacity_from_probe([])["stamps_per_second"] is None
    True
    """
    by_step, every_batch = _parsed(rows, batches)
    batch_rows = steady(every_batch)
    peak, usl, excluded = _per_step(by_step, max_error_ratio)
    estimates = (_estimates(batch_rows, by_step.get("stamps", {}), confidence)
                 if batch_rows or not every_batch else [])
    waits = {n: r["p50_ms"] for n, r in by_step.get("stamps", {}).items() if r.get("p50_ms")}
    queued = sorted(queued_levels(batch_rows, waits, queue_factor=queue_factor))
    by_server = any(b.get("server_queue") not in (None, "") for b in batch_rows)
    cap, limited_by, steps = plateau(estimates, bad=excluded.get("stamps", []), queued=queued,
                                     by_server=by_server, robust=robust_levels(batch_rows),
                                     min_gain=min_gain, confidence=confidence,
                                     climb_gain=climb_gain)
    if cap is not None:
        peak["stamps"] = cap.concurrency
    top = estimates[-1] if estimates else None
    out: dict[str, Any] = {
        **_capacity_keys(cap, configured_stamps_per_second, confidence, limited_by),
        "highest_measured": _level_dict(top) if top else None,
        "levels": [_level_dict(e) for e in estimates],
        "steps": steps,
        "min_gain": min_gain,
        "climb_gain": climb_gain,
        "queued_levels": sorted(queued),
        "peak_concurrency": peak,
        "usl": usl,
        "configured": dict(configured) if configured is not None else None,
        "measured_at": measured_at or _now(),
        "max_error_ratio": max_error_ratio,
        "excluded_levels": excluded,
        "stalled_batches": len(every_batch) - len(batch_rows),
        "note": _note(by_step, estimates, cap, limited_by, top, bool(every_batch), max_error_ratio,
                      stalled=len(every_batch) - len(batch_rows), batches=len(every_batch)),
    }
    return out


def _capacity_keys(cap: LevelEstimate | None, configured: float | None, confidence: float,
                   limited_by: str | None) -> dict[str, Any]:
    """capacity.json's verdict and the held level's figures (None when nothing is the peak)."""
    return {
        "stamps_per_second": cap.stamps_per_second if cap else None,
        "ci_low": cap.ci_low if cap else None,
        "ci_high": cap.ci_high if cap else None,
        "confidence": confidence,
        "levelled": limited_by == "throughput",
        "limited_by": limited_by,
        "capacity_concurrency": cap.concurrency if cap else None,
        "configured_stamps_per_second": configured,
        "error_vs_configured": _rel(cap.stamps_per_second, configured) if cap else None,
        "server_stamps_per_second": cap.server_stamps_per_second if cap else None,
        "client_vs_server": (_rel(cap.stamps_per_second, cap.server_stamps_per_second)
                             if cap else None),
        "server_busy_share": cap.server_busy_share if cap else None,
    }


def _parsed(rows: Iterable[Mapping[str, Any]], batches: Iterable[Mapping[str, Any]] | None
            ) -> tuple[dict[str, dict[int, dict[str, Any]]], list[dict[str, Any]]]:
    """probe.csv rows by step and level (a repeated level: the last row wins), and the batches,
    each parsed unless it already is."""
    parsed = [r if isinstance(r.get("concurrency"), int)
              and isinstance(r.get("throughput_per_s"), float)
              else _parse_row(r, f"row {i + 1}") for i, r in enumerate(rows)]
    by_step: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in parsed:
        by_step[r["step"]][r["concurrency"]] = r
    batch_rows = [b if isinstance(b.get("concurrency"), int) else _parse_batch(b, f"batch {i + 1}")
                  for i, b in enumerate(batches or [])]
    return by_step, batch_rows


def _per_step(by_step: Mapping[str, Mapping[int, Mapping[str, Any]]], max_error_ratio: float
              ) -> tuple[dict[str, int | None], dict[str, dict[str, Any]], dict[str, list[int]]]:
    peak: dict[str, int | None] = {}
    usl: dict[str, dict[str, Any]] = {}
    excluded: dict[str, list[int]] = {}
    for step, levels in sorted(by_step.items()):
        ok = sorted(n for n, r in levels.items() if r["error_ratio"] <= max_error_ratio)
        bad = sorted(n for n in levels if n not in ok)
        if bad:
            excluded[step] = bad
        if not ok:
            peak[step] = None
            usl[step] = {**dict.fromkeys(USL_KEYS), "points": 0,
                         "note": f"every level has error ratio above {max_error_ratio:g}: "
                                 "not fitted"}
            continue
        xs = [levels[n]["throughput_per_s"] for n in ok]
        peak[step] = ok[xs.index(max(xs))]
        usl[step] = _usl_entry(ok, xs)
    return peak, usl, excluded


def _estimates(batches: list[dict[str, Any]], stamps: Mapping[int, Mapping[str, Any]],
               confidence: float) -> list[LevelEstimate]:
    if batches:
        grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for b in batches:
            grouped[b["concurrency"]].append(b)
        return [level_estimate(grouped[n], confidence=confidence,
                               spread=level_spread(grouped[n], batches))
                for n in sorted(grouped)]
    return [LevelEstimate(concurrency=n, stamps_per_second=float(r["throughput_per_s"]),
                          ci_low=None, ci_high=None, se=None, batches=0,
                          seconds=float(r["duration_s"]))
            for n, r in sorted(stamps.items())]


def _level_dict(e: LevelEstimate) -> dict[str, Any]:
    return {"concurrency": e.concurrency, "stamps_per_second": e.stamps_per_second,
            "ci_low": e.ci_low, "ci_high": e.ci_high, "batches": e.batches, "seconds": e.seconds,
            "server_stamps_per_second": e.server_stamps_per_second,
            "server_busy_share": e.server_busy_share}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _rel(x: float | None, ref: float | None) -> float | None:
    return round(x / ref - 1, 4) if x is not None and ref else None


def _note(by_step: Mapping[str, Any], estimates: list[LevelEstimate], cap: LevelEstimate | None,
          limited_by: str | None, top: LevelEstimate | None, has_batches: bool,
          max_error_ratio: float, *, stalled: int = 0, batches: int = 0) -> str | None:
    main = _verdict_note(by_step, estimates, cap, limited_by, top, has_batches, max_error_ratio)
    if not stalled:
        return main
    if stalled == batches:
        return (f"every one of the {batches} batches was stalled: the probe's own client did not "
                f"run on time (its batch edges came more than {STALL_SHARE:.0%} of a batch late, "
                "or followed one that did), "
                "so nothing it measured is the target's; run the probe on a less loaded machine")
    stall = (f"{stalled} of {batches} batches left out: the probe's own client stalled in them "
             f"(their closing edge more than {STALL_SHARE:.0%} of a batch late: the machine was "
             "overloaded) or they followed such a stall while the target's queue refilled, so "
             "their rate and queue are the client's, not the target's")
    return f"{main}; {stall}" if main else stall


def _verdict_note(by_step: Mapping[str, Any], estimates: list[LevelEstimate],
                  cap: LevelEstimate | None, limited_by: str | None, top: LevelEstimate | None,
                  has_batches: bool, max_error_ratio: float) -> str | None:
    held = max(estimates, key=lambda e: (e.seconds, e.concurrency)) if estimates else None
    if not by_step.get("stamps") and not estimates:
        return "probe.csv has no 'stamps' rows: no sustainable stamp rate"
    stamp_rows = (by_step.get("stamps") or {}).values()
    if cap is None and stamp_rows and all(r["error_ratio"] > max_error_ratio for r in stamp_rows):
        return f"every stamps level has error ratio above {max_error_ratio:g}: no sustainable rate"
    rising_top = len(estimates) < 2 or assess(estimates[-2], estimates[-1]) == "rising"
    if cap is None and held is not None and held is not top and not rising_top:
        return (f"throughput had not levelled with confidence at the held level "
                f"(concurrency {held.concurrency}, {held.stamps_per_second:g} stamps/s): "
                f"no flat step next to it and stamps did not queue at the issuer at "
                f"{QUEUED_SHARE:.0%} of its batch edges, so no level is called the peak; "
                f"raise --budget or look for another bottleneck (the client, the machine)")
    if cap is None and top is not None and not rising_top:
        return (f"not levelled by the top level (concurrency {top.concurrency}, "
                f"{top.stamps_per_second:g} stamps/s): the step into it was not shown flat and "
                f"stamps did not queue at the issuer at {QUEUED_SHARE:.0%} of its batch edges, so "
                f"no level is called the peak; raise --budget or --max-concurrency, or look for "
                f"another bottleneck (the client, the machine)")
    if cap is None and top is not None:
        return (f"not levelled by the top level (concurrency {top.concurrency}): throughput was "
                f"still rising ({top.stamps_per_second:g} stamps/s there), so no level is called "
                f"the peak; the capacity is above that; raise --max-concurrency or --budget")
    parts = []
    if limited_by == "errors" and cap is not None:
        parts.append(f"the level above concurrency {cap.concurrency} failed more than "
                     f"{max_error_ratio:g} of its requests: the capacity is the rate below the "
                     "errors")
    if not has_batches:
        parts.append("no probe_batches.csv: levels carry no confidence interval; levelling judged "
                     "on point estimates")
    return "; ".join(parts) or None
