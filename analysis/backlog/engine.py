"""The fluid model's engine: `run_fluid` (per-step series) and `fluid_totals` (totals only)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from analysis.backlog.issuer import FixedPatienceQueue, issuer_overloaded
from analysis.backlog.model import FluidInputs, FluidResult, FluidTotals, Stage, StageRecord
from analysis.backlog.series import Series
from analysis.backlog.state import STAMPING, GateState, Schedule
from floor.errors import FieldError
from floor.vocabulary import GATES, GateMode

__all__ = ["fluid_totals", "run_fluid"]


def _orbit_factors(inputs: FluidInputs) -> tuple[list[float], list[float]]:
    """Per step: the share of an orbit that returns, and the share that leaves for good.

    Returning (rate w_k / retry_after) and leaving (rate 1 / persistence) compete; over a
    step the orbit keeps e^{-(a+b)Δ} and the rest splits in proportion to the rates, so
    the loss per unit of time does not depend on how often people come back.
    """
    n, dt = inputs.n, inputs.step_s
    w = (
        np.ones(n)
        if inputs.return_weight is None
        else np.asarray(inputs.return_weight, dtype=float)
    )
    a = w / inputs.retry_after_s
    b = 0.0 if inputs.persistence_s is None else 1.0 / inputs.persistence_s
    tot = -np.expm1(-(a + b) * dt)
    with np.errstate(invalid="ignore", divide="ignore"):
        fr = np.where(a + b > 0, tot * a / (a + b), 0.0)
    fl = tot - fr if b > 0 else np.zeros(n)
    return fr.tolist(), fl.tolist()


_OPEN, _CLOSED, _RATE = GateMode.OPEN, GateMode.CLOSED, GateMode.RATE


def _gate_step(
    mode: GateMode,
    rate_dt: float,
    burst: float,
    room: float,
    tokens: float,
    w: float,
    offered: float,
    f_ab: float,
) -> tuple[float, float, float, float, float]:
    """One step of a gate: (admitted, room content, tokens, abandoned, turned away)."""
    if mode is _OPEN:
        return w + offered, 0.0, tokens, 0.0, 0.0
    if mode is _CLOSED:
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


def fluid_totals(inputs: FluidInputs, stages: Sequence[Stage] = ()) -> FluidTotals:
    """Stamped, bypassed and lost applicants over all steps (the last values of `served_cum`,
    `bypass_cum` and `lost_cum`), without keeping the per-step series (the planner's searches
    use it; about a third faster than `run_fluid`).

    >>> from analysis.backlog.inputs import inputs_from_profile
    >>> from scenarios.profile import load_profile
    >>> i = inputs_from_profile(load_profile("steady"))
    >>> t = fluid_totals(i)
    >>> bool(abs(t.stamped - run_fluid(i).served_cum[-1]) < 1e-6)
    True
    """
    return _run(inputs, stages, None)  # type: ignore[return-value]


def run_fluid(inputs: FluidInputs, stages: Sequence[Stage] = ()) -> FluidResult:
    """Run the fluid model over all steps of `inputs`, applying `stages` (see the package doc).

    Starts empty with every gate open and full throttles. Stages are applied in the
    order given; each waits for the one before it.

    >>> import numpy as np
    >>> n = 120
    >>> inp = FluidInputs(step_s=60.0, t0_s=0.0,
    ...     arrivals={"registration": np.zeros(n), "ordering": np.zeros(n),
    ...               "stamping": np.full(n, 600.0)},
    ...     issuer_per_s=np.full(n, 8.0), payments_per_s=np.full(n, 50.0),
    ...     stamps_per_applicant=1.0, patience_s=1800.0, retry_probability=0.5,
    ...     retry_after_s=600.0, total_applicants=600.0 * n)
    >>> r = run_fluid(inp)
    >>> float(r.served_per_s.max()), bool(r.queue[-1] > 0)   # 10/s offered, 8/s served
    (8.0, True)
    """
    series = Series(inputs.n)
    log = _run(inputs, stages, series)
    return series.result(inputs, log)  # type: ignore[arg-type]


def _check(inputs: FluidInputs) -> None:
    if not (
        inputs.patience_s > 0 and inputs.retry_after_s > 0 and 0 <= inputs.retry_probability <= 1
    ):
        raise FieldError(
            "behaviour",
            (inputs.patience_s, inputs.retry_probability, inputs.retry_after_s),
            "patience and retry_after must be > 0 and retry_probability in [0, 1]",
        )


def _shares(inputs: FluidInputs) -> tuple[float, float, float]:
    """Per-step shares: of a room that abandons (f_ab), of those giving up who retry later
    (p_ret; all of them with persistence, which then decides), and of the delayed who leave
    for good (f_p, 0 without persistence)."""
    dt = inputs.step_s
    f_ab = -math.expm1(-dt / inputs.patience_s)
    p_ret = inputs.retry_probability if inputs.persistence_s is None else 1.0
    f_p = 0.0 if inputs.persistence_s is None else -math.expm1(-dt / inputs.persistence_s)
    return f_ab, p_ret, f_p


def _step_lists(
    inputs: FluidInputs,
) -> tuple[list[float], list[float] | None, list[float], list[float], list[float], list[float],
           list[float]]:  # fmt: skip
    """The per-step inputs as lists (the loop indexes lists faster than arrays): bypass share,
    patience left (in steps, or None), arrivals at the three gates, and the issuer's and the
    payments' capacity per step."""
    n, dt = inputs.n, inputs.step_s
    byp = (
        [0.0] * n
        if inputs.bypass_share is None
        else np.asarray(inputs.bypass_share, dtype=float).tolist()
    )
    left_s = (
        None
        if inputs.patience_left_s is None
        else (np.asarray(inputs.patience_left_s) / dt).tolist()
    )
    a_reg, a_ord, a_st = (inputs.arrivals[g].tolist() for g in GATES)
    cap_s = (inputs.issuer_per_s * dt).tolist()
    cap_p = (inputs.payments_per_s * dt).tolist()
    return byp, left_s, a_reg, a_ord, a_st, cap_s, cap_p


