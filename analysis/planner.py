"""The staged-reopening planner: after an outage, which gates open in which order, at
what admission rate, when and why; the capacity and extension needed; a what-if table.

Every figure comes from the fluid model (analysis/backlog.py) run over the whole
calendar with the plan's stages in it. The stages, in order:

0. **outage** (at the outage start, not part of `stages[]`): registration and ordering
   close (do not sell quota the issuer cannot stamp); stamping requests keep queueing
   at the issuer and applicants give up after their patience (retrying later).
1. **drain accepted stamping** (at reopening): stamping gate closed, the issuer works
   off the requests it already accepted, throttled to `max_utilisation` of capacity.
2. **credit paid quota** (at reopening): payment confirmations already made are
   credited, payments throttled to `max_utilisation`.
3. **stamping for quota holders** (when stages 1 and 2 have drained, at the latest
   `max_stage_hours` after stage 2): the stamping gate admits at rate u x issuer
   capacity (u = max_utilisation, in applicants/s) through a waiting room holding at
   most rate x max_wait applicants; the rest are told to come back later.
4. **reopen ordering** (when the stamping waiting room is clear, i.e. quota holders'
   demand has fallen below the admission rate, at the latest `max_stage_hours` after
   stage 3): ordering gate at the same rate, for the same reason: every order becomes a
   stamping request, a faster sale only moves the queue.
5. **reopen new registrations** (when the ordering room is clear, at the latest
   `max_stage_hours` after stage 4): registration gate at the same rate.

The issuer never serves more than u x its capacity from reopening on (the throttle),
and nobody admitted through a gate waits more than max_wait in its waiting room.

"Everyone served" means: a served share within `target_gap` (0.5 points) of what an
unlimited issuer would serve under the same outage and plan (the outage itself loses
applicants who give up for good; no capacity brings them back). Required capacity is
the full issuer capacity (stamps/s) that reaches it by the close in force; the minimum
extension is the shortest time after the close that reaches it with today's capacity
(no one new arrives during an extension; those waiting or retrying are served).

    >>> from scenarios.profile import load_profile
    >>> plan = make_plan(load_profile("casn2024"), PlanConfig(stamps_per_second=12.0))
    >>> [s.name for s in plan.stages][:2]
    ['drain accepted stamping', 'credit paid quota']
    >>> plan.required_capacity > 0.0
    True
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from analysis.backlog import (
    FluidInputs,
    FluidResult,
    Gate,
    Stage,
    fluid_totals,
    inputs_from_profile,
    run_fluid,
)
from scenarios.curve import ArrivalCurve
from scenarios.profile import Outage, Profile
from surgecast.errors import FieldError

__all__ = ["PlanConfig", "Plan", "StagePlan", "make_plan", "parse_duration", "parse_local_time",
           "parse_outage", "TIMELINE_COLUMNS"]

TIMELINE_COLUMNS = ("calendar_at", "demand_per_s", "retry_per_s", "capacity_per_s", "served_per_s", "queue",
                    "wait_s", "abandoned_per_s", "stage", "capacity_stamps_per_s", "served_stamps_per_s",
                    "queue_stamps", "issuer_queue", "payments_queue", "orbit", "turned_away_per_s",
                    "utilisation", "served_cum", "lost_cum")


# ---------------------------------------------------------------- parsing helpers
def parse_duration(text: str, flag: str = "--max-wait") -> float:
    """'90s', '30m', '2h', '1.5h', '1d' or plain seconds -> seconds.

    >>> parse_duration("30m"), parse_duration("2h"), parse_duration("90s"), parse_duration("45")
    (1800.0, 7200.0, 90.0, 45.0)
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*", str(text))
    if not m:
        raise FieldError(flag, text, "give a duration like 90s, 30m, 2h or 1d")
    value = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if value <= 0:
        raise FieldError(flag, text, "give a duration > 0, like 30m")
    return value


