"""Capacity from a probe: probe.csv rows -> the capacity.json dict (docs/run-directory.md).

A probe (`surgecast probe`) runs stepped closed-model load (concurrency 1, 2, 4, ...)
and writes one row per concurrency level and journey step, plus `step = journey`
(whole journeys) and `step = stamps` (completed stamps). This module only reads.

* **sustainable stamps/s**: the highest measured `stamps` throughput among levels whose
  error ratio is at most `max_error_ratio` (default 1 %). Measured, never extrapolated:
  a USL peak beyond the measured range is reported in `usl`, not used here.
* **peak concurrency** per step: the measured level with the highest throughput among
  acceptable levels (ties: the lowest concurrency).
* **usl** per step: a USL fit over the acceptable levels when there are at least 4
  distinct levels with throughput > 0; otherwise every number is null and `note` says
  why (too few points are not fitted, a 3-point fit has no error bars and is not honest).

    >>> rows = [{"concurrency": n, "step": "stamps", "requests": 10 * n, "errors": 0,
    ...          "error_ratio": 0.0, "throughput_per_s": x, "p50_ms": 10, "p95_ms": 20,
    ...          "p99_ms": 30, "duration_s": 60} for n, x in [(1, 9.8), (2, 19), (4, 34), (8, 52), (16, 58)]]
    >>> cap = capacity_from_probe(rows, measured_at="2024-09-01T00:00:00Z")
    >>> cap["stamps_per_second"], cap["peak_concurrency"]["stamps"]
    (58.0, 16)
    >>> cap["usl"]["stamps"]["r2"] > 0.99
    True
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analysis.usl import MIN_POINTS, fit_usl
from surgecast.errors import InputFileError

PROBE_COLUMNS = ("concurrency", "step", "requests", "errors", "error_ratio", "throughput_per_s",
                 "p50_ms", "p95_ms", "p99_ms", "duration_s")
_NUMERIC = tuple(c for c in PROBE_COLUMNS if c != "step")
USL_KEYS = ("alpha", "beta", "gamma", "peak_load", "peak_throughput", "limit_throughput", "r2")

__all__ = ["capacity_from_probe", "read_probe_csv", "PROBE_COLUMNS"]


def read_probe_csv(path: str | Path) -> list[dict[str, Any]]:
    """Read probe.csv; errors name the line and column.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "probe.csv"
    >>> _ = p.write_text(",".join(PROBE_COLUMNS) + "\\n1,stamps,10,0,0,9.5,1,2,3,60\\n")
    >>> read_probe_csv(p)[0]["throughput_per_s"]
    9.5
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{p}: no such file; give the probe.csv of a probe run")
    try:
        with p.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in PROBE_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputFileError(f"{p} line 1: missing column(s) {', '.join(missing)}; "
                                     f"probe.csv needs {', '.join(PROBE_COLUMNS)}")
            rows = []
            for raw in reader:
                rows.append(_parse_row(raw, f"{p} line {reader.line_num}"))
    except UnicodeDecodeError:
        raise InputFileError(f"{p}: not UTF-8 text; give the probe.csv of a probe run") from None
    except csv.Error as e:
        raise InputFileError(f"{p}: not valid CSV ({e}); give the probe.csv of a probe run") from None
    return rows


def _parse_row(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    row: dict[str, Any] = {"step": str(raw.get("step", "")).strip()}
    if not row["step"]:
        raise InputFileError(f"{where}, column step: empty; name the journey step, 'journey' or 'stamps'")
    for c in _NUMERIC:
        v = raw.get(c)
        try:
            x = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InputFileError(f"{where}, column {c}: {v!r} is not a number") from None
        if not math.isfinite(x) or x < 0:
            raise InputFileError(f"{where}, column {c}: {v!r} must be a finite number >= 0")
        row[c] = x
    if row["concurrency"] < 1 or not float(row["concurrency"]).is_integer():
        raise InputFileError(f"{where}, column concurrency: {raw.get('concurrency')!r} must be a whole number >= 1")
    row["concurrency"] = int(row["concurrency"])
    return row


def _usl_entry(levels: list[int], xs: list[float]) -> dict[str, Any]:
    pairs = [(n, x) for n, x in zip(levels, xs, strict=True) if x > 0]
    distinct = len({n for n, _ in pairs})
    if distinct < MIN_POINTS:
        return {**dict.fromkeys(USL_KEYS), "points": distinct,
                "note": f"{distinct} usable concurrency level(s); the USL fit needs at least {MIN_POINTS}: not fitted"}
    try:
        fit = fit_usl([n for n, _ in pairs], [x for _, x in pairs])
    except InputFileError as e:  # levels the fit cannot use (e.g. out of range): say why, keep the rest
        return {**dict.fromkeys(USL_KEYS), "points": distinct, "note": f"not fitted: {e}"}
    out: dict[str, Any] = {k: getattr(fit, k) for k in USL_KEYS}
    out.update({"alpha_se": fit.alpha_se, "beta_se": fit.beta_se, "gamma_se": fit.gamma_se, "points": distinct})
    if fit.peak_load is not None and fit.peak_load > max(levels):
        out["note"] = f"peak load {fit.peak_load:.0f} is beyond the highest measured level {max(levels)}: extrapolated"
    return out


def capacity_from_probe(rows: Iterable[Mapping[str, Any]], *, max_error_ratio: float = 0.01,
                        configured: Mapping[str, Any] | None = None,
                        measured_at: str | None = None) -> dict[str, Any]:
    """The capacity.json dict from probe rows (dicts with PROBE_COLUMNS; strings or numbers).

    >>> capacity_from_probe([])["stamps_per_second"] is None
    True
    """
    parsed = [r if isinstance(r.get("concurrency"), int) and isinstance(r.get("throughput_per_s"), float)
              else _parse_row(r, f"row {i + 1}") for i, r in enumerate(rows)]
    by_step: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in parsed:
        by_step[r["step"]][r["concurrency"]] = r  # a repeated level: the last row wins
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
                         "note": f"every level has error ratio above {max_error_ratio:g}: not fitted"}
            continue
        xs = [levels[n]["throughput_per_s"] for n in ok]
        best = max(xs)
        peak[step] = ok[xs.index(best)]
        usl[step] = _usl_entry(ok, xs)
    stamps = by_step.get("stamps", {})
    good = [r["throughput_per_s"] for r in stamps.values() if r["error_ratio"] <= max_error_ratio]
    sustainable = max(good) if good else None
    note = None
    if not stamps:
        note = "probe.csv has no 'stamps' rows: no sustainable stamp rate"
    elif sustainable is None:
        note = f"every stamps level has error ratio above {max_error_ratio:g}: no sustainable rate"
    return {
        "stamps_per_second": sustainable,
        "peak_concurrency": peak,
        "usl": usl,
        "configured": dict(configured) if configured is not None else None,
        "measured_at": measured_at or datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "max_error_ratio": max_error_ratio,
        "excluded_levels": excluded,
        "note": note,
    }
