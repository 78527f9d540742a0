"""The reopening planner: a staged plan, the do-nothing baseline beside it, and the numbers a manager decides on.

Every figure comes from the fluid model (analysis/backlog.py) run over the whole calendar.
The past before the decision time (the reopening) is fixed: the profile's own gate changes
before it stay in force, and extensions keep every arrival before it.

The planner runs four candidate plans from the decision time, each through the model:

- ``baseline``: do nothing, every gate open at the issuer's full capacity;
- ``book``: every stage of `analysis.stages.STAGES` at the reopening (quota holders get a
  booked stamping slot, the other gates open at once);
- ``staged``: the stage table with its start conditions (a stage starts when the returns
  still to come from the stage before fit the spare admission), gates open;
- ``staged-paced``: the same, the later gates paced at `max_utilisation` of capacity
  through a waiting room of rate x `max_wait`.

It recommends the candidate that serves the most by the close in force among those that
lose no one who paid, never one that serves fewer than the baseline; for every candidate
that serves fewer than the recommendation it says what the pacing costs.

    >>> from scenarios.profile import load_profile
    >>> plan = make_plan(load_profile("casn2024"), PlanConfig(stamps_per_second=12.0, bands=False,
    ...                  what_if_days=(0,), max_extension_days=0))
    >>> plan.outcome["served"] >= plan.baseline["served"]
    True
    >>> plan.lost_paid
    0.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from analysis import bands as bands_mod
from analysis.backlog import (
    FluidInputs,
    FluidResult,
    Gate,
    Stage,
    fluid_through,
    run_fluid,
)
from analysis.extension import extended_inputs
from analysis.forecast import apply_params
from analysis.planparse import parse_outage
from analysis.stages import BASELINE, STAGES, StageSpec, validate_table
from floor.errors import FieldError
from floor.rundir.schema import PLAN_COLUMNS, TIMELINE_COLUMNS  # noqa: F401  (re-exported)
from floor.timegrammar import parse_duration, parse_local_time
from scenarios.profile import Outage, Profile

__all__ = ["PlanConfig", "Plan", "make_plan", "problems", "choose", "parse_duration", "parse_local_time", "parse_outage",
           "VARIANTS", "TIMELINE_COLUMNS", "Candidate"]

VARIANTS = ("baseline", "book", "staged", "staged-paced")
# The timeline contract shared with `surgecast forecast` (its columns first, written by its
# writer), then the planner's own columns, which the report's charts read.
PAID_TOLERANCE = 0.5  # applicants: below this the model's lost_paid is zero
DEFAULT_TARGET = 0.85   # stated default: 85% of those who want to submit served by the close (--target)
RESOLVE_STEP_S = 300.0  # stage start conditions are found on 5-minute steps, then every plan runs at 1 minute


@dataclass(frozen=True, kw_only=True)
class PlanConfig:
    """What the planner is asked. Times are aware datetimes (the profile's zone).

    `stamps_per_second` None: the profile's capacity; `outage` None: the profile's first
    issuer outage; `reopen_at` None: the outage end (the decision time); `extend_days`:
    the extension to evaluate; `target`: the share of applicants (those who want to submit)
    served by the close, 85% unless given; None: within `target_gap` of what an unlimited
    issuer would serve under the same outage (rarely reachable: the rush re-aims at any new close).

    >>> PlanConfig(stamps_per_second=12.0).max_utilisation
    1.0
    """

    stamps_per_second: float | None = None
    outage: tuple[datetime, datetime] | None = None
    reopen_at: datetime | None = None
    max_utilisation: float = 1.0
    max_wait_s: float = 1800.0
    extend_days: int = 0
    target: float | None = DEFAULT_TARGET
    target_gap: float = 0.005
    max_extension_days: int = 14
    what_if_days: tuple[int, ...] = (0, 1, 2, 3, 4)
    bands: bool = True
    band_sets: int = bands_mod.N_SETS
    table: tuple[StageSpec, ...] = STAGES
    session_minutes: float = 5.0

    def __post_init__(self) -> None:
        if self.stamps_per_second is not None and not (math.isfinite(self.stamps_per_second) and self.stamps_per_second > 0):
            raise FieldError("--stamps-per-second", self.stamps_per_second, "give a capacity > 0 stamps per second")
        if not (0 < self.max_utilisation <= 1):
            raise FieldError("--max-utilisation", self.max_utilisation, "give a share in (0, 1], e.g. 0.9")
        if not (math.isfinite(self.max_wait_s) and self.max_wait_s > 0):
            raise FieldError("--max-wait", self.max_wait_s, "give a duration > 0, like 30m")
        if self.target is not None and not (0 < self.target <= 1):
            raise FieldError("--target", self.target, "give a share of applicants in (0, 1], e.g. 0.93")
        if self.outage is not None and self.outage[1] <= self.outage[0]:
            raise FieldError("--outage", self.outage, "the end must be after the start")
        if self.reopen_at is not None and self.outage is not None and self.reopen_at < self.outage[1]:
            raise FieldError("--reopen-at", self.reopen_at.isoformat(),
                             f"reopen at or after the outage end ({self.outage[1].isoformat()})")
        validate_table(self.table)


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One candidate plan: its stages (engine form), when each started, and its outcome at the close."""

    variant: str
    specs: tuple[StageSpec, ...]
    starts: dict[str, float]
    stages: list[Stage]
    outcome: dict[str, float]
    lost_paid: float
    result: FluidResult | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, kw_only=True, repr=False)
