"""The fluid model's types: gate settings, stages, per-step inputs, the result and its totals."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from floor.errors import FieldError
from floor.vocabulary import GATE_MODES, GATES, GateMode

__all__ = ["Gate", "Stage", "FluidInputs", "StageRecord", "FluidResult", "FluidTotals"]


@dataclass(frozen=True, kw_only=True)
class Gate:
    """A gate setting. `rate_per_s` (applicants/s) or `rate_share` (a share of the issuer's
    capacity in applicants/s at the moment the stage starts) for mode "rate"; `burst`
    (applicants, default one step of tokens); `room` (waiting-room cap in applicants,
    None = unlimited) or `room_s` (the cap as seconds of admission: room = rate x room_s,
    so nobody admitted waits longer than room_s in that room).

    >>> Gate(mode="rate", rate_per_s=4.0, burst=40, room=7200)  # doctest: +NORMALIZE_WHITESPACE
    Gate(mode='rate', rate_per_s=4.0, rate_share=None, burst=40, room=7200, room_s=None,
         keep=False, hold=True)
    """

    mode: str = "open"
    rate_per_s: float | None = None
    rate_share: float | None = None
    burst: float | None = None
    room: float | None = None
    room_s: float | None = None
    keep: bool = False  # booked (planner): the room never abandons nor turns away, and the
    # gate's orbit is given slots (joins the room) when the stage starts
    hold: bool = True  # with keep: the slot holds, the persistence clock stops in the room

    def __post_init__(self) -> None:
        if self.mode not in GATE_MODES:
            raise FieldError("gate.mode", self.mode, "choose open, closed or rate")
        if self.mode == GateMode.RATE and (self.rate_per_s is None) == (self.rate_share is None):
            raise FieldError(
                "gate.rate_per_s",
                self.rate_per_s,
                "a rate gate needs exactly one of rate_per_s or rate_share",
            )


@dataclass(frozen=True, kw_only=True)
class Stage:
    """A change of gates and throttles. See the module docstring for `when`.

    >>> Stage(name="drain", at_s=0.0, gates={"stamping": Gate(mode="closed")}).when
    'time'
    """

    name: str
    at_s: float
    gates: Mapping[str, Gate] = field(default_factory=dict)
    when: str = "time"
    max_delay_s: float | None = None  # start at the latest this long after the stage before
    issuer_share: float | None = None  # throttle: share of issuer capacity usable (None = keep)
    payments_share: float | None = None
    drained_below: float = 1.0
    why: str = ""

    def __post_init__(self) -> None:
        for g in self.gates:
            if g not in GATES:
                raise FieldError("stage.gates", g, f"choose from: {', '.join(GATES)}")
        if not (
            self.when in ("time", "drained")
            or (self.when.startswith("clear:") and self.when[6:] in GATES)
        ):
            raise FieldError("stage.when", self.when, "use time, drained or clear:GATE")


@dataclass(frozen=True, kw_only=True, repr=False)
class FluidInputs:
    """Per-step inputs of the fluid model (length n, step `step_s` seconds from `t0_s`).

    `arrivals[gate]`: applicants arriving at that entry gate in each step;
    `issuer_per_s`, `payments_per_s`: full capacities in applicants/s.
    """

    step_s: float
    t0_s: float
    arrivals: Mapping[str, np.ndarray]
    issuer_per_s: np.ndarray
    payments_per_s: np.ndarray
    stamps_per_applicant: float
    patience_s: float
    retry_probability: float
    retry_after_s: float
    total_applicants: float
    origin: datetime | None = None
    # Two clocks of patience: with persistence_s set, everyone who gives up in a session
    # (patience_s, minutes) is deferred, and everyone delayed (deferred, in a waiting room
    # or a queue) leaves for good at hazard 1/persistence_s per unit of elapsed time,
    # however often they retry (retry_probability is then unused). None keeps the older
    # loss per attempt.
    persistence_s: float | None = None
    return_weight: np.ndarray | None = (
        None  # per step: the return rate x this (daily cycle, announcements)
    )
    bypass_share: np.ndarray | None = (
        None  # per step: share of new arrivals that bypass (physical stamps); when
    )
    # it rises, that share of the waiting and deferred switch too
    waste: bool = False  # unbounded issuer: work on abandoned requests is still done
    usl: tuple[float, float, float] | None = (
        None  # (alpha, beta, peak concurrency): throughput falls past the peak
    )
    timeout_s: float = 60.0  # queued work (s of capacity) the issuer holds at its peak concurrency
    fixed_patience: bool = (
        False  # patience is a fixed time (a test client), not exponential: at the
    )
    # issuer, FIFO cohorts give up once they have waited patience_s
    patience_left_s: np.ndarray | None = (
        None  # fixed patience only: per step, the patience left of those first
    )
    # admitted at the issuer in that step (else patience_s for all)
    first_uploads_admitted: bool = (
        False  # fixed patience only: arrivals["stamping"] are first uploads timed
    )
    # where a stamping rate gate admitted them (measured): they pass at
    # once and spend their tokens before the next uploads do
    pass_gap_s: float = 0.0  # fixed patience only: client time between two passes (poll, download,
    # think, upload), spent outside the queue: each later pass costs it

    def __repr__(self) -> str:
        return (
            f"FluidInputs(steps={self.n} x {self.step_s:g} s, "
            f"applicants={self.total_applicants:,.0f}, "
            f"patience_s={self.patience_s:g}, retry_probability={self.retry_probability:g}, "
            f"retry_after_s={self.retry_after_s:g})"
        )

    @property
    def n(self) -> int:
        """Number of steps."""
        return len(self.issuer_per_s)

    @property
    def t_s(self) -> np.ndarray:
        """Step start times (calendar s since the window start)."""
        return self.t0_s + self.step_s * np.arange(self.n)


@dataclass(frozen=True, kw_only=True)
class StageRecord:
    """When a stage actually started (step index, calendar s) and the gate rates it set."""

    name: str
    index: int
    start_s: float
    gates: dict[str, dict[str, float | str | None]]
    issuer_share: float
    payments_share: float
    why: str


@dataclass(frozen=True, kw_only=True, repr=False)
class FluidResult:
    """Per-step outputs (arrays of length n; rates per second averaged over the step,
    queues in applicants at the end of the step) and the stage log.

    queue = stamping waiting room + issuer queue (applicants waiting for stamps);
    wait_s = the wait a new applicant would see there: room / gate rate + issuer
    queue / usable issuer capacity (inf while the issuer is down with a queue).
    """

    inputs: FluidInputs
    t_s: np.ndarray
    arrivals_per_s: np.ndarray
    retry_per_s: np.ndarray
    issuer_capacity_per_s: np.ndarray
    served_per_s: np.ndarray
    payments_served_per_s: np.ndarray
    queue: np.ndarray
    issuer_queue: np.ndarray
    payments_queue: np.ndarray
    rooms: dict[str, np.ndarray]
    orbit: np.ndarray
    wait_s: np.ndarray
    abandoned_per_s: np.ndarray
    turned_away_per_s: np.ndarray
    lost_cum: np.ndarray
    served_cum: np.ndarray
    stage: np.ndarray
    stages: list[StageRecord]
    orbits: dict[str, np.ndarray] = field(default_factory=dict)
    ghost: np.ndarray | None = None  # work for requests whose client has gone (unbounded issuer)
    bypass_cum: np.ndarray | None = (
        None  # applicants through by the bypass (no stamp from the issuer)
    )
    arrived_cum: np.ndarray | None = None  # applicants arrived by the end of each step
    # Added for the planner: admissions per gate per step, and applicants who held quota
    # (stamping gate, issuer queue, stamping orbit) lost for good.
    admitted: dict[str, np.ndarray] = field(default_factory=dict)
    lost_paid_cum: np.ndarray | None = None

    @property
    def in_system(self) -> np.ndarray:
        """Applicants arrived, neither served (stamped or bypassed) nor lost, at the end of each
        step."""
        return (
            sum(self.rooms.values())
            + sum(self.orbits.values())
            + self.payments_queue
            + self.issuer_queue
        )

    def compartments(self) -> dict[str, np.ndarray]:
        """Every place an applicant can be, per step (they add up to `in_system`): the
        timeline.csv columns room_GATE, orbit_GATE, payments_queue, issuer_queue.

        >>> from analysis.backlog import inputs_from_profile, run_fluid
        >>> from scenarios.profile import load_profile
        >>> r = run_fluid(inputs_from_profile(load_profile("steady")))
        >>> bool(np.allclose(sum(r.compartments().values()), r.in_system))
        True
        """
        out = {f"room_{g}": self.rooms[g] for g in GATES}
        out.update({f"orbit_{g}": self.orbits[g] for g in GATES})
        out["payments_queue"] = self.payments_queue
        out["issuer_queue"] = self.issuer_queue
        return out

    @property
    def done_cum(self) -> np.ndarray:
        """Applicants through by the end of each step: stamped by the issuer or bypassed."""
        return self.served_cum + (self.bypass_cum if self.bypass_cum is not None else 0.0)

    def __repr__(self) -> str:
        return (
            f"FluidResult(steps={len(self.t_s)}, served={self.served_cum[-1]:,.0f}, "
            f"lost={self.lost_cum[-1]:,.0f}, peak_queue={self.queue.max():,.0f}, "
            f"stages={len(self.stages)})"
        )

    def _index(self, t_s: float) -> int:
        """Number of whole steps that end at or before t_s."""
        k = int(math.floor((t_s - self.inputs.t0_s) / self.inputs.step_s + 1e-9))
        return max(0, min(k, len(self.t_s)))

    def served_by(self, t_s: float) -> float:
        """Applicants fully stamped by calendar second t_s."""
        k = self._index(t_s)
        return float(self.served_cum[k - 1]) if k > 0 else 0.0

    def served_share_by(self, t_s: float) -> float:
        """Share of all applicants stamped by t_s.

        >>> from analysis.backlog import inputs_from_profile, run_fluid
        >>> from scenarios.profile import load_profile
        >>> r = run_fluid(inputs_from_profile(load_profile("steady")))
        >>> r.served_share_by(r.t_s[-1] + 60) > 0.99
        True
        """
        return (
            self.served_by(t_s) / self.inputs.total_applicants
            if self.inputs.total_applicants
            else 1.0
        )

    def lost_by(self, t_s: float) -> float:
        """Applicants who gave up for good by t_s."""
        k = self._index(t_s)
        return float(self.lost_cum[k - 1]) if k > 0 else 0.0

    @property
    def utilisation(self) -> np.ndarray:
        """served / full issuer capacity per step (0 where capacity is 0)."""
        cap = self.issuer_capacity_per_s
        return np.divide(self.served_per_s, cap, out=np.zeros_like(cap), where=cap > 0)


@dataclass(frozen=True, kw_only=True)
class FluidTotals:
    """What `fluid_totals` keeps of a run: applicants stamped by the issuer (`served_cum[-1]`),
    through the bypass (`bypass_cum[-1]`) and lost for good (`lost_cum[-1]`)."""

    stamped: float
    bypassed: float
    lost: float

    @property
    def through(self) -> float:
        """Stamped or bypassed: served, as the planner and `surgecast forecast` count it."""
        return self.stamped + self.bypassed
