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

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from floor.errors import FieldError
from floor.vocabulary import GATES, GateMode
from scenarios.curve import AccountsCurve, ArrivalCurve
from scenarios.profile import Outage, Profile

__all__ = ["Gate", "Stage", "FluidInputs", "FluidResult", "StageRecord", "inputs_from_profile",
           "stages_from_profile", "run_fluid", "fluid_totals", "GATES", "capacity_schedule",
           "return_weights", "usl_factor", "fluid_through"]

_MODES = {m.value: i for i, m in enumerate(GateMode)}  # open 0, closed 1, rate 2 (the engine's ints)
_ENTRY = {"new_applicant": "registration", "returning_applicant": "ordering", "stamp_only": "stamping"}


@dataclass(frozen=True, kw_only=True)
class Gate:
    """A gate setting. `rate_per_s` (applicants/s) or `rate_share` (a share of the issuer's
    capacity in applicants/s at the moment the stage starts) for mode "rate"; `burst`
    (applicants, default one step of tokens); `room` (waiting-room cap in applicants,
    None = unlimited) or `room_s` (the cap as seconds of admission: room = rate x room_s,
    so nobody admitted waits longer than room_s in that room).

    >>> Gate(mode="rate", rate_per_s=4.0, burst=40, room=7200)
    Gate(mode='rate', rate_per_s=4.0, rate_share=None, burst=40, room=7200, room_s=None, keep=False, hold=True)
    """

    mode: str = "open"
    rate_per_s: float | None = None
    rate_share: float | None = None
    burst: float | None = None
    room: float | None = None
    room_s: float | None = None
    keep: bool = False                    # booked (planner): the room never abandons nor turns away, and the
                                          # gate's orbit is given slots (joins the room) when the stage starts
    hold: bool = True                     # with keep: the slot holds, the persistence clock stops in the room

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise FieldError("gate.mode", self.mode, "choose open, closed or rate")
        if self.mode == "rate" and (self.rate_per_s is None) == (self.rate_share is None):
            raise FieldError("gate.rate_per_s", self.rate_per_s, "a rate gate needs exactly one of rate_per_s or rate_share")


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
    max_delay_s: float | None = None      # start at the latest this long after the stage before
    issuer_share: float | None = None     # throttle: share of issuer capacity usable (None = keep)
    payments_share: float | None = None
    drained_below: float = 1.0
    why: str = ""

    def __post_init__(self) -> None:
        for g in self.gates:
            if g not in GATES:
                raise FieldError("stage.gates", g, f"choose from: {', '.join(GATES)}")
        if not (self.when in ("time", "drained") or (self.when.startswith("clear:") and self.when[6:] in GATES)):
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
    return_weight: np.ndarray | None = None   # per step: the return rate x this (daily cycle, announcements)
    bypass_share: np.ndarray | None = None    # per step: share of new arrivals that bypass (physical stamps); when
                                              # it rises, that share of the waiting and deferred switch too
    waste: bool = False                       # unbounded issuer: work on abandoned requests is still done
    usl: tuple[float, float, float] | None = None  # (alpha, beta, peak concurrency): throughput falls past the peak
    timeout_s: float = 60.0                   # queued work (s of capacity) the issuer holds at its peak concurrency
    fixed_patience: bool = False              # patience is a fixed time (a test client), not exponential: at the
                                              # issuer, FIFO cohorts give up once they have waited patience_s
    patience_left_s: np.ndarray | None = None # fixed patience only: per step, the patience left of those first
                                              # admitted at the issuer in that step (else patience_s for all)
    first_uploads_admitted: bool = False      # fixed patience only: arrivals["stamping"] are first uploads timed
                                              # where a stamping rate gate admitted them (measured): they pass at
                                              # once and spend their tokens before the next uploads do
    pass_gap_s: float = 0.0                   # fixed patience only: client time between two passes (poll, download,
                                              # think, upload), spent outside the queue: each later pass costs it

    def __repr__(self) -> str:
        return (f"FluidInputs(steps={self.n} x {self.step_s:g} s, applicants={self.total_applicants:,.0f}, "
                f"patience_s={self.patience_s:g}, retry_probability={self.retry_probability:g}, "
                f"retry_after_s={self.retry_after_s:g})")

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
    ghost: np.ndarray | None = None          # work for requests whose client has gone (unbounded issuer)
    bypass_cum: np.ndarray | None = None     # applicants through by the bypass (no stamp from the issuer)
    arrived_cum: np.ndarray | None = None    # applicants arrived by the end of each step
    # Added for the planner: admissions per gate per step, and applicants who held quota
    # (stamping gate, issuer queue, stamping orbit) lost for good.
    admitted: dict[str, np.ndarray] = field(default_factory=dict)
    lost_paid_cum: np.ndarray | None = None

    @property
    def in_system(self) -> np.ndarray:
        """Applicants arrived, neither served (stamped or bypassed) nor lost, at the end of each step."""
        return (sum(self.rooms.values()) + sum(self.orbits.values()) + self.payments_queue
                + self.issuer_queue)

    def compartments(self) -> dict[str, np.ndarray]:
        """Every place an applicant can be, per step (they add up to `in_system`): the
        timeline.csv columns room_GATE, orbit_GATE, payments_queue, issuer_queue.

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
        return (f"FluidResult(steps={len(self.t_s)}, served={self.served_cum[-1]:,.0f}, "
                f"lost={self.lost_cum[-1]:,.0f}, peak_queue={self.queue.max():,.0f}, stages={len(self.stages)})")

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

        >>> from scenarios.profile import load_profile
        >>> r = run_fluid(inputs_from_profile(load_profile("steady")))
        >>> r.served_share_by(r.t_s[-1] + 60) > 0.99
        True
        """
        return self.served_by(t_s) / self.inputs.total_applicants if self.inputs.total_applicants else 1.0

    def lost_by(self, t_s: float) -> float:
        """Applicants who gave up for good by t_s."""
        k = self._index(t_s)
        return float(self.lost_cum[k - 1]) if k > 0 else 0.0

    @property
    def utilisation(self) -> np.ndarray:
        """served / full issuer capacity per step (0 where capacity is 0)."""
        cap = self.issuer_capacity_per_s
        return np.divide(self.served_per_s, cap, out=np.zeros_like(cap), where=cap > 0)


