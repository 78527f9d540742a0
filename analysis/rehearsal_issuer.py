"""The issuer in a rehearsal: its measured rate while saturated, the arrivals it saw, the capacity
the model gives it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from analysis.backlog import GATES
from analysis.rehearsal_inputs import FrontEnd, _last_recovery
from floor.rundir import schema as rs
from floor.rundir.files import read_queue

RATE_WINDOW_S = 2.0  # test seconds per window of the issuer rate measured in a rehearsal


MIN_SATURATED_S = (
    3.0  # test seconds of a saturated issuer needed to take its rate from the rehearsal
)


def _issuer_samples(run_dir: Path, origin: float) -> tuple[np.ndarray, ...]:
    """(test s, issuer_completed, issuer_busy, issuer_workers) per queue.csv sample
    (floor.rundir.files.read_queue); a sample without a completed count (an empty cell: the
    target does not count them) is left out, and a file without `at` or `issuer_completed`
    gives none."""
    s = read_queue(run_dir / rs.QUEUE)
    if "at" not in s.cols or "issuer_completed" not in s.cols:
        return tuple(np.array([]) for _ in range(4))
    keep = ~np.isnan(s["issuer_completed"])
    ts = np.array([t.timestamp() - origin for t in s["at"]])
    return tuple(x[keep] for x in (ts, s["issuer_completed"], s["issuer_busy"],
                                   s["issuer_workers"]))


def issuer_rate(
    run_dir: Path,
    origin: float,
    after_s: float | None,
    window_s: float = RATE_WINDOW_S,
    breaks: tuple[float, ...] = (),
) -> tuple[float | None, float, list[tuple[float, float, float]]]:
    """The issuer's rate as the rehearsal's server counted it (queue.csv), under the rehearsal's
    load:
    (stamps/s completed while every worker was busy after `after_s` (the outage's end), the test
    seconds that covers, and per `window_s` window saturated most of the time (start, end,
    stamps/s));
    windows also end at `breaks` (the test seconds the outage's faults changed the issuer)::

        rate, span, windows = issuer_rate(Path("runs/demo"), origin, after_s=9.0, breaks=(9.0,))
    """
    t, c, b, w = _issuer_samples(run_dir, origin)
    if len(t) < 3:
        return None, 0.0, []
    full = (b[1:] >= w[1:]) & (b[:-1] >= w[:-1])
    dt, dc = np.diff(t), np.diff(c)
    post = full & (t[1:] > (after_s or 0.0))
    span = float(dt[post].sum())
    windows = []
    cuts = [0.0, *sorted(b for b in breaks if 0 < b < t[-1]), float(t[-1])]
    edges = []  # each stretch between faults in equal windows of about window_s
    for a, z in zip(cuts, cuts[1:], strict=False):
        k = max(1, round((z - a) / window_s))
        edges += [a + (z - a) * i / k for i in range(k)]
    for a, z in zip(edges, [*edges[1:], float(t[-1])], strict=True):
        sel = (t[:-1] >= a) & (t[:-1] < z)
        sat = sel & full
        if dt[sel].sum() > 0 and dt[sat].sum() >= 0.8 * dt[sel].sum():
            windows.append((float(a), float(z), float(dc[sat].sum() / dt[sat].sum())))
    return (float(dc[post].sum() / span) if span > 0 else None), span, windows


def _issuer_arrivals(
    arrivals: list[Any],
    fe: FrontEnd,
    origin: float,
    n: int,
    step_s: float,
    patience_s: float,
    think: float,
    own: dict[str, float] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """(arrivals per gate per step: all at stamping, when each first upload reached the issuer;
    the patience left of those arriving in each step, to the deadline less the time after the last
    stamp; the mean transit from the intended start). `own`: each applicant's own patience
    (else `patience_s` for all)."""
    own = own or {}
    arr = {g: np.zeros(n) for g in GATES}
    left_sum = np.zeros(n)
    transit_w = 0.0
    for app_id, journey, t_int, _outcome, _fin in arrivals:
        at = fe.first_upload.get(app_id)
        if at is None:
            at = t_int - origin + fe.transit_s.get(journey, think)
        k = int(at / step_s)
        if 0 <= k < n:
            arr["stamping"][k] += 1.0
            left_sum[k] += t_int - origin + own.get(app_id, patience_s) - at - fe.final_s
        transit_w += at - (t_int - origin)
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.where(
            arr["stamping"] > 0, left_sum / np.maximum(arr["stamping"], 1e-12), patience_s
        )
    return arr, np.maximum(left, step_s), (transit_w / len(arrivals) if arrivals else 0.0)


def _issuer_capacity(
    run_dir: Path,
    origin: float,
    acts: list[dict[str, Any]],
    given: float | None,
    probed: Any,
    issuer: str = "probe",
) -> tuple[float, str, list[tuple[float, float, float]], float | None, float]:
    """(stamps/s, where from: given, rehearsal or probe, measured windows, the saturated rate, its
    span)."""
    breaks = tuple(
        float(a.get("applied_at_s", a.get("at_s", 0.0))) for a in acts if a.get("kind") == "fault"
    )
    achieved, span, windows = (
        issuer_rate(run_dir, origin, _last_recovery(acts), breaks=breaks)
        if (run_dir / rs.QUEUE).is_file()
        else (None, 0.0, [])
    )
    if given is not None:
        return float(given), "given", [], achieved, span
    if issuer == "rehearsal" and achieved and span >= MIN_SATURATED_S:
        return achieved, "rehearsal", windows, achieved, span
    return float(probed), "probe", [], achieved, span
