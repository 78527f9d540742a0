"""Fluid model: properties under random inputs, mass balance, demand totals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.backlog import (
    FluidInputs,
    Gate,
    Stage,
    inputs_from_profile,
    run_fluid,
    stages_from_profile,
)
from analysis.demand import per_hour, per_minute
from floor.vocabulary import GATES
from scenarios.profile import load_profile

gates = st.one_of(
    st.just(Gate(mode="open")),
    st.just(Gate(mode="closed")),
    st.builds(
        lambda r, b, room: Gate(mode="rate", rate_per_s=r, burst=b, room=room),
        st.floats(0.01, 50),
        st.floats(1, 500),
        st.one_of(st.none(), st.floats(0, 5000)),
    ),
    st.builds(
        lambda s, rs: Gate(mode="rate", rate_share=s, room_s=rs),
        st.floats(0.05, 1.0),
        st.floats(1, 7200),
    ),
)
stage = st.builds(
    lambda at, gs, when, share, delay: Stage(
        name="s", at_s=at, gates=gs, when=when, issuer_share=share, max_delay_s=delay
    ),
    st.floats(0, 20000),
    st.dictionaries(st.sampled_from(GATES), gates, max_size=3),
    st.sampled_from(["time", "drained", "clear:stamping", "clear:ordering", "clear:registration"]),
    st.one_of(st.none(), st.floats(0.1, 1.0)),
    st.one_of(st.none(), st.floats(60, 7200)),
)


@st.composite
def fluid_inputs(draw) -> FluidInputs:
    n = draw(st.integers(5, 400))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.floats(0.0, 2000.0))
    arrivals = {g: rng.random(n) * scale * draw(st.floats(0, 1)) for g in GATES}
    cap = rng.random(n) * draw(st.floats(0.0, 40.0))
    cap[rng.random(n) < draw(st.floats(0, 0.5))] = 0.0  # outages
    pay = rng.random(n) * draw(st.floats(0.0, 40.0))
    return FluidInputs(
        step_s=60.0,
        t0_s=0.0,
        arrivals=arrivals,
        issuer_per_s=cap,
        payments_per_s=pay,
        stamps_per_applicant=2.2,
        patience_s=draw(st.floats(30, 20000)),
        retry_probability=draw(st.floats(0, 1)),
        retry_after_s=draw(st.floats(30, 20000)),
        total_applicants=float(sum(a.sum() for a in arrivals.values())),
    )


@settings(max_examples=80, deadline=None)
@given(fluid_inputs(), st.lists(stage, max_size=5))
def test_fluid_properties(inp: FluidInputs, stages: list[Stage]) -> None:
    r = run_fluid(inp, sorted(stages, key=lambda s: s.at_s))
    tol = 1e-9
    for name, arr in [
        ("queue", r.queue),
        ("issuer_queue", r.issuer_queue),
        ("payments_queue", r.payments_queue),
        ("orbit", r.orbit),
        *[(f"room {g}", a) for g, a in r.rooms.items()],
    ]:
        assert (arr >= -tol).all(), name  # backlog never negative
    assert (
        r.served_per_s <= r.issuer_capacity_per_s * (1 + 1e-12) + tol
    ).all()  # never above capacity
    assert (r.payments_served_per_s <= inp.payments_per_s * (1 + 1e-12) + tol).all()
    u = r.utilisation
    assert ((u >= 0) & (u <= 1 + 1e-12)).all()
    assert (np.diff(r.stage) >= 0).all()  # stages monotone in time
    starts = [s.start_s for s in r.stages]
    assert starts == sorted(starts)
    assert (np.diff(r.served_cum) >= -tol).all() and (np.diff(r.lost_cum) >= -tol).all()
    # Mass balance: everyone who arrived is served, lost, or still somewhere in the system.
    inside = (
        r.issuer_queue[-1]
        + r.payments_queue[-1]
        + r.orbit[-1]
        + sum(a[-1] for a in r.rooms.values())
    )
    assert r.served_cum[-1] + r.lost_cum[-1] + inside == pytest.approx(
        inp.total_applicants, rel=1e-9, abs=1e-6
    )


def test_throttle_caps_utilisation() -> None:
    n = 200
    z = np.zeros(n)
    inp = FluidInputs(
        step_s=60.0,
        t0_s=0.0,
        arrivals={"registration": z, "ordering": z, "stamping": np.full(n, 1200.0)},
        issuer_per_s=np.full(n, 10.0),
        payments_per_s=np.full(n, 50.0),
        stamps_per_applicant=1.0,
        patience_s=600.0,
        retry_probability=0.5,
        retry_after_s=600.0,
        total_applicants=1200.0 * n,
    )
    r = run_fluid(inp, [Stage(name="cap", at_s=3000.0, issuer_share=0.7)])
    assert r.utilisation[:50].max() == pytest.approx(1.0)
    assert r.utilisation[50:].max() == pytest.approx(0.7)


def test_rate_gate_room_bounds_the_wait() -> None:
    n = 300
    z = np.zeros(n)
    inp = FluidInputs(
        step_s=60.0,
        t0_s=0.0,
        arrivals={"registration": z, "ordering": z, "stamping": np.full(n, 600.0)},
        issuer_per_s=np.full(n, 20.0),
        payments_per_s=np.full(n, 50.0),
        stamps_per_applicant=1.0,
        patience_s=3600.0,
        retry_probability=0.9,
        retry_after_s=1800.0,
        total_applicants=600.0 * n,
    )
    r = run_fluid(
        inp,
        [
            Stage(
                name="gate",
                at_s=0.0,
                gates={"stamping": Gate(mode="rate", rate_per_s=4.0, room_s=900.0)},
            )
        ],
    )
    assert r.rooms["stamping"].max() == pytest.approx(4.0 * 900.0)
    assert r.wait_s.max() <= 900.0 + 1e-6
    assert r.turned_away_per_s[-1] > 0


def test_demand_totals_and_units() -> None:
    p = load_profile("casn2024")
    m, h = per_minute(p), per_hour(p)
    assert m.applicants.sum() == pytest.approx(p.applicants_total, rel=1e-9)
    assert h.applicants.sum() == pytest.approx(p.applicants_total, rel=1e-9)
    assert h.stamps.sum() == pytest.approx(p.applicants_total * 2.2, rel=1e-9)
    # per-hour buckets are sums of per-minute ones
    assert h.applicants[100] == pytest.approx(m.applicants[6000:6060].sum(), rel=1e-9)


def test_profile_run_outage_builds_backlog_and_drains() -> None:
    p = load_profile("casn2024")
    r = run_fluid(inputs_from_profile(p), stages_from_profile(p))
    cal = p.calendar
    a, b = cal.seconds(p.outages[0].start), cal.seconds(p.outages[0].end)
    during = (r.t_s >= a) & (r.t_s < b)
    f = p.outages[0].capacity_factor
    assert 0 < f < 1  # the 2024 outage was partial
    assert (r.served_per_s[during] <= f * r.inputs.issuer_per_s[~during].max() + 1e-9).all()
    assert r.orbit[during].max() > 10_000  # retries pile up while it is down
    assert 0 < r.served_share_by(cal.span_s) < 1


def _plain_stamping_queue(
    arrive: np.ndarray,
    cap: np.ndarray,
    *,
    dt: float,
    patience_s: float,
    p: float,
    retry_after_s: float,
    rate: float,
    burst: float,
    room: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The package doc's equations, written out for one rate-gated stamping queue: the plain
    reference of the engine's hot loop. Returns (stamped, lost) cumulated per step."""
    f_ab, f_r = 1 - np.exp(-dt / patience_s), 1 - np.exp(-dt / retry_after_s)
    tokens = waiting = queue = orbit = stamped = lost = 0.0
    out_s, out_l = [], []
    for a, c in zip(arrive, cap, strict=True):
        back = orbit * f_r
        orbit -= back
        want = waiting + a + back
        tokens += rate * dt
        admitted = min(want, tokens)
        tokens = min(tokens - admitted, burst)
        waiting = want - admitted
        gave_up_room = waiting * f_ab
        waiting -= gave_up_room
        away = max(0.0, waiting - room)
        waiting -= away
        queue += admitted
        served = min(queue, c)
        queue -= served
        gave_up_queue = queue * f_ab
        queue -= gave_up_queue
        left = gave_up_room + away + gave_up_queue
        orbit += p * left
        lost += (1 - p) * left
        stamped += served
        out_s.append(stamped)
        out_l.append(lost)
    return np.array(out_s), np.array(out_l)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_engine_matches_a_plain_reference(seed: int) -> None:
    """The hot loop (analysis/backlog/engine.py) against the doc's equations written out plainly:
    a rate gate with a room in front of an issuer whose capacity varies, with retries."""
    rng = np.random.default_rng(seed)
    n, dt = 300, 60.0
    arrive = rng.random(n) * 900.0
    cap = rng.random(n) * 600.0
    zero = np.zeros(n)
    inp = FluidInputs(
        step_s=dt,
        t0_s=0.0,
        arrivals={"registration": zero, "ordering": zero, "stamping": arrive},
        issuer_per_s=cap / dt,
        payments_per_s=np.full(n, 100.0),
        stamps_per_applicant=1.0,
        patience_s=1200.0,
        retry_probability=0.6,
        retry_after_s=900.0,
        total_applicants=float(arrive.sum()),
    )
    gate = Gate(mode="rate", rate_per_s=6.0, burst=400.0, room=5000.0)
    r = run_fluid(inp, [Stage(name="pace", at_s=0.0, gates={"stamping": gate})])
    stamped, lost = _plain_stamping_queue(
        arrive,
        cap,
        dt=dt,
        patience_s=1200.0,
        p=0.6,
        retry_after_s=900.0,
        rate=6.0,
        burst=400.0,
        room=5000.0,
    )
    assert r.served_cum == pytest.approx(stamped, rel=1e-9, abs=1e-6)
    assert r.lost_cum == pytest.approx(lost, rel=1e-9, abs=1e-6)
    # the reference can tell: a gate 5 % slower gives other figures
    other, _ = _plain_stamping_queue(
        arrive,
        cap,
        dt=dt,
        patience_s=1200.0,
        p=0.6,
        retry_after_s=900.0,
        rate=5.7,
        burst=400.0,
        room=5000.0,
    )
    assert r.served_cum != pytest.approx(other, rel=1e-6)