class Plan:
    """The planner's answer; see analysis/plan_output.py for plan.json, the timeline and the summary."""

    profile: Profile
    config: PlanConfig
    capacity_stamps_per_second: float
    outage: tuple[datetime, datetime] | None
    decision_s: float | None
    close_s: float
    candidates: dict[str, Candidate]
    recommended: str
    result: FluidResult
    baseline_result: FluidResult | None
    target_share: float
    attainable_share: float
    bands: dict[str, dict[str, float]] | None
    p5_set: dict[str, float] | None
    grid: list[dict[str, float]]
    required_extension_days: int | None
    extension_reason: str | None
    required_capacity: float | None
    what_if: list[dict[str, Any]]
    trade_offs: dict[str, float | None]
    lost_paid: float
    lost_paid_before_decision: float
    notes: list[str] = field(default_factory=list)
    model: Any = field(default=None, repr=False, compare=False)
    unheld: dict[str, float] | None = None   # the recommended plan if a booked slot did not stop the persistence clock

    def __repr__(self) -> str:
        return (f"Plan(profile={self.profile.name!r}, capacity={self.capacity_stamps_per_second:g} stamps/s, "
                f"recommended={self.recommended!r}, served={self.outcome['served']:,.0f}, "
                f"baseline={self.baseline['served']:,.0f}, required_extension_days={self.required_extension_days})")

    @property
    def outcome(self) -> dict[str, float]:
        """{served, lost, waiting} of the recommended plan at the close in force."""
        return self.candidates[self.recommended].outcome

    @property
    def baseline(self) -> dict[str, float]:
        """{served, lost, waiting} of doing nothing at the close in force."""
        return self.candidates["baseline"].outcome

    @property
    def total(self) -> float:
        """Applicants who want to submit (the model's demand)."""
        return self.result.inputs.total_applicants

    @property
    def verdict_served(self) -> float:
        """Served at the close the verdict uses: p5 of the bands (the nominal run without bands)."""
        return self.bands["served"]["p5"] if self.bands else self.outcome["served"]

    @property
    def meets_target(self) -> bool:
        """True when p5 of served reaches the target share by the close in force."""
        return self.verdict_served / self.total >= self.target_share - 1e-12

    def as_json(self) -> dict[str, Any]:
        """plan.json (docs/run-directory.md)."""
        from analysis.plan_output import plan_json
        return plan_json(self)

    def render(self) -> str:
        """The terminal summary."""
        from analysis.plan_output import render
        return render(self)

    def timeline_rows(self) -> list[list[Any]]:
        """timeline.csv rows (TIMELINE_COLUMNS)."""
        from analysis.plan_output import timeline_rows
        return timeline_rows(self)

    def gate_schedule(self) -> list[dict[str, Any]]:
        """gate_schedule.json: every gate change of the recommended plan (the fixed past first)."""
        from analysis.plan_output import gate_schedule
        return gate_schedule(self)

    def waiting_room(self) -> dict[str, Any]:
        """waiting_room.json."""
        from analysis.plan_output import waiting_room_json
        return waiting_room_json(self)


