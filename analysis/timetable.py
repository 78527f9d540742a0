"""What a manager reads off the plan's model run: the hourly reopening timetable, the
backlog of each stage (visible and invisible), the last-day cut-off and the triggers.

All from one `FluidResult` (arrays per model step), in applicants:

- **timetable**: per hour from the decision time and per gate, `admit` (applicants let
  through that gate in the hour: what to set a waiting room to), `eta_s` (the wait to show
  someone joining at the start of the hour: that gate's waiting room ÷ its admission rate,
  plus the stamping wait for gates before stamping), `returns` (the forecast return wave:
  applicants due back from that gate's orbit in the hour);
- **backlog**: the room and orbit of a stage's gates, plus, for the stamping stage, the
  issuer queue (visible) and the payments queue (paid but unstamped, invisible);
- **cut-off**: the latest arrival still served by the close, first come first served
  (arrived by t ≤ served + lost by the close);
- **triggers**: the numbers that show the plan is off track, per checkpoint.

    >>> from analysis.backlog import inputs_from_profile, run_fluid
    >>> from scenarios.profile import load_profile
    >>> r = run_fluid(inputs_from_profile(load_profile("flash-crowd"), stamps_per_second=5))
    >>> rows = timetable(r, 0, 3)
    >>> [x["gate"] for x in rows[:3]], rows[0]["hour_s"]
    (['registration', 'ordering', 'stamping'], 0.0)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from analysis.backlog import GATES, FluidResult

__all__ = ["timetable", "stage_backlog", "cutoff_s", "triggers"]


def _gate_wait(r: FluidResult, g: str, k: int) -> float:
    """Seconds to get through gate g's waiting room at step k (room ÷ the rate it admitted at)."""
    room = float(r.rooms[g][k])
    if room <= 1e-9:
        return 0.0
    adm = r.admitted.get(g) if r.admitted else None
    rate = float(adm[k]) / r.inputs.step_s if adm is not None else 0.0
    return room / rate if rate > 0 else math.inf


def _stamp_wait(r: FluidResult, k: int) -> float:
    """The model's wait at stamping: its room ÷ gate rate + issuer queue ÷ usable capacity."""
    return float(r.wait_s[k])


def timetable(r: FluidResult, start_k: int, hours: int) -> list[dict[str, Any]]:
    """Rows {hour_s, gate, admit, eta_s, returns} for `hours` hours from step `start_k`
    (see module doc)."""
    dt = r.inputs.step_s
    per_h = int(round(3600.0 / dt))
    ret = 1.0 / r.inputs.retry_after_s
    rows = []
    for h in range(hours):
        a, b = start_k + h * per_h, min(len(r.t_s), start_k + (h + 1) * per_h)
        if a >= b:
            break
        stamp_eta = _stamp_wait(r, a)
        for g in GATES:
            adm = float(r.admitted[g][a:b].sum()) if r.admitted else float("nan")
            eta = stamp_eta if g == "stamping" else _gate_wait(r, g, a) + stamp_eta
            orbit = r.orbits[g][a:b] if r.orbits else r.orbit[a:b]
            rows.append(
                {
                    "hour_s": float(r.t_s[a]),
                    "gate": g,
                    "admit": adm,
                    "eta_s": eta,
                    "returns": float(orbit.mean()) * ret * 3600.0 * (b - a) / per_h,
                }
            )
    return rows


def stage_backlog(r: FluidResult, gates: tuple[str, ...], k: int) -> dict[str, float]:
    """The backlog of a stage's population at step k: rooms and orbits of `gates`, and for
    the stamping gate the issuer queue and the payments queue (paid, not yet stamped)."""
    k = max(0, min(k, len(r.t_s) - 1))
    room = sum(float(r.rooms[g][k]) for g in gates)
    orbit = sum(float(r.orbits[g][k]) for g in gates) if r.orbits else 0.0
    issuer = float(r.issuer_queue[k]) if "stamping" in gates else 0.0
    payments = float(r.payments_queue[k]) if "stamping" in gates else 0.0
    return {
        "room": room,
        "orbit": orbit,
        "issuer_queue": issuer,
        "payments_queue": payments,
        "visible": room + issuer,
        "invisible": orbit + payments,
        "total": room + orbit + issuer + payments,
    }


def cutoff_s(r: FluidResult, close_s: float) -> float | None:
    """Calendar second of the latest arrival still served by the close (FIFO), None if nobody."""
    k = r._index(close_s)
    if k <= 0:
        return None
    done = float(r.served_cum[k - 1] + r.lost_cum[k - 1])
    arr = np.cumsum(r.arrivals_per_s * r.inputs.step_s)
    j = int(np.searchsorted(arr, done + 1e-6, side="right"))
    if j <= 0:
        return None
    return float(r.t_s[min(j, len(r.t_s) - 1)])


def triggers(
    r: FluidResult, start_k: int, every_h: int = 6, count: int = 8
) -> list[dict[str, Any]]:
    """Checkpoints after the decision: what the plan expects, and when to say it is off track.

    Per checkpoint: `submissions_per_hour` (applicants fully stamped in the hour before),
    `issuer_queue_stamps`, `error_ratio` (turned away ÷ offered at the gates, the hour before);
    alarms: submissions below 80% of plan, the issuer queue above plan + max(25%, 1,000 stamps),
    the error ratio above plan + 5 points.
    """
    dt = r.inputs.step_s
    per_h = int(round(3600.0 / dt))
    m = r.inputs.stamps_per_applicant
    out = []
    for i in range(1, count + 1):
        k = start_k + i * every_h * per_h
        if k >= len(r.t_s):
            break
        a = k - per_h
        subs = float(r.served_per_s[a:k].sum() * dt)
        away = float(r.turned_away_per_s[a:k].sum() * dt)
        offered = away + sum(float(r.admitted[g][a:k].sum()) for g in GATES) if r.admitted else away
        err = away / offered if offered > 0 else 0.0
        q = float(r.issuer_queue[k]) * m
        out.append(
            {
                "at_s": float(r.t_s[k]),
                "submissions_per_hour": subs,
                "issuer_queue_stamps": q,
                "error_ratio": err,
                "alarm_if": {
                    "submissions_per_hour_below": 0.8 * subs,
                    "issuer_queue_stamps_above": q + max(0.25 * q, 1000.0),
                    "error_ratio_above": err + 0.05,
                },
            }
        )
    return out
