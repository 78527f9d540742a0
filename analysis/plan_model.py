"""The planner's model runs: inputs by extension, capacity factor and parameter set; the stage
lists of each candidate plan, their start times resolved, and each candidate run."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from analysis.backlog import FluidInputs, FluidResult, Gate, Stage, fluid_totals, run_fluid
from analysis.extension import extended_inputs
from analysis.forecast import apply_params
from analysis.plan_config import RESOLVE_STEP_S, PlanConfig, outages_in_force
from analysis.stages import BASELINE, StageSpec
from scenarios.profile_model import Profile

__all__ = ["Candidate", "PlanModel", "PLANS", "candidate", "candidates", "first_fit"]


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One candidate plan: its stages (engine form), when each started, and its outcome at the
    close."""

    variant: str
    specs: tuple[StageSpec, ...]
    starts: dict[str, float]
    stages: list[Stage]
    outcome: dict[str, float]
    lost_paid: float
    result: FluidResult | None = field(default=None, repr=False, compare=False)


class PlanModel:
    """Inputs (by extension days, capacity factor from the decision on, parameter set and
    step) and the stage lists of each candidate."""

    def __init__(
        self, profile: Profile, cfg: PlanConfig, past: list[Stage], decision_s: float | None
    ) -> None:
        self.profile, self.cfg, self.past, self.decision_s = profile, cfg, past, decision_s
        self._inp: dict[tuple[Any, ...], FluidInputs] = {}

    def inputs(
        self,
        days: int,
        factor: float = 1.0,
        params: dict[str, float] | None = None,
        step_s: float = 60.0,
    ) -> FluidInputs:
        key = (days, tuple(sorted((params or {}).items())), step_s)
        if key not in self._inp:
            p = apply_params(self.profile, params) if params else self.profile
            outages, _ = outages_in_force(p, self.cfg)
            self._inp[key] = extended_inputs(
                p,
                days,
                self.decision_s if self.decision_s is not None else p.calendar.span_s,
                stamps_per_second=self.cfg.stamps_per_second,
                outages=outages,
                step_s=step_s,
            )
        inp = self._inp[key]
        if factor == 1.0:
            return inp
        # The past is fixed: a capacity change takes effect from the decision time on.
        k = (
            0
            if self.decision_s is None
            else int(math.ceil((self.decision_s - inp.t0_s) / inp.step_s - 1e-9))
        )
        cap = inp.issuer_per_s.copy()
        cap[k:] *= factor
        return replace(inp, issuer_per_s=cap)

    def gate(self, setting: str, hold: bool = True) -> Gate:
        if setting == "booked":
            return Gate(mode="rate", rate_share=1.0, keep=True, hold=hold)
        if setting == "paced":
            return Gate(
                mode="rate", rate_share=self.cfg.max_utilisation, room_s=self.cfg.max_wait_s
            )
        return Gate(mode=setting)

    def stages(
        self, specs: tuple[StageSpec, ...], starts: dict[str, float], paced: bool, hold: bool = True
    ) -> list[Stage]:
        out = list(self.past)
        for s in specs:
            gates = {
                g: self.gate("paced" if paced and v == "open" and s.after is not None else v, hold)
                for g, v in s.gates.items()
            }
            out.append(Stage(name=s.id, at_s=starts[s.id], gates=gates, why=s.why["en"]))
        return out

    def resolve(
        self, specs: tuple[StageSpec, ...], paced: bool, together: bool
    ) -> dict[str, float]:
        """Start times: the reopening, or when the stage before's returns fit the spare
        admission."""
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
            starts[s.id] = first_fit(r, by_id[s.after], starts[s.after], self.cfg.max_wait_s)
        return starts

    def outcome(self, inp: FluidInputs, stages: list[Stage]) -> dict[str, float]:
        """{served (stamped or bypassed, as `surgecast forecast` counts), lost, waiting} at the end
        of `inp`."""
        totals = fluid_totals(inp, stages)
        served, lost = totals.through, totals.lost
        return {
            "served": served,
            "lost": lost,
            "waiting": max(0.0, inp.total_applicants - served - lost),
        }


def first_fit(r: FluidResult, prev: StageSpec, prev_start: float, max_wait_s: float) -> float:
    """First step after `prev_start` where prev's pending returns fit the spare admission (or the
    hold ends)."""
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
    ok = np.nonzero((pending[k0:k1] <= spare[k0:k1] + 1e-9) & (r.issuer_capacity_per_s[k0:k1] > 0))[
        0
    ]
    k = k0 + int(ok[0]) if len(ok) else k1
    return float(r.t_s[k]) + dt if len(ok) else float(r.t_s[k])


def candidate(model: PlanModel, name: str) -> Candidate:
    """One candidate plan, its stage times resolved, run at 1-minute steps."""
    cfg = model.cfg
    specs, paced, together = PLANS[name] if name != "baseline" else ((BASELINE,), False, True)
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
    return Candidate(
        variant=name,
        specs=specs,
        starts=starts,
        stages=stages,
        outcome={
            "served": served,
            "lost": lost,
            "waiting": max(0.0, inp.total_applicants - served - lost),
        },
        lost_paid=max(0.0, lost_paid),
        result=r,
    )


# variant -> (stage table (None: the config's), paced, every stage at the reopening)
PLANS: dict[str, tuple[tuple[StageSpec, ...] | None, bool, bool]] = {
    "book": (None, False, True),
    "staged": (None, False, False),
    "staged-paced": (None, True, False),
}


def candidates(model: PlanModel, cfg: PlanConfig) -> dict[str, Candidate]:
    from analysis.plan_search import pool_map

    names = ["baseline"] + (list(PLANS) if model.decision_s is not None else [])
    model.inputs(cfg.extend_days)
    model.inputs(cfg.extend_days, step_s=RESOLVE_STEP_S)
    return dict(zip(names, pool_map(candidate, model, names), strict=True))
