"""How fast the rehearsal's issuer completed, split by whether it was saturated, from its files.

Why the issuer under rehearsal completes fewer stamps per second than the probe measured:
`saturation(run_dir)` sets the server's completion times (server_records.json) against its
queue samples (queue.csv) and returns, per window of `window_s` test seconds, whether every
worker was busy with work queued behind it all window long (saturated), and the completions
there. The rate over the whole run mixes idle and paused time with saturated time; only the
saturated windows say what the issuer can do under rehearsal load::

    s = saturation(Path("runs/demo"))
    s["saturated_rate"], s["overall_rate"], s["probe_rate"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from analysis.rehearsal_inputs import _unix
from floor.rundir import schema as rs
from floor.rundir.files import read_capacity, read_queue
from floor.rundir.readers import read_json, require

__all__ = ["saturation"]


def _queue(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(unix s, queued, busy, paused) per queue.csv sample (floor.rundir.files.read_queue)."""
    s = read_queue(path, missing="a rehearsal against a target with an admin API writes it")
    require(s, "at")
    paused = s.cols.get("issuer_paused")
    return (np.array([t.timestamp() for t in s["at"]]), s["issuer_queue"],
            s["issuer_busy"] >= s["issuer_workers"],
            np.zeros(len(s), dtype=bool) if paused is None else paused != 0)


def saturation(run_dir: Path, *, window_s: float = 1.0) -> dict[str, Any]:
    """Completions per second overall, while saturated, and while not (see the module docstring)."""
    rec = read_json(run_dir / rs.SERVER_RECORDS)
    done = np.sort([_unix(s["finished_at"]) for s in rec.get("stamps") or []
                    if s.get("finished_at") and s.get("status") in ("done", "failed")])
    t, q, busy, paused = _queue(run_dir / rs.QUEUE)
    cap_path = run_dir / rs.CAPACITY
    probe = read_capacity(cap_path) if cap_path.is_file() else {}
    edges = np.arange(t[0], t[-1], window_s)
    sat_n = sat_s = other_n = other_s = 0.0
    sat_rates: list[float] = []
    for a in edges:
        sel = (t >= a) & (t < a + window_s)
        if not sel.any():
            continue
        n = float(np.count_nonzero((done >= a) & (done < a + window_s)))
        if bool(np.all(busy[sel] & (q[sel] > 0) & ~paused[sel])):
            sat_n, sat_s = sat_n + n, sat_s + window_s
            sat_rates.append(n / window_s)
        else:
            other_n, other_s = other_n + n, other_s + window_s
    span = float(t[-1] - t[0])
    inside = float(np.count_nonzero((done >= t[0]) & (done <= t[-1])))
    return {"overall_rate": round(inside / span, 3) if span > 0 else None,
            "saturated_rate": round(sat_n / sat_s, 3) if sat_s else None,
            "saturated_s": sat_s,
            "unsaturated_rate": round(other_n / other_s, 3) if other_s else None,
            "unsaturated_s": other_s, "paused_s": round(float(np.mean(paused)) * span, 1),
            "saturated_window_rates_p10_p50_p90": (
                [round(float(x), 1) for x in np.percentile(sat_rates, [10, 50, 90])]
                if sat_rates else None),
            "probe_rate": probe.get("stamps_per_second"),
            "configured_rate": probe.get("configured_stamps_per_second"),
            "window_s": window_s}