# ---------------------------------------------------------------- inputs
def capacity_schedule(t_s: np.ndarray, profile: Profile, *, base: float, resource: str,
                      outages: Sequence[Outage], added: Sequence[tuple[float, float]] = ()) -> np.ndarray:
    """Capacity of `resource` per step (same unit as `base`): base, raised by `added`
    (calendar s, new capacity) steps, times the capacity_factor of any outage covering
    the step's midpoint.

    >>> from scenarios.profile import load_profile
    >>> p = load_profile("casn2024")
    >>> t = np.array([p.calendar.seconds(p.outages[0].start) + 60.0])
    >>> [round(float(v), 4) for v in capacity_schedule(t, p, base=12.0, resource="issuer", outages=p.outages)]
    [3.3684]
    """
    cap = np.full(len(t_s), float(base))
    for at, value in sorted(added):
        cap[t_s >= at] = value
    cal = profile.calendar
    for o in outages:
        if o.resource != resource:
            continue
        a, b = cal.seconds(o.start), cal.seconds(o.end)
        cap[(t_s >= a) & (t_s < b)] *= o.capacity_factor
    return cap


def inputs_from_profile(profile: Profile, *, stamps_per_second: float | None = None,
                        payments_per_second: float | None = None, outages: Sequence[Outage] | None = None,
                        horizon_s: float | None = None, step_s: float = 60.0,
                        curve: ArrivalCurve | None = None) -> FluidInputs:
    """Build fluid inputs from a profile: arrivals per step split by the journey mix,
    capacity schedules (profile capacity or the given stamps/s, capacity added on a
    date, outages: the profile's unless `outages` is given), behaviour in calendar time.
    `horizon_s` (default: the close in force) may run past the close; no one arrives then.

    >>> from scenarios.profile import load_profile
    >>> i = inputs_from_profile(load_profile("casn2024"), stamps_per_second=12)
    >>> i.n, round(float(i.issuer_per_s.max()), 3)
    (31679, 5.455)
    """
    if stamps_per_second is not None and not (math.isfinite(stamps_per_second) and stamps_per_second > 0):
        raise FieldError("--stamps-per-second", stamps_per_second, "give a capacity > 0 stamps per second")
    cal = profile.calendar
    horizon = cal.span_s if horizon_s is None else float(horizon_s)
    n = max(1, int(math.ceil(horizon / step_s - 1e-9)))
    edges = step_s * np.arange(n + 1)
    if curve is None:
        curve = AccountsCurve(profile) if profile.demand is not None else ArrivalCurve(profile)
    per_step = np.maximum(np.diff(curve.cumulative(edges)), 0.0)
    mix = profile.journeys.mix
    arrivals = {g: np.zeros(n) for g in GATES}
    for journey, share in mix.items():
        arrivals[_ENTRY[journey]] += per_step * share
    t = edges[:-1]
    m = profile.mean_stamps_per_applicant
    stamps = profile.capacity.stamps_per_second if stamps_per_second is None else float(stamps_per_second)
    added = [] if stamps_per_second is not None else [(cal.seconds(s.at), s.stamps_per_second)
                                                      for s in profile.capacity.added]
    outs = profile.outages if outages is None else tuple(outages)
    issuer = capacity_schedule(t + step_s / 2, profile, base=stamps, resource="issuer", outages=outs, added=added) / m
    pay_base = profile.capacity.payments_per_second if payments_per_second is None else payments_per_second
    payments = capacity_schedule(t + step_s / 2, profile, base=pay_base, resource="payments", outages=outs)
    b = profile.behaviour
    ov = profile.overload
    unbounded = ov.mode == "unbounded"
    return FluidInputs(step_s=float(step_s), t0_s=0.0, arrivals=arrivals, issuer_per_s=issuer,
                       payments_per_s=payments, stamps_per_applicant=m,
                       patience_s=b.patience_minutes * 60.0, retry_probability=b.retry_probability,
                       retry_after_s=b.retry_after_minutes * 60.0,
                       total_applicants=float(per_step.sum()), origin=cal.window_start,
                       persistence_s=None if b.persistence_days is None else b.persistence_days * 86400.0,
                       return_weight=return_weights(profile, t, step_s),
                       bypass_share=None if profile.bypass is None else
                       np.where(t + step_s / 2 >= cal.seconds(profile.bypass.at), profile.bypass.share, 0.0),
                       waste=unbounded, timeout_s=ov.timeout_s,
                       usl=(ov.alpha, ov.beta, ov.peak_concurrency) if unbounded and (ov.alpha or ov.beta) else None)