def parse_local_time(text: str, tz: ZoneInfo, flag: str) -> datetime:
    """An ISO local time (in the profile's zone unless it carries an offset) -> aware datetime.

    >>> from zoneinfo import ZoneInfo
    >>> parse_local_time("2024-09-05T20:00", ZoneInfo("Asia/Jakarta"), "--reopen-at").isoformat()
    '2024-09-05T20:00:00+07:00'
    """
    try:
        dt = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise FieldError(flag, text, f"write an ISO local time like 2024-09-05T20:00 ({tz.key})") from None
    return dt.replace(tzinfo=tz) if dt.tzinfo is None else dt.astimezone(tz)


def parse_outage(text: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """'START/END' (ISO local times) -> (start, end).

    >>> from zoneinfo import ZoneInfo
    >>> a, b = parse_outage("2024-09-03T08:00/2024-09-05T20:00", ZoneInfo("Asia/Jakarta"))
    >>> (b - a).total_seconds() / 3600
    60.0
    """
    parts = str(text).split("/")
    if len(parts) != 2:
        raise FieldError("--outage", text, "write START/END, e.g. 2024-09-03T08:00/2024-09-05T20:00")
    a = parse_local_time(parts[0], tz, "--outage")
    b = parse_local_time(parts[1], tz, "--outage")
    if b <= a:
        raise FieldError("--outage", text, "the end must be after the start")
    return a, b


# ---------------------------------------------------------------- config and result
@dataclass(frozen=True, kw_only=True)
class PlanConfig:
    """What the planner is asked. Times are aware datetimes (the profile's zone).

    `stamps_per_second` None: the profile's capacity (and its capacity steps);
    `outage` None: the profile's first issuer outage (if any); `reopen_at` None: the outage end.

    >>> PlanConfig(stamps_per_second=12.0).max_utilisation
    0.8
    """

    stamps_per_second: float | None = None
    outage: tuple[datetime, datetime] | None = None
    reopen_at: datetime | None = None
    max_utilisation: float = 0.8
    max_wait_s: float = 1800.0
    max_stage_hours: float = 12.0
    target_gap: float = 0.005
    max_extension_hours: float = 14 * 24.0
    what_if_factors: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0)
    what_if_extensions_hours: tuple[float, ...] = (0.0, 24.0, 48.0, 72.0, 96.0)

    def __post_init__(self) -> None:
        if self.stamps_per_second is not None and not (math.isfinite(self.stamps_per_second) and self.stamps_per_second > 0):
            raise FieldError("--stamps-per-second", self.stamps_per_second, "give a capacity > 0 stamps per second")
        if not (0 < self.max_utilisation <= 1):
            raise FieldError("--max-utilisation", self.max_utilisation, "give a share in (0, 1], e.g. 0.8")
        if not (math.isfinite(self.max_wait_s) and self.max_wait_s > 0):
            raise FieldError("--max-wait", self.max_wait_s, "give a duration > 0, like 30m")
        if self.outage is not None and self.outage[1] <= self.outage[0]:
            raise FieldError("--outage", self.outage, "the end must be after the start")
        if self.reopen_at is not None and self.outage is not None and self.reopen_at < self.outage[1]:
            raise FieldError("--reopen-at", self.reopen_at.isoformat(),
                             f"reopen at or after the outage end ({self.outage[1].isoformat()})")