# ---------------------------------------------------------------- the model runs
class _Model:
    """Inputs (by extension days, capacity factor from the decision on, parameter set and
    step) and the stage lists of each candidate."""

    def __init__(self, profile: Profile, cfg: PlanConfig, past: list[Stage], decision_s: float | None) -> None:
        self.profile, self.cfg, self.past, self.decision_s = profile, cfg, past, decision_s
        self._inp: dict[tuple[Any, ...], FluidInputs] = {}

    def inputs(self, days: int, factor: float = 1.0, params: dict[str, float] | None = None,
               step_s: float = 60.0) -> FluidInputs:
        key = (days, tuple(sorted((params or {}).items())), step_s)
        if key not in self._inp:
            p = apply_params(self.profile, params) if params else self.profile
            outages, _ = _outages(p, self.cfg)
            self._inp[key] = extended_inputs(p, days, self.decision_s if self.decision_s is not None else p.calendar.span_s,
                                             stamps_per_second=self.cfg.stamps_per_second, outages=outages,
                                             step_s=step_s)
        inp = self._inp[key]
        if factor == 1.0:
            return inp
        # The past is fixed: a capacity change takes effect from the decision time on.
        k = 0 if self.decision_s is None else int(math.ceil((self.decision_s - inp.t0_s) / inp.step_s - 1e-9))
        cap = inp.issuer_per_s.copy()
        cap[k:] *= factor
        return replace(inp, issuer_per_s=cap)

    def gate(self, setting: str, hold: bool = True) -> Gate:
        if setting == "booked":
            return Gate(mode="rate", rate_share=1.0, keep=True, hold=hold)
        if setting == "paced":
            return Gate(mode="rate", rate_share=self.cfg.max_utilisation, room_s=self.cfg.max_wait_s)
        return Gate(mode=setting)

    def stages(self, specs: tuple[StageSpec, ...], starts: dict[str, float], paced: bool,
               hold: bool = True) -> list[Stage]:
        out = list(self.past)
        for s in specs:
            gates = {g: self.gate("paced" if paced and v == "open" and s.after is not None else v, hold)
                     for g, v in s.gates.items()}
            out.append(Stage(name=s.id, at_s=starts[s.id], gates=gates, why=s.why["en"]))
        return out

    def resolve(self, specs: tuple[StageSpec, ...], paced: bool, together: bool) -> dict[str, float]:
        """Start times: the reopening, or when the stage before's returns fit the spare admission."""
        d = self.decision_s or 0.0
        starts: dict[str, float] = {}
        by_id = {s.id: s for s in specs}
        inp = self.inputs(self.cfg.extend_days, step_s=RESOLVE_STEP_S)
        for s in specs:
            if s.after is None or together:
                starts[s.id] = d
                continue
            done = tuple(x for x in specs if x.id in starts)
            r = run_fluid(inp, self.stages(done, starts, paced))
            starts[s.id] = _first_fit(r, by_id[s.after], starts[s.after], self.cfg.max_wait_s)
        return starts

    def outcome(self, inp: FluidInputs, stages: list[Stage]) -> dict[str, float]:
        """{served (stamped or bypassed, as `surgecast forecast` counts), lost, waiting} at the end of `inp`."""
        stamped, bypassed, lost = fluid_through(inp, stages)
        served = stamped + bypassed
        return {"served": served, "lost": lost, "waiting": max(0.0, inp.total_applicants - served - lost)}


def _first_fit(r: FluidResult, prev: StageSpec, prev_start: float, max_wait_s: float) -> float:
    """First step after `prev_start` where prev's pending returns fit the spare admission (or the hold ends)."""
    dt = r.inputs.step_s
    k0 = r._index(prev_start) + 1
    k1 = min(len(r.t_s) - 1, r._index(prev_start + prev.max_hold_h * 3600.0))
    ret = 1.0 / r.inputs.retry_after_s
    pending = np.zeros(len(r.t_s))
    for g in prev.watch:
        pending += r.orbits[g] * ret + r.rooms[g] / max_wait_s
    if "stamping" in prev.watch:
        pending += r.payments_queue / max_wait_s
    spare = r.issuer_capacity_per_s - r.served_per_s
    ok = np.nonzero((pending[k0:k1] <= spare[k0:k1] + 1e-9) & (r.issuer_capacity_per_s[k0:k1] > 0))[0]
    k = k0 + int(ok[0]) if len(ok) else k1
    return float(r.t_s[k]) + dt if len(ok) else float(r.t_s[k])


def _outages(profile: Profile, cfg: PlanConfig) -> tuple[tuple[Outage, ...], tuple[datetime, datetime] | None]:
    """The outages in force: the profile's, or its issuer outage moved to `--outage` (as `surgecast forecast`)."""
    issuer = [o for o in profile.outages if o.resource == "issuer"]
    if cfg.outage is None:
        return profile.outages, ((issuer[0].start, issuer[0].end) if issuer else None)
    a, b = cfg.outage
    base = issuer[0] if issuer else Outage(start=a, end=b, resource="issuer", capacity_factor=0.0, label="--outage")
    others = tuple(o for o in profile.outages if o is not base)
    return others + (replace(base, start=a, end=b),), cfg.outage


