"""Play a profile's outages and gate changes on the target's admin API at their compressed times.

`admin_actions(settings)` turns calendar events into `AdminAction`s at test
seconds; events before the rehearsed window are folded into the state at second
0, events after the run are left out::

    >>> from scenarios.options import RunSettings
    >>> from scenarios.profile import load_profile
    >>> p = load_profile("casn2024")
    >>> s = RunSettings(host="http://127.0.0.1", embedded=True, profile=p, compress=15120.0,
    ...                 scale=1e-4, duration_s=120.0, calendar_origin=p.calendar.window_start)
    >>> acts = admin_actions(s)
    >>> [(round(a.at_s, 1), a.kind, a.body) for a in acts]  # doctest: +NORMALIZE_WHITESPACE
    [(81.9, 'fault', {'issuer_slow_factor': 3.562522}),
     (96.2, 'fault', {'issuer_slow_factor': 1.0})]

Outages: capacity_factor 0 pauses the issuer, f > 0 slows it by 1/f; the end
resumes it. Gate rates are applicants per calendar second times the demand
multiplier (compress x scale); bursts are counts of applicants, so they scale by
`scale` alone (a burst is rate x time, and time compresses by `compress`); both
times the mean stamps per applicant for the stamping gate (it admits uploads, not
applicants). The player runs as a greenlet inside Locust.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from floor.errors import SurgecastError
from scenarios.options import RunSettings
from scenarios.target import AdminClient


@dataclass(frozen=True, kw_only=True)
class AdminAction:
    """One admin call at test second `at_s`: kind 'gate' (target = gate name) or 'fault' (target =
    resource)."""

    at_s: float
    calendar_at: str
    kind: str
    target: str
    body: dict[str, Any]
    label: str = ""


def gate_requests_per_applicant(gate: str, profile: Any) -> float:
    """Gated requests one applicant makes at `gate`: one account, one purchase, a stamp per
    document.

    >>> from scenarios.profile import load_profile
    >>> (gate_requests_per_applicant("stamping", load_profile("casn2024")),
    ...  gate_requests_per_applicant("ordering", None))
    (2.2, 1.0)
    """
    if gate == "stamping" and profile is not None:
        return float(profile.mean_stamps_per_applicant)
    return 1.0


def admin_actions(s: RunSettings) -> list[AdminAction]:
    """The admin calls of a rehearsal, in order (see the module docstring)."""
    if s.calendar_origin is None:
        return []
    raw: list[tuple[Any, int, str, str, dict[str, Any], str]] = []
    p = s.profile
    if p is not None:
        for o in p.outages:
            if o.resource != "issuer":
                continue  # the admin API has no payments outage switch; analysis still models it
            if o.capacity_factor <= 0:
                on, off = {"issuer": "pause"}, {"issuer": "resume"}
            else:
                on, off = {"issuer_slow_factor": round(1 / o.capacity_factor,
                                                       6)}, {"issuer_slow_factor": 1.0}
            raw.append((o.start, 0, "fault", "issuer", on, o.label or "outage starts"))
            raw.append((o.end, 0, "fault", "issuer", off,
                        (o.label + " ends") if o.label else "outage ends"))
    for g in s.gate_events:
        body: dict[str, Any] = {"mode": g.mode}
        if g.mode == "rate":
            # Planned rates are applicants per calendar second; a stamping gate admits uploads,
            # so it needs stamps-per-applicant tokens for each applicant it lets through.
            per = gate_requests_per_applicant(g.gate, p)
            rate = float(g.rate_per_s or 0) * s.demand_multiplier * per
            body.update(rate_per_s=round(rate, 6),
                        burst=max(1, math.ceil((g.burst or 1) * s.scale * per)))
        raw.append((g.at, 1, "gate", g.gate, body, g.label))
    raw.sort(key=lambda r: (r[0], r[1]))
    out: list[AdminAction] = []
    folded: dict[tuple[str, str, str], AdminAction] = {}
    for when, _, kind, target, body, label in raw:
        at_s = s.test_seconds(when)
        if at_s >= s.duration_s:
            continue
        act = AdminAction(at_s=max(0.0, at_s), calendar_at=when.isoformat(), kind=kind,
                          target=target,
                          body=body, label=label)
        if at_s <= 0:
            key = (kind, target, "pause" if "issuer" in body else ",".join(sorted(body)))
            folded[key] = act  # the latest state before the window wins
        else:
            out.append(act)
    return sorted(folded.values(), key=lambda a: a.calendar_at) + last_per_instant(out)


def last_per_instant(actions: list[AdminAction]) -> list[AdminAction]:
    """Of the gate changes one instant makes to one gate, only the last (in order): a plan whose
    stage
    closes a gate and whose next stage opens it at the same moment never has the target hold the
    closed state, and every extra admin call delays the others on a loaded machine.

    >>> a = [AdminAction(at_s=9.0, calendar_at="t", kind="gate", target="ordering",
    ...                  body={"mode": m}, label=m)
    ...      for m in ("closed", "open")]
    >>> [x.body["mode"] for x in last_per_instant(a)]
    ['open']
    """
    last = {(a.calendar_at, a.kind, a.target): i for i, a in enumerate(actions) if a.kind == "gate"}
    return [a for i,
            a in enumerate(actions) if a.kind != "gate" or last[(a.calendar_at, a.kind,
                                                                 a.target)] == i]


def apply_action(admin: AdminClient, a: AdminAction) -> None:
    """Send one action to the target."""
    if a.kind == "gate":
        admin.set_gate(a.target, a.body["mode"], a.body.get("rate_per_s"), a.body.get("burst"))
    else:
        admin.faults(**a.body)


def play(admin: AdminClient, actions: list[AdminAction], origin_unix: float,
         log: list[dict[str, Any]],
         sleep: Any = time.sleep) -> None:
    """Apply `actions` at origin + at_s (call in a greenlet); append what happened to `log`."""
    for a in actions:
        delay = origin_unix + a.at_s - time.time()
        if delay > 0:
            sleep(delay)
        row = {"at_s": round(a.at_s, 3), "calendar_at": a.calendar_at, "kind": a.kind,
               "target": a.target,
               "body": a.body, "label": a.label,
               "applied_at_s": round(time.time() - origin_unix, 3), "ok": True}
        try:
            apply_action(admin, a)
        except SurgecastError as e:
            row.update(ok=False, error=str(e))
        log.append(row)


def restore(admin: AdminClient, gates_before: dict[str, Any] | None,
            log: list[dict[str, Any]]) -> None:
    """Undo a rehearsal's changes: resume the issuer and put the gates back as they were."""
    if not log:
        return
    try:
        admin.faults(issuer="resume", issuer_slow_factor=1.0)
        for name, g in (gates_before if isinstance(gates_before, dict) else {}).items():
            if isinstance(g, dict) and isinstance(g.get("mode", "open"), str):
                admin.set_gate(name, g.get("mode", "open"), _number(g.get("rate_per_s")),
                               _number(g.get("burst")))
    except SurgecastError:
        pass


def _number(x: Any) -> Any:
    return x if isinstance(x, int | float) and not isinstance(x, bool) else None