@dataclass(frozen=True, kw_only=True)
class StagePlan:
    """One reopening stage as planned and as the fluid model predicts it."""

    name: str
    start: datetime
    end: datetime
    gates: dict[str, str]
    rate_per_s: float | None
    burst: float | None
    room: float | None
    peak_queue: float
    max_wait_s: float | None
    utilisation: float
    why: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (times ISO in the profile's zone)."""
        return {"name": self.name, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "gates": dict(self.gates), "rate_per_s": _r(self.rate_per_s), "burst": _r(self.burst),
                "room": _r(self.room), "peak_queue": _r(self.peak_queue), "max_wait_s": _r(self.max_wait_s),
                "utilisation": _r(self.utilisation, 4), "why": self.why}


@dataclass(frozen=True, kw_only=True, repr=False)
class Plan:
    """The planner's answer; `as_json()`, `timeline_rows()`, `gate_schedule()`, `render()`."""

    profile: Profile
    config: PlanConfig
    capacity_stamps_per_second: float
    outage: tuple[datetime, datetime] | None
    reopen_at: datetime | None
    close: datetime
    stages: list[StagePlan]
    result: FluidResult
    required_capacity: float | None
    required_extension_hours: float | None
    extension_reachable: bool
    served_share: float
    attainable_share: float
    target_share: float
    lost_applicants: float
    unserved_applicants: float
    what_if: list[dict[str, float]]
    timeline_end_s: float
    outage_gates: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"Plan(profile={self.profile.name!r}, capacity={self.capacity_stamps_per_second:g} stamps/s, "
                f"stages={len(self.stages)}, served_share={self.served_share:.3f}, "
                f"required_capacity={self.required_capacity}, required_extension_h={self.required_extension_hours})")

    @property
    def served_by_deadline(self) -> bool:
        """True when the served share reaches the target by the close."""
        return self.served_share >= self.target_share - 1e-12

    @property
    def margin_hours(self) -> float | None:
        """Hours to spare before the close (>= 0) or the extension needed (< 0); None if unreachable."""
        if self.served_by_deadline:
            cum = self.result.served_cum / self.result.inputs.total_applicants
            k = int(np.searchsorted(cum, self.target_share - 1e-12))
            t_hit = self.result.t_s[min(k, len(cum) - 1)] + self.result.inputs.step_s
            return (self.profile.calendar.span_s - t_hit) / 3600.0
        if self.required_extension_hours is None:
            return None
        return -self.required_extension_hours

    def as_json(self) -> dict[str, Any]:
        """plan.json (docs/run-directory.md), times in the profile's zone."""
        cal = self.profile.calendar
        return {
            "profile": self.profile.name,
            "capacity_stamps_per_second": self.capacity_stamps_per_second,
            "capacity_applicants_per_second": _r(self.capacity_stamps_per_second / self.profile.mean_stamps_per_applicant, 4),
            "stamps_per_applicant": self.profile.mean_stamps_per_applicant,
            "outage": None if self.outage is None else {"start": self.outage[0].isoformat(), "end": self.outage[1].isoformat()},
            "reopen_at": None if self.reopen_at is None else self.reopen_at.isoformat(),
            "close": self.close.isoformat(),
            "max_utilisation": self.config.max_utilisation,
            "max_wait_s": self.config.max_wait_s,
            "during_outage": {"gates": dict(self.outage_gates),
                              "why": "the issuer cannot stamp: stop selling quota and opening accounts; stamping requests queue and time out"}
            if self.outage else None,
            "stages": [s.as_dict() for s in self.stages],
            "required_capacity": _r(self.required_capacity, 3),
            "required_extension": _r(self.required_extension_hours, 1),
            "extension_reachable": self.extension_reachable,
            "served_share": _r(self.served_share, 5),
            "attainable_share": _r(self.attainable_share, 5),
            "target_share": _r(self.target_share, 5),
            "what_if": self.what_if,
            "verdict": {"served_by_deadline": self.served_by_deadline, "margin_hours": _r(self.margin_hours, 1),
                        "lost_applicants": round(self.lost_applicants),
                        "unserved_applicants": round(self.unserved_applicants)},
            "applicants_total": round(self.result.inputs.total_applicants),
            "model": {"step_s": self.result.inputs.step_s, "patience_s": self.result.inputs.patience_s,
                      "retry_probability": self.result.inputs.retry_probability,
                      "retry_after_s": self.result.inputs.retry_after_s,
                      "units": "queues in applicants; capacity_per_s in applicants/s (stamps/s / stamps_per_applicant)"},
            "timezone": cal.tz.key,
        }

    def timeline_rows(self) -> list[list[Any]]:
        """timeline.csv rows (columns TIMELINE_COLUMNS), 1-minute steps to the close
        (or to the close plus the required extension, when one is needed)."""
        r = self.result
        cal = self.profile.calendar
        m = self.profile.mean_stamps_per_applicant
        names = ["normal"] + (["outage"] if self.outage else []) + [s.name for s in self.stages]
        n_end = min(len(r.t_s), int(math.ceil(self.timeline_end_s / r.inputs.step_s)))
        util = r.utilisation
        rows = []
        for k in range(n_end):
            rows.append([
                cal.at(float(r.t_s[k])).isoformat(), _f(r.arrivals_per_s[k]), _f(r.retry_per_s[k]),
                _f(r.issuer_capacity_per_s[k]), _f(r.served_per_s[k]), _f(r.queue[k]), _f(r.wait_s[k]),
                _f(r.abandoned_per_s[k]), names[int(r.stage[k]) + 1] if r.stage[k] + 1 < len(names) else "",
                _f(r.issuer_capacity_per_s[k] * m), _f(r.served_per_s[k] * m), _f(r.queue[k] * m),
                _f(r.issuer_queue[k]), _f(r.payments_queue[k]), _f(r.orbit[k]), _f(r.turned_away_per_s[k]),
                _f(util[k]), _f(r.served_cum[k]), _f(r.lost_cum[k]),
            ])
        return rows

    def gate_schedule(self) -> list[dict[str, Any]]:
        """gate_schedule.json: every gate change in calendar time, rates in applicants/s."""
        cal = self.profile.calendar
        out = []
        for rec in self.result.stages:
            for g, s in rec.gates.items():
                out.append({"at": cal.at(rec.start_s).isoformat(), "gate": g, "mode": s["mode"],
                            "rate_per_s": _r(s["rate_per_s"]), "burst": _r(s["burst"]),
                            "room": _r(s["room"]), "label": rec.name})
        return out

    def render(self) -> str:
        """The readable plan `surgecast plan` prints."""
        p, c = self.profile, self.config
        lines = [f"Plan for {p.title} ({p.name}), times {p.calendar.tz.key}",
                 f"  capacity {self.capacity_stamps_per_second:g} stamps/s "
                 f"= {self.capacity_stamps_per_second / p.mean_stamps_per_applicant:.2f} applicants/s "
                 f"({p.mean_stamps_per_applicant:g} stamps each); utilisation target {c.max_utilisation:.0%}, "
                 f"max wait {_dur(c.max_wait_s)}",
                 f"  {self.result.inputs.total_applicants:,.0f} applicants; close in force {self.close:%Y-%m-%d %H:%M}"]
        if self.outage:
            lines.append(f"  outage {self.outage[0]:%Y-%m-%d %H:%M} .. {self.outage[1]:%Y-%m-%d %H:%M}; "
                         f"reopening from {self.reopen_at:%Y-%m-%d %H:%M}")
            lines.append("")
            hdr = f"  {'#':<2} {'stage':<28} {'start':<17} {'gates':<34} {'rate/s':>7} {'burst':>6} {'peak queue':>11} {'max wait':>9} {'util':>5}"
            lines.append(hdr)
            for i, s in enumerate(self.stages, 1):
                gates = " ".join(f"{g[:3]}={m}" for g, m in s.gates.items())
                lines.append(f"  {i:<2} {s.name:<28} {s.start:%Y-%m-%d %H:%M} {gates:<34} "
                             f"{_num(s.rate_per_s):>7} {_num(s.burst, 0):>6} {s.peak_queue:>11,.0f} "
                             f"{_dur(s.max_wait_s):>9} {s.utilisation:>5.0%}")
            lines.append("")
            for i, s in enumerate(self.stages, 1):
                lines.append(f"  {i}. {s.name}: {s.why}")
        else:
            lines.append("  no outage: nothing to reopen; the figures below are for the profile as it is")
        lines.append("")
        lines.append(f"  served by the close: {self.served_share:.1%} of applicants (target {self.target_share:.1%}: "
                     f"within {c.target_gap:.1%} of the {self.attainable_share:.1%} an unlimited issuer would serve)")
        lines.append(f"  lost for good by the close: {self.lost_applicants:,.0f}; not yet served: {self.unserved_applicants:,.0f}")
        rc = "not reachable below 1000x today's capacity" if self.required_capacity is None else f"{self.required_capacity:.1f} stamps/s"
        lines.append(f"  required capacity to serve everyone by the close: {rc}")
        if self.required_extension_hours is None:
            ext = ("none needed" if self.extension_reachable
                   else f"more than {c.max_extension_hours / 24:g} days (not reachable with today's capacity)")
        else:
            ext = f"{self.required_extension_hours:.0f} h ({self.required_extension_hours / 24:.1f} days) after the close"
        lines.append(f"  minimum extension with today's capacity: {ext}")
        lines.append("")
        exts = sorted({w["extension_hours"] for w in self.what_if})
        caps = sorted({w["capacity"] for w in self.what_if})
        lines.append("  what if (served share):  capacity stamps/s x extension hours")
        lines.append("  " + f"{'':>10}" + "".join(f"{e:>8.0f}h" for e in exts))
        for cap in caps:
            row = {w["extension_hours"]: w["served_share"] for w in self.what_if if w["capacity"] == cap}
            lines.append("  " + f"{cap:>10.1f}" + "".join(f"{row[e]:>9.1%}" for e in exts))
        lines.append("")
        margin = self.margin_hours
        if self.served_by_deadline:
            verdict = f"VERDICT: everyone served by the close, {margin:.0f} h to spare"
        elif margin is not None:
            verdict = f"VERDICT: NOT served by the close; extend by {-margin:.0f} h or raise capacity to {_num(self.required_capacity)} stamps/s"
        else:
            verdict = f"VERDICT: NOT served by the close; raise capacity to {_num(self.required_capacity)} stamps/s"
        lines.append("  " + verdict)
        return "\n".join(lines)