def _past_stages(profile: Profile, cfg: PlanConfig, decision_s: float | None) -> list[Stage]:
    """The profile's own gate changes before the decision (only with the profile's own outage)."""
    if decision_s is None or cfg.outage is not None:
        return []
    cal = profile.calendar
    out = []
    for g in profile.reopening:
        at = cal.seconds(g.at)
        if at < decision_s:
            out.append(Stage(name=g.label or f"{g.gate} {g.mode}", at_s=at,
                             gates={g.gate: Gate(mode=g.mode, rate_per_s=g.rate_per_s, burst=g.burst)}))
    return out


def _decision(profile: Profile, cfg: PlanConfig, outage: tuple[datetime, datetime] | None) -> float | None:
    cal = profile.calendar
    if outage is None:
        return None
    if outage[0] >= cal.close or outage[1] <= cal.window_start:
        raise FieldError("--outage", f"{outage[0].isoformat()}/{outage[1].isoformat()}",
                         f"the outage must fall inside the window {cal.window_start:%Y-%m-%d}..{cal.close:%Y-%m-%d}")
    reopen = cfg.reopen_at or outage[1]
    if reopen < outage[1]:
        raise FieldError("--reopen-at", reopen.isoformat(), f"reopen at or after the outage end ({outage[1].isoformat()})")
    if reopen >= cal.close:
        raise FieldError("--reopen-at", reopen.isoformat(), f"reopen before the close ({cal.close.isoformat()})")
    return cal.seconds(reopen)


# ---------------------------------------------------------------- planning
def _candidate(model: _Model, name: str) -> Candidate:
    """One candidate plan, its stage times resolved, run at 1-minute steps."""
    cfg = model.cfg
    specs, paced, together = _PLANS[name] if name != "baseline" else ((BASELINE,), False, True)
    specs = specs or cfg.table
    inp = model.inputs(cfg.extend_days)
    d = model.decision_s
    if d is None:
        specs, starts, stages = (), {}, []
    else:
        starts = model.resolve(specs, paced, together)
        stages = model.stages(specs, starts, paced)
    r = run_fluid(inp, stages)
    k_d = r._index(d) if d is not None else 0
    lp = r.lost_paid_cum if r.lost_paid_cum is not None else np.zeros(len(r.t_s))
    lost_paid = float(lp[-1] - (lp[k_d - 1] if k_d > 0 else 0.0))
    served, lost = float(r.done_cum[-1]), float(r.lost_cum[-1])
    return Candidate(variant=name, specs=specs, starts=starts, stages=stages,
                     outcome={"served": served, "lost": lost, "waiting": max(0.0, inp.total_applicants - served - lost)},
                     lost_paid=max(0.0, lost_paid), result=r)


# variant -> (stage table (None: the config's), paced, every stage at the reopening)
_PLANS: dict[str, tuple[tuple[StageSpec, ...] | None, bool, bool]] = {
    "book": (None, False, True), "staged": (None, False, False), "staged-paced": (None, True, False)}


def _candidates(model: _Model, cfg: PlanConfig) -> dict[str, Candidate]:
    from analysis.plan_search import pool_map
    names = ["baseline"] + (list(_PLANS) if model.decision_s is not None else [])
    model.inputs(cfg.extend_days)
    model.inputs(cfg.extend_days, step_s=RESOLVE_STEP_S)
    return dict(zip(names, pool_map(_candidate, model, names), strict=True))


def choose(candidates: dict[str, Candidate]) -> str:
    """The recommendation: most served among plans that lose no one who paid and serve at least
    the baseline; else the most served overall (the baseline included, so never worse than it).

    >>> c = lambda v, s, lp: Candidate(variant=v, specs=(), starts={}, stages=[],
    ...                                outcome={"served": s, "lost": 0.0, "waiting": 0.0}, lost_paid=lp)
    >>> choose({"baseline": c("baseline", 10.0, 3.0), "book": c("book", 11.0, 0.0), "staged": c("staged", 9.0, 0.0)})
    'book'
    >>> choose({"baseline": c("baseline", 10.0, 3.0), "staged": c("staged", 9.0, 0.0)})
    'baseline'
    """
    base = candidates["baseline"].outcome["served"]
    fair = [c for c in candidates.values() if c.outcome["served"] >= base - 1e-6]
    safe = [c for c in fair if c.lost_paid <= PAID_TOLERANCE]
    pool = safe or fair
    best = max(pool, key=lambda c: (round(c.outcome["served"], 6), -VARIANTS.index(c.variant)))
    return best.variant


