"""summary.json and run.json of a rehearsal, computed from the recorder and the settings.

    >>> exit_code_for(reconciliation={"ok": True}, audit={"balanced": True},
    ...               thresholds=[{"ok": False}])
    1
    >>> exit_code_for(reconciliation={"ok": False}, audit=None, thresholds=[])
    3
"""

from __future__ import annotations

import platform
from typing import Any

from floor.vocabulary import STEPS
from scenarios.options import RunSettings
from scenarios.recorder import DROP_REASONS, Recorder, iso_utc


def exit_code_for(*, reconciliation: dict[str, Any] | None, audit: dict[str, Any] | None,
                  thresholds: list[dict[str, Any]]) -> int:
    """3 if data was lost or duplicated, else 1 if a threshold failed, else 0."""
    if (reconciliation is not None and not reconciliation.get("ok", True)) or (
            audit is not None and audit.get("balanced") is False):
        return 3
    if any(not t.get("ok", True) for t in thresholds):
        return 1
    return 0


def parameters(s: RunSettings) -> dict[str, Any]:
    """The run's parameters as written in run.json and summary.json."""
    return {
        "profile": s.profile_name, "arrival_rate": s.arrival_rate, "arrival_shape": s.arrival_shape,
            "host": s.host, "embedded_testbed": s.embedded,
        "compress": s.compress, "scale": s.scale, "demand_multiplier": s.demand_multiplier,
            "seed": s.seed,
        "duration_s": s.duration_s, "max_rate": s.max_rate, "user_cap": s.user_cap,
            "workers": s.workers,
        "thresholds": [t.expr for t in s.thresholds], "threshold_window_s": s.threshold_window_s,
        "gates_file": s.gates_file, "reuse_idempotency_keys": s.reuse_idempotency_keys,
        "window": [s.calendar_origin.isoformat(),
                   s.window_end.isoformat()] if s.calendar_origin and s.window_end else None,
        "scale_note": s.scale_note,
    }


def versions() -> dict[str, str]:
    """Versions of surgecast, Locust and Python."""
    import locust

    from floor.version import __version__
    return {"surgecast": __version__, "locust": locust.__version__,
            "python": platform.python_version()}


def run_json(s: RunSettings, *, origin_unix: float, started_unix: float, finished_unix: float,
             extra: dict[str, Any]) -> dict[str, Any]:
    """The body of run.json."""
    return {"kind": "rehearsal", **parameters(s), "wall_origin_at": iso_utc(origin_unix),
            "calendar_origin_at": (s.calendar_origin.isoformat() if s.calendar_origin
                                   else iso_utc(origin_unix)),
            "versions": versions(), "started_at": iso_utc(started_unix),
            "finished_at": iso_utc(finished_unix),
            **extra}


def summary_json(s: RunSettings, rec: Recorder, *, scheduled_expected: float, elapsed_s: float,
                 thresholds: list[dict[str, Any]], cpu_max: float | None, exit_code: int,
                 reconciliation: dict[str, Any] | None,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body of summary.json (`extra` adds fields, e.g. `lost_workers` of a distributed run)."""
    c = rec.counts
    lat = rec.latency

    def ms(step: str, clock: str, pcts: tuple[float, ...]) -> list[float | None]:
        got = lat.percentiles(step, clock, pcts)
        return [None if got[p] is None else round(got[p] * 1000, 3) for p in pcts]

    steps: dict[str, Any] = {}
    errors_by_step: dict[str, int] = {}
    for w in rec._windows.values():
        for step, slot in w.items():
            errors_by_step[step] = errors_by_step.get(step, 0) + slot["errors"]
    for step in STEPS:
        n = lat.count(step, "service")
        if n == 0 and lat.count(step, "intended") == 0:
            continue
        p50, p95, p99, p999 = ms(step, "service", (50, 95, 99, 99.9))
        i50, i95, i99 = ms(step, "intended", (50, 95, 99))
        steps[step] = {"count": n, "errors": errors_by_step.get(step, 0),
                       "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "p999_ms": p999,
                       "intended_p50_ms": i50, "intended_p95_ms": i95, "intended_p99_ms": i99}
    span = max(s.duration_s, 1e-9)
    return {
        "scheduled": c.get("scheduled", 0), "started": c.get("started", 0),
            "dropped": c.get("dropped", 0),
        "dropped_by_reason": {r: c.get(f"dropped_{r}", 0) for r in DROP_REASONS},
        "completed": c.get("completed", 0), "abandoned": c.get("abandoned", 0),
            "failed": c.get("failed", 0),
        "scheduled_expected": round(scheduled_expected, 3),
        "achieved_rate_per_s": round(c.get("scheduled", 0) / span, 4),
        "scheduled_rate_per_s": round(scheduled_expected / span, 4),
        "requests": rec.requests, "request_errors": rec.errors,
        "steps": steps, "thresholds": thresholds, "generator_cpu_percent_max": cpu_max,
        "reconciliation_ok": None if reconciliation is None else reconciliation.get("ok"),
        "reconciliation_problems": None if reconciliation is None else {
            k: reconciliation.get(k) for k in reconciliation.get("problems", [])},
        "elapsed_s": round(elapsed_s, 3), "exit_code": exit_code, "parameters": parameters(s),
        **(extra or {}),
    }