def _r(v: float | None, nd: int = 2) -> float | None:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return round(float(v), nd)


def _f(v: float) -> str:
    v = float(v)
    if not math.isfinite(v):
        return "inf"
    return f"{v:.6g}"


def _num(v: float | None, nd: int = 2) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def _dur(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "unbounded"
    if s < 90:
        return f"{s:.0f}s"
    if s < 5400:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.1f}h"


# ---------------------------------------------------------------- planning
_STAGE_WHY = {
    "drain accepted stamping": "the issuer is back: finish the stamping requests it already accepted before "
                               "admitting new ones, throttled to the utilisation target",
    "credit paid quota": "payments made during the outage are confirmed and their quota credited, so no one who paid is lost",
    "stamping for quota holders": "quota holders (paid, credited, waiting) come first; admitted at the target share of "
                                  "issuer capacity through a waiting room capped at rate x max wait",
    "reopen ordering": "quota holders' demand is now below the admission rate; sell quota no faster than "
                       "the issuer can stamp it",
    "reopen new registrations": "ordering has spare admission; new accounts last, since they need every "
                                "step of the journey",
}


def _stages(cfg: PlanConfig, outage_s: tuple[float, float] | None, reopen_s: float | None) -> list[Stage]:
    if outage_s is None or reopen_s is None:
        return []
    u = cfg.max_utilisation
    hold = cfg.max_stage_hours * 3600.0
    closed = Gate(mode="closed")
    rate = Gate(mode="rate", rate_share=u, room_s=cfg.max_wait_s)
    return [
        Stage(name="outage", at_s=outage_s[0], gates={"registration": closed, "ordering": closed}),
        Stage(name="drain accepted stamping", at_s=reopen_s, gates={"stamping": closed},
              issuer_share=u, why=_STAGE_WHY["drain accepted stamping"]),
        Stage(name="credit paid quota", at_s=reopen_s, gates={"ordering": closed, "registration": closed},
              payments_share=u, why=_STAGE_WHY["credit paid quota"]),
        Stage(name="stamping for quota holders", at_s=reopen_s, when="drained", max_delay_s=hold,
              gates={"stamping": rate}, why=_STAGE_WHY["stamping for quota holders"]),
        Stage(name="reopen ordering", at_s=reopen_s, when="clear:stamping", max_delay_s=hold,
              gates={"ordering": rate}, why=_STAGE_WHY["reopen ordering"]),
        Stage(name="reopen new registrations", at_s=reopen_s, when="clear:ordering", max_delay_s=hold,
              gates={"registration": rate}, why=_STAGE_WHY["reopen new registrations"]),
    ]


