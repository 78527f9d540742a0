"""The reopening planner: a staged plan, the do-nothing baseline beside it, and the numbers a
manager decides on.

Every figure comes from the fluid model (analysis/backlog/) run over the whole calendar.
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

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from analysis.backlog import FluidResult, run_fluid
from analysis.plan_config import (
    PAID_TOLERANCE,
    VARIANTS,
    PlanConfig,
    decision_time,
    outages_in_force,
    past_stages,
)
from analysis.plan_model import Candidate, PlanModel, candidates
from scenarios.profile_model import Profile

__all__ = ["Plan", "make_plan", "problems", "choose"]


@dataclass(frozen=True, kw_only=True, repr=False)
class Plan:
    """The planner's answer; see analysis/plan_output.py for plan.json, the timeline and the
    summary."""

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
    unheld: dict[str, float] | None = (
        None  # the recommended plan if a booked slot did not stop the persistence clock
    )

    def __repr__(self) -> str:
        return (
            f"Plan(profile={self.profile.name!r}, capacity={self.capacity_stamps_per_second:g} "
            f"stamps/s, "
            f"recommended={self.recommended!r}, served={self.outcome['served']:,.0f}, "
            f"baseline={self.baseline['served']:,.0f}, "
            f"required_extension_days={self.required_extension_days})"
        )

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
        from analysis.plan_render import render

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


def choose(candidates: dict[str, Candidate]) -> str:
    """The recommendation: most served among plans that lose no one who paid and serve at least
    the baseline; else the most served overall (the baseline included, so never worse than it).

    >>> c = lambda v, s, lp: Candidate(variant=v, specs=(), starts={}, stages=[],
    ...     outcome={"served": s, "lost": 0.0, "waiting": 0.0}, lost_paid=lp)
    >>> choose({"baseline": c("baseline", 10.0, 3.0), "book": c("book", 11.0, 0.0),
    ...         "staged": c("staged", 9.0, 0.0)})
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
    >>> cfg = PlanConfig(bands=False, what_if_days=(0,), max_extension_days=1)
    >>> p = make_plan(load_profile("steady"), cfg)
    >>> p.recommended, p.meets_target
    ('baseline', True)
    """
    cal = profile.calendar
    _, outage = outages_in_force(profile, cfg)
    decision_s = decision_time(profile, cfg, outage)
    model = PlanModel(profile, cfg, past_stages(profile, cfg, decision_s), decision_s)
    cands = candidates(model, cfg)
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
        unheld = {
            "served": float(r2.done_cum[-1]),
            "lost": float(r2.lost_cum[-1]),
            "waiting": max(0.0, total - float(r2.done_cum[-1]) - float(r2.lost_cum[-1])),
            "lost_paid": float(lp2[-1] - (lp2[k2 - 1] if k2 > 0 else 0.0)),
        }
    k_d = result._index(decision_s) if decision_s is not None else 0
    lp = result.lost_paid_cum if result.lost_paid_cum is not None else np.zeros(len(result.t_s))
    return Plan(
        profile=profile,
        config=cfg,
        capacity_stamps_per_second=float(base_cap),
        outage=outage,
        decision_s=decision_s,
        close_s=cal.span_s + cfg.extend_days * 86400.0,
        candidates=cands,
        recommended=rec,
        result=result,
        baseline_result=cands["baseline"].result,
        lost_paid=chosen.lost_paid,
        lost_paid_before_decision=float(lp[k_d - 1]) if k_d > 0 else 0.0,
        model=model,
        unheld=unheld,
        **found,
    )


def problems(plan: Plan) -> list[str]:
    """The plan's broken promises (empty when it keeps them all): never worse than doing nothing,
    no one who paid lost when a plan exists that loses no one, bands ordered, the minimum
    extension the first day of the grid meeting the target.

    >>> from scenarios.profile import load_profile
    >>> cfg = PlanConfig(bands=False, what_if_days=(0,), max_extension_days=1)
    >>> problems(make_plan(load_profile("steady"), cfg))
    []
    """
    out = []
    rec = plan.candidates[plan.recommended]
    base = plan.baseline["served"]
    if plan.outcome["served"] < base - 1e-6:
        out.append(
            f"the recommended plan ({plan.recommended}) serves "
            f"{base - plan.outcome['served']:,.0f} fewer: "
            "worse than doing nothing"
        )
    if rec.lost_paid > PAID_TOLERANCE:
        safe = [
            c.variant
            for c in plan.candidates.values()
            if c.lost_paid <= PAID_TOLERANCE and c.outcome["served"] >= base - 1e-6
        ]
        if safe:
            out.append(
                f"the recommended plan loses {rec.lost_paid:,.0f} who paid; {safe[0]} loses none"
            )
    if plan.bands:
        for k, b in plan.bands.items():
            if not b["p5"] <= b["p50"] <= b["p95"]:
                out.append(f"bands of {k} out of order: {b}")
    shares = [g["served_share"] for g in plan.grid]
    first = next((i for i, v in enumerate(shares) if v >= plan.target_share - 1e-12), None)
    if first != plan.required_extension_days:
        out.append(
            f"required_extension_days {plan.required_extension_days} is not the first day "
            f"meeting the "
            f"target on the grid ({first})"
        )
    return out