def return_weights(profile: Profile, t_s: np.ndarray, step_s: float) -> np.ndarray | None:
    """Per step multiplier of the return rate of deferred applicants: the daily cycle
    (normalised to mean 1) when the profile has persistence (two clocks), times
    `behaviour.return_boost` for `announcement_hours` after each [[reopening]] change
    that opens or paces a gate (a return wave). None for older profiles (flat returns).

    >>> from scenarios.profile import load_profile
    >>> p = load_profile("casn2024")
    >>> w = return_weights(p, np.arange(0.0, 86400.0, 3600.0), 3600.0)
    >>> round(float(w.mean()), 6)
    1.0
    """
    b = profile.behaviour
    if b.persistence_days is None:
        return None
    cal = profile.calendar
    cycle = np.asarray(profile.arrivals.daily_cycle, dtype=float)
    cycle = cycle / cycle.mean()
    hour0 = cal.window_start.hour + cal.window_start.minute / 60
    mids = np.asarray(t_s, dtype=float) + step_s / 2
    w = cycle[(np.floor(hour0 + mids / 3600.0) % 24).astype(int)]
    if b.return_boost != 1.0 and b.announcement_hours > 0:
        for g in profile.reopening:
            if g.mode != "closed":
                a = cal.seconds(g.at)
                w = np.where((mids >= a) & (mids < a + b.announcement_hours * 3600), w * b.return_boost, w)
    return w


def stages_from_profile(profile: Profile) -> list[Stage]:
    """The profile's own [[reopening]] gate changes as time-triggered stages.

    >>> from scenarios.profile import load_profile
    >>> [s.name for s in stages_from_profile(load_profile("casn2024"))][:2]
    ['pause quota sales: finish stamping in progress first', 'pause new e-Meterai accounts']
    """
    cal = profile.calendar
    out = []
    for g in profile.reopening:
        gate = Gate(mode=g.mode, rate_per_s=g.rate_per_s, rate_share=g.rate_share, burst=g.burst)
        out.append(Stage(name=g.label or f"{g.gate} {g.mode}", at_s=cal.seconds(g.at), gates={g.gate: gate}))
    return out


# ---------------------------------------------------------------- the model
def _orbit_factors(inputs: FluidInputs) -> tuple[list[float], list[float]]:
    """Per step: the share of an orbit that returns, and the share that leaves for good.

    Returning (rate w_k / retry_after) and leaving (rate 1 / persistence) compete; over a
    step the orbit keeps e^{-(a+b)Δ} and the rest splits in proportion to the rates, so
    the loss per unit of time does not depend on how often people come back.
    """
    n, dt = inputs.n, inputs.step_s
    w = np.ones(n) if inputs.return_weight is None else np.asarray(inputs.return_weight, dtype=float)
    a = w / inputs.retry_after_s
    b = 0.0 if inputs.persistence_s is None else 1.0 / inputs.persistence_s
    tot = -np.expm1(-(a + b) * dt)
    with np.errstate(invalid="ignore", divide="ignore"):
        fr = np.where(a + b > 0, tot * a / (a + b), 0.0)
    fl = tot - fr if b > 0 else np.zeros(n)
    return fr.tolist(), fl.tolist()


def usl_factor(load: float, alpha: float, beta: float, peak: float) -> float:
    """Throughput at `load` x the peak concurrency, as a share of throughput at the peak (1 up to it).

    X(N) = N / (1 + α(N−1) + βN(N−1)); the factor is X(load·N*) / X(N*) for load > 1.

    >>> usl_factor(0.5, 0.1, 0.001, 30.0), round(usl_factor(4.0, 0.1, 0.001, 30.0), 3)
    (1.0, 0.702)
    """
    if load <= 1.0:
        return 1.0
    n = load * peak

    def x(v: float) -> float:
        return v / (1.0 + alpha * (v - 1.0) + beta * v * (v - 1.0))

    return min(1.0, x(n) / x(peak))