def _outages(profile: Profile, cfg: PlanConfig) -> tuple[tuple[Outage, ...], tuple[datetime, datetime] | None]:
    if cfg.outage is None:
        issuer = [o for o in profile.outages if o.resource == "issuer"]
        return profile.outages, ((issuer[0].start, issuer[0].end) if issuer else None)
    kept = tuple(o for o in profile.outages if o.resource != "issuer")
    new = Outage(start=cfg.outage[0], end=cfg.outage[1], resource="issuer", capacity_factor=0.0, label="--outage")
    return kept + (new,), cfg.outage


def _stage_queue(name: str, r: FluidResult, sl: slice, payments_cap: np.ndarray, u: float) -> tuple[float, float | None]:
    """Peak queue (applicants) and longest wait (s) of the queue a stage opens."""
    if name == "drain accepted stamping":
        q = r.issuer_queue[sl]
        cap = r.issuer_capacity_per_s[sl] * u
    elif name == "credit paid quota":
        q = r.payments_queue[sl]
        cap = payments_cap[sl] * u
    else:
        q = {"stamping for quota holders": r.queue, "reopen ordering": r.rooms["ordering"],
             "reopen new registrations": r.rooms["registration"]}[name][sl]
        if name == "stamping for quota holders":
            w = r.wait_s[sl]
            return float(q.max()) if len(q) else 0.0, (float(w.max()) if len(w) else 0.0)
        cap = None
    if len(q) == 0:
        return 0.0, 0.0
    if cap is None:
        return float(q.max()), None
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(q > 0, q / cap, 0.0)
    return float(q.max()), float(w.max())