def make_plan(profile: Profile, cfg: PlanConfig) -> Plan:
    """Plan the reopening and answer the capacity questions (see module doc).

    >>> from scenarios.profile import load_profile
    >>> p = make_plan(load_profile("steady"), PlanConfig(bands=False, what_if_days=(0,), max_extension_days=1))
    >>> p.recommended, p.meets_target
    ('baseline', True)
    """
    cal = profile.calendar
    _, outage = _outages(profile, cfg)
    decision_s = _decision(profile, cfg, outage)
    model = _Model(profile, cfg, _past_stages(profile, cfg, decision_s), decision_s)
    cands = _candidates(model, cfg)
    rec = choose(cands)
    chosen = cands[rec]
    result = chosen.result
    assert result is not None
    inp = model.inputs(cfg.extend_days)
    total = inp.total_applicants
    base_cap = cfg.stamps_per_second or profile.capacity.stamps_per_second

    from analysis.plan_search import search
    found = search(model, cfg, chosen, total, base_cap)
    # The booked plan's promise rests on an assumption: a slot stops the persistence clock.
    # The same plan without it, so the report can say what the assumption is worth.
    unheld = None
    if any("booked" in s.gates.values() for s in chosen.specs):
        paced = rec == "staged-paced"
        r2 = run_fluid(inp, model.stages(chosen.specs, chosen.starts, paced, hold=False))
        lp2 = r2.lost_paid_cum if r2.lost_paid_cum is not None else np.zeros(len(r2.t_s))
        k2 = r2._index(decision_s) if decision_s is not None else 0
        unheld = {"served": float(r2.done_cum[-1]), "lost": float(r2.lost_cum[-1]),
                  "waiting": max(0.0, total - float(r2.done_cum[-1]) - float(r2.lost_cum[-1])),
                  "lost_paid": float(lp2[-1] - (lp2[k2 - 1] if k2 > 0 else 0.0))}
    k_d = result._index(decision_s) if decision_s is not None else 0
    lp = result.lost_paid_cum if result.lost_paid_cum is not None else np.zeros(len(result.t_s))
    return Plan(profile=profile, config=cfg, capacity_stamps_per_second=float(base_cap), outage=outage,
                decision_s=decision_s, close_s=cal.span_s + cfg.extend_days * 86400.0, candidates=cands,
                recommended=rec, result=result, baseline_result=cands["baseline"].result,
                lost_paid=chosen.lost_paid, lost_paid_before_decision=float(lp[k_d - 1]) if k_d > 0 else 0.0,
                model=model, unheld=unheld, **found)


def problems(plan: Plan) -> list[str]:
    """The plan's broken promises (empty when it keeps them all): never worse than doing nothing,
    no one who paid lost when a plan exists that loses no one, bands ordered, the minimum
    extension the first day of the grid meeting the target.

    >>> from scenarios.profile import load_profile
    >>> problems(make_plan(load_profile("steady"), PlanConfig(bands=False, what_if_days=(0,), max_extension_days=1)))
    []
    """
    out = []
    rec = plan.candidates[plan.recommended]
    base = plan.baseline["served"]
    if plan.outcome["served"] < base - 1e-6:
        out.append(f"the recommended plan ({plan.recommended}) serves {base - plan.outcome['served']:,.0f} fewer: "
                   "worse than doing nothing")
    if rec.lost_paid > PAID_TOLERANCE:
        safe = [c.variant for c in plan.candidates.values()
                if c.lost_paid <= PAID_TOLERANCE and c.outcome["served"] >= base - 1e-6]
        if safe:
            out.append(f"the recommended plan loses {rec.lost_paid:,.0f} who paid; {safe[0]} loses none")
    if plan.bands:
        for k, b in plan.bands.items():
            if not b["p5"] <= b["p50"] <= b["p95"]:
                out.append(f"bands of {k} out of order: {b}")
    shares = [g["served_share"] for g in plan.grid]
    first = next((i for i, v in enumerate(shares) if v >= plan.target_share - 1e-12), None)
    if first != plan.required_extension_days:
        out.append(f"required_extension_days {plan.required_extension_days} is not the first day meeting the "
                   f"target on the grid ({first})")
    return out