def _issuer_overloaded(qs: float, ghost: float, cs: float, f_ab: float, waste: bool,
                       usl: tuple[float, float, float] | None, timeout_steps: float) -> tuple[float, float, float, float]:
    """One issuer step with overload physics: (served, queue, ghost work, abandoned).

    The capacity (lowered by the USL once the pending work exceeds `timeout_steps` of
    capacity) serves the queue FIFO. With `waste` the requests of clients who gave up stay
    queued as ghost work, and the head of the queue, which has waited W = work / capacity
    (in steps), is live with probability e^{-θW}; the rest of what is served is ghost
    work. Without waste live and ghost share the capacity in proportion.
    """
    work = qs + ghost
    cap = cs
    if usl is not None and cs > 0:
        cap = cs * usl_factor(work / (cs * timeout_steps), *usl)
    done = work if work < cap else cap
    if waste and work > 0 and cs > 0:
        # FIFO serves the oldest first: the head has waited W = work ahead / capacity, and
        # its client is still there with probability e^{-W/patience} (exponential patience).
        alive = math.exp(-(work / cs) * -math.log1p(-f_ab)) if f_ab < 1.0 else 0.0
        ss = min(qs, done * alive)
        g = min(ghost, done - ss)
        ss = min(qs, done - g)
        ghost -= g
    elif work > 0:
        ss = done * qs / work
        ghost -= done * ghost / work
    else:
        ss = 0.0
    qs -= ss
    ab = qs * f_ab
    qs -= ab
    if waste:
        ghost += ab
    return ss, qs, ghost, ab


class _FixedPatienceQueue:
    """The issuer queue of a testbed client (`FluidInputs.fixed_patience`): each applicant uploads
    their stamps one after another, so an applicant with n stamps passes through the FIFO queue
    n times, one upload outstanding at a time, and gives up (for good) once `steps` steps have
    passed since it was first admitted; with `waste` its outstanding upload stays queued as ghost
    work (a testbed keeps a job it accepted). Cohorts are [live applicants, ghost stamps, the
    step they give up at (first admitted + patience, less `gap_steps` for each later pass spent
    client-side between uploads), passes left]; n is 2 or 3 in the shares that make `spa` stamps per applicant
    on average (floor and ceiling). Capacity is in stamps per step. Under overload every queued
    applicant progresses one pass per round, so few finish within their patience: the collapse a
    testbed shows, which serving each applicant's whole work at once misses.

    >>> q = _FixedPatienceQueue(3.0, True, 1.0)
    >>> q.step(0, 4.0, 2.0), q.step(1, 0.0, 2.0), q.step(2, 0.0, 2.0)
    ((2.0, 0.0, 2.0, 0.0), (2.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0))
    """

    def __init__(self, steps: float, waste: bool, spa: float, gap_steps: float = 0.0) -> None:
        self.steps, self.waste, self.gap = steps, waste, gap_steps
        lo = max(1, int(math.floor(spa)))
        hi_share = min(1.0, max(0.0, spa - lo))
        self.split = [(lo, 1.0 - hi_share), (lo + 1, hi_share)]
        self.q: deque[list[float]] = deque()
        self.pending: list[list[float]] = []   # next uploads refused by a rate gate, retrying client-side
        self.gated = False

    def readmit(self, budget: float) -> float:
        """Let up to `budget` pending uploads (oldest first) into the queue; return how many."""
        used = 0.0
        while self.pending and budget - used > 1e-12:
            c = self.pending[0]
            take = min(c[0], budget - used)
            used += take
            if take >= c[0] - 1e-12:
                self.q.append(self.pending.pop(0))
            else:
                self.q.append([take, 0.0, c[2], c[3]])
                c[0] -= take
        return used

    def step(self, k: int, admitted: float, cap: float,
             left: float | None = None) -> tuple[float, float, float, float]:
        """One step (cap in stamps): (applicants done, applicants who gave up, applicants queued, ghost stamps).

        `left`: patience left (steps) of those admitted now; cohorts keep the step they give up at."""
        if admitted > 0:
            steps = self.steps if left is None else left
            for n, share in self.split:
                if share > 0:
                    self.q.append([admitted * share, 0.0, float(k) + steps - (n - 1) * self.gap - 1.0, float(n)])
        done, left, again = 0.0, cap, []
        while self.q and left > 1e-12:
            c = self.q[0]
            tot = c[0] + c[1]
            f = 1.0 if tot <= left else left / tot
            live = c[0] * f
            left -= tot * f
            c[0] -= live
            c[1] -= c[1] * f
            if c[0] <= 1e-12 and c[1] <= 1e-12:
                self.q.popleft()
            if live > 0:
                if c[3] <= 1:
                    done += live
                else:
                    again.append([live, 0.0, c[2], c[3] - 1])
            if f < 1.0:
                break
        if self.gated:
            self.pending.extend(again)   # the next upload needs a token of the rate gate
        else:
            self.q.extend(self.pending + again)   # the next upload joins the back of the queue
            self.pending = []
        gave_up = 0.0
        for c in self.pending:
            if k >= c[2]:
                gave_up += c[0]
                c[0] = 0.0
        self.pending = [c for c in self.pending if c[0] > 1e-12]
        for c in self.q:
            if c[0] > 0 and k >= c[2]:
                gave_up += c[0]
                if self.waste:
                    c[1] += c[0]
                c[0] = 0.0
        while self.q and self.q[0][0] <= 0.0 and self.q[0][1] <= 1e-12:
            self.q.popleft()
        return done, gave_up, float(sum(c[0] for c in self.q)), float(sum(c[1] for c in self.q))