def make_plan(profile: Profile, cfg: PlanConfig) -> Plan:
    """Plan the reopening and answer the capacity questions (see module doc).

    >>> from scenarios.profile import load_profile
    >>> p = make_plan(load_profile("steady"), PlanConfig())
    >>> p.stages, p.served_by_deadline
    ([], True)
    """
    cal = profile.calendar
    outages, outage = _outages(profile, cfg)
    reopen = None
    if outage is not None:
        if outage[0] >= cal.close or outage[1] <= cal.window_start:
            raise FieldError("--outage", f"{outage[0].isoformat()}/{outage[1].isoformat()}",
                             f"the outage must fall inside the window {cal.window_start:%Y-%m-%d}..{cal.close:%Y-%m-%d}")
        reopen = cfg.reopen_at or outage[1]
        if reopen < outage[1]:
            raise FieldError("--reopen-at", reopen.isoformat(), f"reopen at or after the outage end ({outage[1].isoformat()})")
        if reopen >= cal.close:
            raise FieldError("--reopen-at", reopen.isoformat(), f"reopen before the close ({cal.close.isoformat()})")
    span = cal.span_s
    outage_s = None if outage is None else (cal.seconds(outage[0]), cal.seconds(outage[1]))
    reopen_s = None if reopen is None else cal.seconds(reopen)
    stages = _stages(cfg, outage_s, reopen_s)
    base_cap = cfg.stamps_per_second or profile.capacity.stamps_per_second
    cases = _Cases(profile, cfg, outages, stages)

    result = cases.run(1.0, 0.0)
    base_inputs = result.inputs
    total = base_inputs.total_applicants
    served_share = result.served_share_by(span)
    # What an unlimited issuer (and payments) would achieve under the same outage and plan.
    attainable = cases.run(1000.0, 0.0, payments_factor=1000.0).served_share_by(span)
    target = max(0.0, attainable - cfg.target_gap)

    # Required capacity: bisection on the factor applied to today's capacity schedule.
    def ok_cap(factor: float) -> bool:
        return cases.share(factor, 0.0) >= target - 1e-12

    required: float | None = None
    lo, hi = 0.0, 1.0
    if not ok_cap(1.0):
        lo, hi = 1.0, 2.0
        while hi <= 1000 and not ok_cap(hi):
            lo, hi = hi, hi * 2
    if hi <= 1000:
        while (hi - lo) * base_cap > max(0.05, 0.005 * hi * base_cap):
            mid = (lo + hi) / 2
            if ok_cap(mid):
                hi = mid
            else:
                lo = mid
        required = hi * base_cap

    # What-if table: capacity x extension (each extension moves the close and the rush with it).
    what_if = []
    for f in cfg.what_if_factors:
        for e in cfg.what_if_extensions_hours:
            what_if.append({"capacity": round(base_cap * f, 3), "extension_hours": e,
                            "served_share": round(cases.share(f, e), 5)})

    # Minimum extension with today's capacity: whole hours, bisection (share grows with time).
    ext_h: float | None = None
    reachable = True
    if served_share < target - 1e-12:
        if cases.share(1.0, cfg.max_extension_hours) < target - 1e-12:
            reachable = False
        else:
            known = sorted((w["extension_hours"], w["served_share"]) for w in what_if if w["capacity"] == round(base_cap, 3))
            lo_h = max([e for e, v in known if v < target - 1e-12], default=0.0)
            hi_h = min([e for e, v in known if v >= target - 1e-12], default=cfg.max_extension_hours)
            while hi_h - lo_h > 1.0:
                mid = math.floor((lo_h + hi_h) / 2)
                if cases.share(1.0, mid) >= target - 1e-12:
                    hi_h = mid
                else:
                    lo_h = mid
            ext_h = float(math.ceil(hi_h))

    # Stages as planned and predicted.
    plans: list[StagePlan] = []
    recs = [s for s in result.stages if s.name != "outage"]
    pay_cap = base_inputs.payments_per_s
    outage_gates: dict[str, str] = {}
    for s in result.stages:
        if s.name == "outage":
            outage_gates = {g: str(v["mode"]) for g, v in s.gates.items()}
            outage_gates.setdefault("stamping", "open")
    span_idx = int(math.ceil(span / base_inputs.step_s))
    for i, rec in enumerate(recs):
        end_idx = recs[i + 1].index if i + 1 < len(recs) and recs[i + 1].index > rec.index else None
        if end_idx is None:
            later = [x.index for x in recs[i + 1:] if x.index > rec.index]
            end_idx = later[0] if later else span_idx
        end_idx = max(end_idx, rec.index + 1)
        sl = slice(rec.index, end_idx)
        peak_q, max_w = _stage_queue(rec.name, result, sl, pay_cap, cfg.max_utilisation)
        gate_rate = next((v for v in rec.gates.values() if v["mode"] == "rate"), None)
        if max_w is None and gate_rate is not None:
            g_name = next(g for g, v in rec.gates.items() if v["mode"] == "rate")
            room = result.rooms[g_name][sl]
            max_w = float((room / gate_rate["rate_per_s"]).max()) if len(room) else 0.0
        util = result.utilisation[sl]
        gates_state = _gates_at(result, rec)
        plans.append(StagePlan(
            name=rec.name, start=cal.at(rec.start_s), end=cal.at(base_inputs.step_s * end_idx),
            gates=gates_state, rate_per_s=None if gate_rate is None else float(gate_rate["rate_per_s"]),
            burst=None if gate_rate is None else float(gate_rate["burst"]),
            room=None if gate_rate is None or gate_rate["room"] is None else float(gate_rate["room"]),
            peak_queue=peak_q, max_wait_s=max_w, utilisation=float(util.max()) if len(util) else 0.0,
            why=rec.why))

    timeline_end = span
    return Plan(profile=profile, config=cfg, capacity_stamps_per_second=float(base_cap), outage=outage,
                reopen_at=reopen, close=cal.close, stages=plans, result=result,
                required_capacity=required, required_extension_hours=ext_h, extension_reachable=reachable,
                served_share=served_share, attainable_share=attainable, target_share=target,
                lost_applicants=result.lost_by(span), unserved_applicants=total - result.served_by(span),
                what_if=what_if, timeline_end_s=timeline_end, outage_gates=outage_gates)