def _fixed_patience_queue(inputs: FluidInputs) -> FixedPatienceQueue | None:
    """The issuer queue of fixed patience (`inputs.fixed_patience`), else None."""
    if not inputs.fixed_patience:
        return None
    dt = inputs.step_s
    return FixedPatienceQueue(
        inputs.patience_s / dt, inputs.waste, inputs.stamps_per_applicant, inputs.pass_gap_s / dt
    )


def _bypass_opens(
    sw: float, orb: list[float], w: list[float], r0: float, r1: float, r2: float
) -> tuple[float, float, float, float]:
    """The bypass opens wider: a share `sw` of everyone in the orbits, retrying this step or in
    a room takes it, once. Updates `orb` and `w`; returns (moved, r0, r1, r2)."""
    moved = sw * (orb[0] + orb[1] + orb[2] + r0 + r1 + r2 + w[0] + w[1] + w[2])
    r0, r1, r2 = r0 - sw * r0, r1 - sw * r1, r2 - sw * r2
    for j in range(3):
        orb[j] -= sw * orb[j]
        w[j] -= sw * w[j]
    return moved, r0, r1, r2


def _run(
    inputs: FluidInputs, stages: Sequence[Stage], series: Series | None
) -> FluidTotals | list[StageRecord]:
    """The step loop (a documented hot loop: every step of every planner search runs it, so its
    state lives in local names and lists; `tests/test_analysis_backlog.py` checks it against a
    plain transcription of the package doc's equations). With `series`, keeps each step there
    and returns the stage log; without, returns the totals."""
    _check(inputs)
    n, dt = inputs.n, inputs.step_s
    f_ab, p_ret, f_p = _shares(inputs)
    keep_p = 1.0 - f_p
    fr, fl = _orbit_factors(inputs)
    byp, left_s, a_reg, a_ord, a_st, cap_s, cap_p = _step_lists(inputs)
    waste, usl, spa = inputs.waste, inputs.usl, inputs.stamps_per_applicant
    fq = _fixed_patience_queue(inputs)
    inf = math.inf
    gs = GateState(f_ab)
    mode, rdt, burst, room, tok = gs.mode, gs.rdt, gs.burst, gs.room, gs.tok
    w, orb, fab, want = gs.w, gs.orb, gs.fab, gs.want
    sched = Schedule(stages, inputs.t0_s, dt, n)
    held = False
    thr_s = thr_p = 1.0
    qs = qp = ghost = lost_paid = 0.0
    lost = served_tot = byp_tot = byp_prev = 0.0
    for k in range(n):
        if k >= sched.k_next:
            sched.advance(k, gs, qs, qp, cap_s[k])
            held, thr_s, thr_p = gs.held, sched.thr_s, sched.thr_p
        # ---- retries out of the orbits (and, with persistence, leaving for good)
        f_r, f_l = fr[k], fl[k]
        r0, r1, r2 = orb[0] * f_r, orb[1] * f_r, orb[2] * f_r
        if f_l:
            # held (planner: a booked stamping room): paid applicants hold a slot and their
            # quota, in the room, at the issuer and awaiting payment confirmation: their clock stops
            paid_p = 0.0 if held else w[2] + qs + qp
            lost += (orb[0] + orb[1] + orb[2]) * f_l + (w[0] + w[1] + paid_p) * f_p
            lost_paid += orb[2] * f_l + paid_p * f_p
            kl = 1.0 - f_l
            orb[0], orb[1], orb[2] = orb[0] * kl, orb[1] * kl, orb[2] * kl
            # the persistence clock runs for everyone delayed, in a session or not
            w[0], w[1] = w[0] * keep_p, w[1] * keep_p
            if not held:
                w[2] *= keep_p
                if waste:
                    ghost += qs * f_p
                qs, qp = qs * keep_p, qp * keep_p
        orb[0], orb[1], orb[2] = orb[0] - r0, orb[1] - r1, orb[2] - r2
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
                moved, r0, r1, r2 = _bypass_opens(sw, orb, w, r0, r1, r2)
                byp_tot += moved
        byp_prev = b
        o0 = n0 + r0
        want[0] = w[0] + o0
        adm0, w[0], tok[0], ab0, aw0 = _gate_step(
            mode[0], rdt[0], burst[0], room[0], tok[0], w[0], o0, fab[0]
        )
        o1 = n1 + r1 + adm0
        want[1] = w[1] + o1
        adm1, w[1], tok[1], ab1, aw1 = _gate_step(
            mode[1], rdt[1], burst[1], room[1], tok[1], w[1], o1, fab[1]
        )
        qp += adm1
        cp = cap_p[k] * thr_p
        sp = qp if qp < cp else cp
        qp -= sp
        o2 = n2 + r2 + sp
        want[2] = w[2] + o2
        cs = cap_s[k] * thr_s
        if mode[2] is _OPEN:
            adm2, ab2, aw2 = w[2] + o2, 0.0, 0.0
            w[2] = 0.0
        elif held:
            # booked: slots are given as the issuer frees up (top the issuer queue up to one
            # step of work)
            top = cs - qs
            adm2, w[2], _, ab2, aw2 = _gate_step(
                _RATE, top if top > 0.0 else 0.0, 0.0, inf, 0.0, w[2], o2, 0.0
            )
        elif fq is not None and mode[2] is _RATE:
            adm2, ab2, aw2 = _uploads_gate(gs, fq, o2, spa, inputs.first_uploads_admitted)
        else:
            adm2, w[2], tok[2], ab2, aw2 = _gate_step(
                mode[2], rdt[2], burst[2], room[2], tok[2], w[2], o2, fab[2]
            )
        qs += adm2
        if fq is not None:  # qs: applicants queued (one upload each); ghost: stamps
            fq.gated = mode[2] is _RATE and not held
            ss, ab_s, qs, ghost = fq.step(k, adm2, cs * spa, None if left_s is None else left_s[k])
        elif waste or usl is not None:
            ss, qs, ghost, ab_s = issuer_overloaded(
                qs, ghost, cs, fab[2], waste, usl, inputs.timeout_s / dt
            )
        else:
            ss = qs if qs < cs else cs
            qs -= ss
            ab_s = qs * fab[2]  # a booked stamping queue (keep) holds the issuer queue too
            qs -= ab_s
        served_tot += ss
        # ---- who gives up goes to the orbit (share p) or is lost
        g0, g1, g2 = ab0 + aw0, ab1 + aw1, ab2 + aw2 + ab_s
        orb[0], orb[1], orb[2] = orb[0] + p_ret * g0, orb[1] + p_ret * g1, orb[2] + p_ret * g2
        lost += (1.0 - p_ret) * (g0 + g1 + g2)
        lost_paid += (1.0 - p_ret) * g2
        if series is not None:
            series.put(
                k,
                sched.index,
                gs,
                (r0 + r1 + r2, ss, sp, adm0, adm1, adm2, ab0 + ab1 + ab2 + ab_s, aw0 + aw1 + aw2),
                (qs, qp, ghost, _wait(w[2], gs.rate[2], qs, cs / dt)),
                (lost, served_tot, byp_tot, lost_paid),
            )
    if series is None:
        return FluidTotals(stamped=served_tot, bypassed=byp_tot, lost=lost)
    return sched.log