def _arr(values: list[float]) -> np.ndarray:
    """A list of floats as an array (fromiter: twice as fast as np.array on long lists)."""
    return np.fromiter(values, dtype=float, count=len(values))


def _first_step(at_s: float, t0: float, dt: float) -> int:
    """The first step index whose start is at or after at_s."""
    return max(0, int(math.ceil((at_s - t0) / dt - 1e-9)))


def _gate_step(mode: int, rate_dt: float, burst: float, room: float, tokens: float, w: float,
               offered: float, f_ab: float) -> tuple[float, float, float, float, float]:
    """One step of a gate: (admitted, room content, tokens, abandoned, turned away)."""
    if mode == 0:
        return w + offered, 0.0, tokens, 0.0, 0.0
    if mode == 1:
        return 0.0, 0.0, tokens, 0.0, w + offered
    avail = tokens + rate_dt
    want = w + offered
    adm = want if want < avail else avail
    tokens = avail - adm
    if tokens > burst:
        tokens = burst
    rem = want - adm
    ab = rem * f_ab
    rem -= ab
    away = 0.0
    if rem > room:
        away = rem - room
        rem = room
    return adm, rem, tokens, ab, away


def fluid_totals(inputs: FluidInputs, stages: Sequence[Stage] = ()) -> tuple[float, float]:
    """(served, lost) applicants over all steps (served = stamped by the issuer, as
    `served_cum`; the bypass is in `FluidResult.bypass_cum`), without keeping the per-step series
    (the planner's searches use it; about a third faster than `run_fluid`).

    >>> from scenarios.profile import load_profile
    >>> i = inputs_from_profile(load_profile("steady"))
    >>> served, lost = fluid_totals(i)
    >>> bool(abs(served - run_fluid(i).served_cum[-1]) < 1e-6)
    True
    """
    served, lost, _ = _run(inputs, stages, record=False)  # type: ignore[misc]
    return served, lost


def fluid_through(inputs: FluidInputs, stages: Sequence[Stage] = ()) -> tuple[float, float, float]:
    """(stamped, bypassed, lost) applicants over all steps, without the per-step series
    (the planner's outcome counts stamped + bypassed as served, as `surgecast forecast` does).

    >>> from scenarios.profile import load_profile
    >>> i = inputs_from_profile(load_profile("steady"))
    >>> s, b, l = fluid_through(i)
    >>> bool(abs(s - run_fluid(i).served_cum[-1]) < 1e-6)
    True
    """
    served, lost, byp = _run(inputs, stages, record=False)  # type: ignore[misc]
    return served, byp, lost


def run_fluid(inputs: FluidInputs, stages: Sequence[Stage] = ()) -> FluidResult:
    """Run the fluid model over all steps of `inputs`, applying `stages` (see module doc).

    Starts empty with every gate open and full throttles. Stages are applied in the
    order given; each waits for the one before it.

    >>> import numpy as np
    >>> n = 120
    >>> inp = FluidInputs(step_s=60.0, t0_s=0.0,
    ...     arrivals={"registration": np.zeros(n), "ordering": np.zeros(n), "stamping": np.full(n, 600.0)},
    ...     issuer_per_s=np.full(n, 8.0), payments_per_s=np.full(n, 50.0), stamps_per_applicant=1.0,
    ...     patience_s=1800.0, retry_probability=0.5, retry_after_s=600.0, total_applicants=600.0 * n)
    >>> r = run_fluid(inp)
    >>> float(r.served_per_s.max()), bool(r.queue[-1] > 0)   # 10/s offered, 8/s served
    (8.0, True)
    """
    return _run(inputs, stages, record=True)  # type: ignore[return-value]