class _Cases:
    """Fluid runs of the plan for a capacity factor and an extension (cached curves and shares).

    An extension moves the close: the profile's calendar gets close + e, so the arrival
    curve (base knots, daily cycle, the rush towards the close) is spread over the longer
    window, the way the rush followed BKN's extension in 2024.
    """

    def __init__(self, profile: Profile, cfg: PlanConfig, outages: tuple[Outage, ...], stages: list[Stage]) -> None:
        self.profile, self.cfg, self.outages, self.stages = profile, cfg, outages, stages
        self._inputs: dict[float, FluidInputs] = {}
        self._share: dict[tuple[float, float], float] = {}

    def inputs(self, ext_h: float) -> tuple[FluidInputs, float]:
        p = self.profile
        if ext_h > 0:
            cal = replace(p.calendar, extension=p.calendar.close + timedelta(hours=ext_h))
            p = replace(p, calendar=cal)
        if ext_h not in self._inputs:
            self._inputs[ext_h] = inputs_from_profile(p, stamps_per_second=self.cfg.stamps_per_second,
                                                      outages=self.outages, curve=ArrivalCurve(p))
        return self._inputs[ext_h], p.calendar.span_s

    def run(self, factor: float, ext_h: float, payments_factor: float = 1.0) -> FluidResult:
        inp, _ = self.inputs(ext_h)
        if factor != 1.0 or payments_factor != 1.0:
            inp = replace(inp, issuer_per_s=inp.issuer_per_s * factor, payments_per_s=inp.payments_per_s * payments_factor)
        return run_fluid(inp, self.stages)

    def share(self, factor: float, ext_h: float) -> float:
        key = (round(factor, 9), float(ext_h))
        if key not in self._share:
            inp, span = self.inputs(ext_h)
            if factor != 1.0:
                inp = replace(inp, issuer_per_s=inp.issuer_per_s * factor)
            served, _ = fluid_totals(inp, self.stages)
            self._share[key] = served / inp.total_applicants
        return self._share[key]


def _gates_at(result: FluidResult, rec: Any) -> dict[str, str]:
    """The mode of every gate once `rec` (and the stages before it) took effect."""
    modes = {"registration": "open", "ordering": "open", "stamping": "open"}
    for s in result.stages:
        for g, v in s.gates.items():
            modes[g] = str(v["mode"])
        if s is rec:
            break
    return modes


def timedelta_hours(h: float) -> timedelta:
    """timedelta of `h` hours (a small helper for callers).

    >>> timedelta_hours(1.5)
    datetime.timedelta(seconds=5400)
    """
    return timedelta(hours=h)