def _wait(room: float, rate: float, qs: float, cap_per_s: float) -> float:
    """The wait a new applicant would see: stamping room / gate rate + issuer queue / capacity."""
    wait = 0.0
    if room > 0:
        wait = room / rate if rate > 0 else math.inf
    if qs > 0:
        wait += qs / cap_per_s if cap_per_s > 0 else math.inf
    return wait


def _uploads_gate(
    gs: GateState, fq: FixedPatienceQueue, offered: float, spa: float, first_admitted: bool
) -> tuple[float, float, float]:
    """A testbed's stamping rate gate spends a token on every upload: the next uploads of those
    already admitted take theirs first, the rest admit newcomers (one upload each).
    Returns (admitted, abandoned, turned away) and updates the gate's room and tokens."""
    j = STAMPING
    up = (gs.tok[j] + gs.rdt[j]) * spa
    if first_admitted:
        # measured where the gate let them in: they took their tokens as they came
        adm, ab, aw = gs.w[j] + offered, 0.0, 0.0
        gs.w[j] = 0.0
        up = max(0.0, up - adm)
        up -= fq.readmit(up)
        up = min(up, gs.burst[j] * spa)
    else:
        up -= fq.readmit(up)
        adm, gs.w[j], up, ab, aw = _gate_step(
            _RATE, 0.0, gs.burst[j] * spa, gs.room[j], up, gs.w[j], offered, gs.fab[j]
        )
    gs.tok[j] = up / spa
    return adm, ab, aw
