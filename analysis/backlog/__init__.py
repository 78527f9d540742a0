"""A time-varying fluid model of the e-Meterai journey over the whole calendar.

Units: everything is **applicants** (one applicant = one order, one payment, and
`stamps_per_applicant` stamps on average). The issuer's capacity in stamps per
second is divided by the mean stamps per applicant to get applicants per second;
columns that are in stamps say so (`*_stamps*`).

The path of an applicant, per entry point (the profile's journey mix)::

    new applicant ──► [registration gate] ──► [ordering gate] ──► payments queue ──►
    returning    ──────────────────────────►  [ordering gate]       (payment        │
    stamp only (already holds quota) ─────────────────────────┐     confirmation)    │
                                                              ▼                      ▼
                                                      [stamping gate] ──► issuer queue ──► served

A **gate** is open (admits everything), closed (turns everyone away) or rate-limited:
a token bucket with `rate_per_s` and `burst` in front of a waiting room that holds at
most `room` applicants; the rest are turned away ("come back later"). Applicants in
a waiting room or the issuer queue give up at rate θ = 1/patience each. Whoever
gives up or is turned away retries with probability p (`retry_probability`): they
join that gate's orbit and come back at rate 1/`retry_after_s` each; the others are
lost. Payments already made are never abandoned (the quota is kept).

Per step of Δ (60 s), for a queue Q with capacity C (applicants/s) and throttle u
(the share of C a stage may use):

    served    = min(Q + admitted, u C Δ)
    abandoned = (Q + admitted − served)(1 − e^{−θΔ})
    retries   = orbit (1 − e^{−Δ/retry_after});  orbit += p (abandoned + turned away) − retries

The exponential factors make each step exact for the decay part, so the model is
stable at any step length; the min() is the fluid limit of a many-server queue.

**Stages** change gates and throttles at a time or when a condition holds
(`when="drained"`: issuer and payments queues below `drained_below`;
`when="clear:GATE"`: that gate's waiting room is down to one step of admissions,
i.e. its demand has fallen below its rate), never before `at_s` and at the latest
`max_delay_s` after the stage before it started. The planner builds its staged reopening from them.

    >>> from scenarios.profile import load_profile
    >>> p = load_profile("casn2024")
    >>> r = run_fluid(inputs_from_profile(p))
    >>> 0.0 < r.served_share_by(p.calendar.span_s) < 1.0
    True
    >>> bool((r.queue >= 0).all() and (r.served_per_s <= r.issuer_capacity_per_s + 1e-9).all())
    True
"""

from analysis.backlog.engine import fluid_totals, run_fluid
from analysis.backlog.inputs import (
    capacity_schedule,
    inputs_from_profile,
    return_weights,
    stages_from_profile,
)
from analysis.backlog.issuer import usl_factor
from analysis.backlog.model import (
    FluidInputs,
    FluidResult,
    FluidTotals,
    Gate,
    Stage,
    StageRecord,
)
from floor.vocabulary import GATES

__all__ = [
    "Gate",
    "Stage",
    "FluidInputs",
    "FluidResult",
    "FluidTotals",
    "StageRecord",
    "inputs_from_profile",
    "stages_from_profile",
    "run_fluid",
    "fluid_totals",
    "GATES",
    "capacity_schedule",
    "return_weights",
    "usl_factor",
]