def _run(inputs: FluidInputs, stages: Sequence[Stage], *, record: bool) -> FluidResult | tuple[float, float]:
    n, dt = inputs.n, inputs.step_s
    if not (inputs.patience_s > 0 and inputs.retry_after_s > 0 and 0 <= inputs.retry_probability <= 1):
        raise FieldError("behaviour", (inputs.patience_s, inputs.retry_probability, inputs.retry_after_s),
                         "patience and retry_after must be > 0 and retry_probability in [0, 1]")
    f_ab = -math.expm1(-dt / inputs.patience_s)
    p_ret = inputs.retry_probability if inputs.persistence_s is None else 1.0
    fr, fl = _orbit_factors(inputs)
    f_p = 0.0 if inputs.persistence_s is None else -math.expm1(-dt / inputs.persistence_s)
    keep_p = 1.0 - f_p
    byp = [0.0] * n if inputs.bypass_share is None else np.asarray(inputs.bypass_share, dtype=float).tolist()
    waste = inputs.waste
    usl = inputs.usl
    fq = (_FixedPatienceQueue(inputs.patience_s / dt, waste, inputs.stamps_per_applicant, inputs.pass_gap_s / dt)
          if inputs.fixed_patience else None)
    left_s = None if inputs.patience_left_s is None else (np.asarray(inputs.patience_left_s) / dt).tolist()
    a_reg = inputs.arrivals["registration"].tolist()
    a_ord = inputs.arrivals["ordering"].tolist()
    a_st = inputs.arrivals["stamping"].tolist()
    cap_s = (inputs.issuer_per_s * dt).tolist()
    cap_p = (inputs.payments_per_s * dt).tolist()
    t0 = inputs.t0_s
    inf = math.inf

    # Gate state: mode, rate*dt, burst, room cap, tokens, room content, orbit.
    mode = [0, 0, 0]
    rdt = [inf, inf, inf]
    burst = [inf, inf, inf]
    room = [inf, inf, inf]
    tok = [0.0, 0.0, 0.0]
    w = [0.0, 0.0, 0.0]
    orb = [0.0, 0.0, 0.0]
    rate = [inf, inf, inf]
    rate_since = [0, 0, 0]
    fab = [f_ab, f_ab, f_ab]
    lost_paid = 0.0
    held = False            # the stamping room is booked and held (Gate.keep and Gate.hold)
    last_want = [0.0, 0.0, 0.0]
    thr_s = thr_p = 1.0
    qs = qp = ghost = 0.0
    lost = served_tot = byp_tot = byp_prev = 0.0

    m = n if record else 0
    out_ret = [0.0] * m
    out_srv = [0.0] * m
    out_psrv = [0.0] * m
    out_q = [0.0] * m
    out_qs = [0.0] * m
    out_qp = [0.0] * m
    out_w = ([0.0] * m, [0.0] * m, [0.0] * m)
    out_orb = [0.0] * m
    out_wait = [0.0] * m
    out_ab = [0.0] * m
    out_away = [0.0] * m
    out_lost = [0.0] * m
    out_cum = [0.0] * m
    out_o = ([0.0] * m, [0.0] * m, [0.0] * m)
    out_ghost = [0.0] * m
    out_byp = [0.0] * m
    out_stage = [-1] * m
    out_adm = ([0.0] * m, [0.0] * m, [0.0] * m)
    out_lp = [0.0] * m
    log: list[StageRecord] = []
    pending = list(stages)
    si = -1
    prev_start = t0
    gi = {g: i for i, g in enumerate(GATES)}

    k_next = _first_step(pending[0].at_s, t0, dt) if pending else n
    for k in range(n):
        # ---- stage triggers (state at the start of the step)
        while pending and k >= k_next:
            st = pending[0]
            t = t0 + k * dt
            if t + 1e-9 < st.at_s:
                break
            ok = st.when == "time" or (st.max_delay_s is not None and t + 1e-9 >= prev_start + st.max_delay_s)
            if not ok and st.when == "drained":
                ok = qs <= st.drained_below and qp <= st.drained_below
            elif not ok:
                j = gi[st.when[6:]]
                # Clear: the gate has been rate-limited for a step or more and everyone who
                # wanted in during the last step got in (its demand is below its rate).
                ok = mode[j] != 2 or (k > rate_since[j] and last_want[j] <= rdt[j] and w[j] <= 1.0)
            if not ok:
                break
            pending.pop(0)
            k_next = _first_step(pending[0].at_s, t0, dt) if pending else n
            si += 1
            rec: dict[str, dict[str, float | str | None]] = {}
            for g, gate in st.gates.items():
                j = gi[g]
                mode[j] = _MODES[gate.mode]
                if gate.mode == "rate":
                    r = gate.rate_per_s if gate.rate_per_s is not None else gate.rate_share * cap_s[k] / dt
                    rate[j] = r
                    rdt[j] = r * dt
                    burst[j] = gate.burst if gate.burst is not None else max(1.0, r * dt)
                    room[j] = gate.room if gate.room is not None else (r * gate.room_s if gate.room_s is not None else inf)
                    if j == 2:
                        held = gate.keep and gate.hold
                    if gate.keep:
                        room[j] = inf
                        w[j] += orb[j]   # booked: those deferred from this gate are given a slot too
                        orb[j] = 0.0
                    fab[j] = 0.0 if gate.keep else f_ab
                    rec[g] = {"mode": "rate", "rate_per_s": r, "burst": burst[j],
                              "room": None if room[j] == inf else room[j]}
                    tok[j] = min(tok[j], burst[j])
                    rate_since[j] = k
                else:
                    rate[j] = inf if gate.mode == "open" else 0.0
                    fab[j] = f_ab
                    if j == 2:
                        held = False
                    rdt[j], burst[j], room[j] = inf, inf, inf
                    rec[g] = {"mode": gate.mode, "rate_per_s": None, "burst": None, "room": None}
            if st.issuer_share is not None:
                thr_s = st.issuer_share
            if st.payments_share is not None:
                thr_p = st.payments_share
            prev_start = t0 + k * dt
            log.append(StageRecord(name=st.name, index=k, start_s=t0 + k * dt, gates=rec,
                                   issuer_share=thr_s, payments_share=thr_p, why=st.why))
        if record:
            out_stage[k] = si

        # ---- retries out of the orbits (and, with persistence, leaving for good)
        f_r, f_l = fr[k], fl[k]
        r0, r1, r2 = orb[0] * f_r, orb[1] * f_r, orb[2] * f_r
        if f_l:
            # held (planner: a booked stamping room): paid applicants hold a slot and their quota,
            # in the room, at the issuer and awaiting payment confirmation: their clock stops
            paid_p = 0.0 if held else w[2] + qs + qp
            lost += (orb[0] + orb[1] + orb[2]) * f_l + (w[0] + w[1] + paid_p) * f_p
            lost_paid += orb[2] * f_l + paid_p * f_p
            kl = 1.0 - f_l
            orb[0] *= kl
            orb[1] *= kl
            orb[2] *= kl
            # the persistence clock runs for everyone delayed, in a session or not
            if w[0] or w[1] or w[2]:
                w[0] *= keep_p
                w[1] *= keep_p
                if not held:
                    w[2] *= keep_p
            if not held:
                if waste:
                    ghost += qs * f_p
                qs *= keep_p
                qp *= keep_p
        orb[0] -= r0
        orb[1] -= r1
        orb[2] -= r2
        # ---- registration -> ordering -> payments -> stamping -> issuer
        b = byp[k]
        n0, n1, n2 = a_reg[k], a_ord[k], a_st[k]
        if b:
            # Per applicant, not per attempt: a share b of new arrivals takes the bypass, and
            # when it opens the same share of everyone waiting or deferred does, once.
            byp_tot += b * (n0 + n1 + n2)
            n0, n1, n2 = n0 - b * n0, n1 - b * n1, n2 - b * n2
            if b > byp_prev:
                sw = (b - byp_prev) / (1.0 - byp_prev)
                moved = sw * (orb[0] + orb[1] + orb[2] + r0 + r1 + r2 + w[0] + w[1] + w[2])
                byp_tot += moved
                r0, r1, r2 = r0 - sw * r0, r1 - sw * r1, r2 - sw * r2
                for j in range(3):
                    orb[j] -= sw * orb[j]
                    w[j] -= sw * w[j]
        byp_prev = b
        o0 = n0 + r0
        o1_new = n1 + r1
        o2_new = n2 + r2
        last_want[0] = w[0] + o0
        if mode[0] == 0:
            adm0 = w[0] + o0
            w[0] = ab0 = aw0 = 0.0
        else:
            adm0, w[0], tok[0], ab0, aw0 = _gate_step(mode[0], rdt[0], burst[0], room[0], tok[0], w[0], o0, fab[0])
        o1 = o1_new + adm0
        last_want[1] = w[1] + o1
        if mode[1] == 0:
            adm1 = w[1] + o1
            w[1] = ab1 = aw1 = 0.0
        else:
            adm1, w[1], tok[1], ab1, aw1 = _gate_step(mode[1], rdt[1], burst[1], room[1], tok[1], w[1], o1, fab[1])
        qp += adm1
        cp = cap_p[k] * thr_p
        sp = qp if qp < cp else cp
        qp -= sp
        o2 = o2_new + sp
        last_want[2] = w[2] + o2
        if mode[2] == 0:
            adm2 = w[2] + o2
            w[2] = ab2 = aw2 = 0.0
        else:
            if held:
                # booked: slots are given as the issuer frees up (top the issuer queue up to one step of work)
                top = cap_s[k] * thr_s - qs
                adm2, w[2], _, ab2, aw2 = _gate_step(2, top if top > 0.0 else 0.0, 0.0, inf, 0.0, w[2], o2, 0.0)
            elif fq is not None and mode[2] == 2:
                # a testbed's rate gate spends a token on every upload: the next uploads of those
                # already admitted take theirs first, the rest admit newcomers (one upload each)
                spa_ = inputs.stamps_per_applicant
                up = (tok[2] + rdt[2]) * spa_
                if inputs.first_uploads_admitted:
                    # measured where the gate let them in: they took their tokens as they came
                    adm2, w[2], ab2, aw2 = w[2] + o2, 0.0, 0.0, 0.0
                    up = max(0.0, up - adm2)
                    up -= fq.readmit(up)
                    up = min(up, burst[2] * spa_)
                else:
                    up -= fq.readmit(up)
                    adm2, w[2], up, ab2, aw2 = _gate_step(2, 0.0, burst[2] * spa_, room[2], up, w[2], o2, fab[2])
                tok[2] = up / spa_
            else:
                adm2, w[2], tok[2], ab2, aw2 = _gate_step(mode[2], rdt[2], burst[2], room[2], tok[2], w[2], o2, fab[2])
        if fq is not None:
            fq.gated = mode[2] == 2 and not held
        qs += adm2
        cs = cap_s[k] * thr_s
        if fq is not None:   # qs: applicants queued (one upload each); ghost: stamps
            ss, ab_s, qs, ghost = fq.step(k, adm2, cs * inputs.stamps_per_applicant,
                                          None if left_s is None else left_s[k])
        elif waste or usl is not None:
            ss, qs, ghost, ab_s = _issuer_overloaded(qs, ghost, cs, fab[2], waste, usl, inputs.timeout_s / dt)
        else:
            ss = qs if qs < cs else cs
            qs -= ss
            ab_s = qs * fab[2]  # a booked stamping queue (keep) holds the issuer queue too: they hold a slot
            qs -= ab_s
        served_tot += ss
        # ---- who gives up goes to the orbit (share p) or is lost
        g0 = ab0 + aw0
        g1 = ab1 + aw1
        g2 = ab2 + aw2 + ab_s
        orb[0] += p_ret * g0
        orb[1] += p_ret * g1
        orb[2] += p_ret * g2
        lost += (1.0 - p_ret) * (g0 + g1 + g2)
        lost_paid += (1.0 - p_ret) * g2

        if not record:
            continue
        out_ret[k] = r0 + r1 + r2
        out_srv[k] = ss
        out_psrv[k] = sp
        out_qs[k] = qs
        out_qp[k] = qp
        out_q[k] = qs + w[2]
        out_w[0][k] = w[0]
        out_w[1][k] = w[1]
        out_w[2][k] = w[2]
        out_orb[k] = orb[0] + orb[1] + orb[2]
        out_adm[0][k] = adm0
        out_adm[1][k] = adm1
        out_adm[2][k] = adm2
        out_lp[k] = lost_paid
        wait = 0.0
        if w[2] > 0:
            wait = w[2] / rate[2] if rate[2] > 0 else inf
        if qs > 0:
            wait += qs / (cs / dt) if cs / dt > 0 else inf
        out_wait[k] = wait
        out_ab[k] = ab0 + ab1 + ab2 + ab_s
        out_away[k] = aw0 + aw1 + aw2
        out_lost[k] = lost
        out_cum[k] = served_tot
        out_o[0][k], out_o[1][k], out_o[2][k] = orb[0], orb[1], orb[2]
        out_ghost[k] = ghost
        out_byp[k] = byp_tot

    if not record:
        return served_tot, lost, byp_tot
    a_all = sum(np.asarray(inputs.arrivals[g]) for g in GATES)
    return FluidResult(
        inputs=inputs, t_s=inputs.t_s, arrivals_per_s=np.asarray(a_all) / dt,
        retry_per_s=_arr(out_ret) / dt, issuer_capacity_per_s=np.asarray(inputs.issuer_per_s, dtype=float),
        served_per_s=_arr(out_srv) / dt, payments_served_per_s=_arr(out_psrv) / dt,
        queue=_arr(out_q), issuer_queue=_arr(out_qs), payments_queue=_arr(out_qp),
        rooms={g: _arr(out_w[i]) for i, g in enumerate(GATES)}, orbit=_arr(out_orb),
        wait_s=_arr(out_wait), abandoned_per_s=_arr(out_ab) / dt,
        turned_away_per_s=_arr(out_away) / dt, lost_cum=_arr(out_lost),
        served_cum=_arr(out_cum), stage=np.array(out_stage), stages=log,
        orbits={g: _arr(out_o[i]) for i, g in enumerate(GATES)}, ghost=_arr(out_ghost),
        bypass_cum=_arr(out_byp), arrived_cum=np.cumsum(a_all),
        admitted={g: _arr(out_adm[i]) for i, g in enumerate(GATES)}, lost_paid_cum=_arr(out_lp))
