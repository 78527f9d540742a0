"""The surge model (issue 9): two clocks of patience, demand from accounts, the outage as it
was, overload physics, extensions that keep the past, a timeline that balances, and the
in-sample fit. Hold-out facts appear in no test here (they are only predicted and reported)."""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.backlog import FluidInputs, Gate, Stage, run_fluid, usl_factor
from analysis.calibrate import fit_profile, holdouts, in_sample
from analysis.forecast import apply_params, forecast, predict_point
from floor.vocabulary import GATES
from scenarios.curve import AccountsCurve
from scenarios.profile import load_profile

ROOT = Path(__file__).resolve().parents[1]
P = load_profile("casn2024")


def _inputs(
    n: int,
    *,
    stamping: np.ndarray,
    cap: np.ndarray,
    retry_after_s: float,
    persistence_s: float | None,
    p_retry: float = 0.85,
    **kw,
) -> FluidInputs:
    z = np.zeros(n)
    return FluidInputs(
        step_s=60.0,
        t0_s=0.0,
        arrivals={"registration": z, "ordering": z, "stamping": stamping},
        issuer_per_s=cap,
        payments_per_s=np.full(n, 50.0),
        stamps_per_applicant=1.0,
        patience_s=1200.0,
        retry_probability=p_retry,
        retry_after_s=retry_after_s,
        total_applicants=float(stamping.sum()),
        persistence_s=persistence_s,
        **kw,
    )


# ---------------------------------------------------------------- conservation, non-negativity
@st.composite
def surge_inputs(draw) -> FluidInputs:
    n = draw(st.integers(5, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.floats(0.0, 2000.0))
    arrivals = {g: rng.random(n) * scale * draw(st.floats(0, 1)) for g in GATES}
    cap = rng.random(n) * draw(st.floats(0.0, 40.0))
    cap[rng.random(n) < draw(st.floats(0, 0.5))] = 0.0
    unbounded = draw(st.booleans())
    return FluidInputs(
        step_s=60.0,
        t0_s=0.0,
        arrivals=arrivals,
        issuer_per_s=cap,
        payments_per_s=rng.random(n) * draw(st.floats(0.0, 40.0)),
        stamps_per_applicant=2.2,
        patience_s=draw(st.floats(30, 20000)),
        retry_probability=draw(st.floats(0, 1)),
        retry_after_s=draw(st.floats(30, 20000)),
        total_applicants=float(sum(a.sum() for a in arrivals.values())),
        persistence_s=draw(st.one_of(st.none(), st.floats(600, 30 * 86400))),
        return_weight=rng.random(n) * draw(st.floats(0, 3)),
        bypass_share=np.where(rng.random(n) < 0.5, draw(st.floats(0, 1)), 0.0),
        waste=unbounded,
        usl=(draw(st.floats(0, 0.5)), draw(st.floats(0, 0.01)), draw(st.floats(1, 100)))
        if unbounded
        else None,
        timeout_s=draw(st.floats(1, 600)),
    )


@settings(max_examples=80, deadline=None)
@given(
    surge_inputs(),
    st.lists(
        st.builds(
            lambda at, g: Stage(name="s", at_s=at, gates={"stamping": g}),
            st.floats(0, 18000),
            st.sampled_from(
                [Gate(mode="closed"), Gate(mode="open"), Gate(mode="rate", rate_per_s=2.0)]
            ),
        ),
        max_size=3,
    ),
)
def test_conservation_and_non_negativity(inp: FluidInputs, stages: list[Stage]) -> None:
    r = run_fluid(inp, sorted(stages, key=lambda s: s.at_s))
    for name, arr in [
        ("issuer_queue", r.issuer_queue),
        ("payments", r.payments_queue),
        ("ghost", r.ghost),
        *[(f"orbit {g}", a) for g, a in r.orbits.items()],
        *[(f"room {g}", a) for g, a in r.rooms.items()],
    ]:
        assert (arr >= -1e-9).all(), name
    assert (r.served_per_s <= r.issuer_capacity_per_s * (1 + 1e-12) + 1e-9).all()
    assert (np.diff(r.lost_cum) >= -1e-9).all() and (np.diff(r.bypass_cum) >= -1e-9).all()
    balance = r.arrived_cum - (r.done_cum + r.lost_cum + r.in_system)
    assert np.abs(balance).max() <= 1e-9 * max(1.0, inp.total_applicants) + 1e-6


def test_conservation_check_catches_a_leak() -> None:
    # A mutated component: drop the stamping orbit from in_system and the balance is off.
    f = forecast(P, step_s=300.0)
    r = f.result
    leaky = r.in_system - r.orbits["stamping"]
    assert np.abs(r.arrived_cum - r.done_cum - r.lost_cum - leaky).max() > 1000
    assert np.abs(r.arrived_cum - r.done_cum - r.lost_cum - r.in_system).max() < 1.0


# ---------------------------------------------------------------- two clocks of patience
def _closed_for_days(retry_after_s: float, persistence_s: float | None, days: float = 3.0) -> float:
    n = int(days * 1440)
    stamping = np.zeros(n)
    stamping[:60] = 1000.0  # 60,000 arrive in the first hour, while the issuer is down
    return run_fluid(
        _inputs(
            n,
            stamping=stamping,
            cap=np.zeros(n),
            retry_after_s=retry_after_s,
            persistence_s=persistence_s,
        )
    ).lost_cum[-1]


def test_loss_is_per_unit_of_time_not_per_attempt() -> None:
    # Halving the retry interval with the same persistence changes permanent loss by < 5 %.
    pers = 2 * 86400.0
    for days in (0.5, 3.0):
        a, b = _closed_for_days(9000.0, pers, days), _closed_for_days(4500.0, pers, days)
        assert abs(b / a - 1) < 0.05, (days, a, b)
    # The mutated (older) model, loss per attempt, fails the same property badly.
    a0, b0 = _closed_for_days(9000.0, None, 0.5), _closed_for_days(4500.0, None, 0.5)
    assert abs(b0 / a0 - 1) > 0.05, (a0, b0)


def test_halving_retry_interval_on_the_2024_profile() -> None:
    b = P.behaviour
    base = forecast(P, step_s=300.0).outcome()["lost"]
    half = forecast(
        P, step_s=300.0, params={"behaviour.retry_after_minutes": b.retry_after_minutes / 2}
    ).outcome()["lost"]
    assert abs(half / base - 1) < 0.05, (base, half)


def test_persistence_loss_matches_the_hazard() -> None:
    # Everyone deferred at a closed gate for T leaves for good with probability 1 - exp(-T /
    # persistence), however often they retry (each retry meets the closed gate and defers again).
    pers, days = 2 * 86400.0, 3.0
    for retry in (1800.0, 9000.0):
        lost = _closed_for_days(retry, pers, days)
        # arrivals spread over the first hour: mean time in orbit is days minus ~30 min
        expect = 60_000 * (1 - np.exp(-(days * 86400 - 1800) / pers))
        assert lost == pytest.approx(expect, rel=0.03), retry


# ---------------------------------------------------------------- demand from accounts
def test_demand_is_conversion_times_accounts_and_never_the_final_count() -> None:
    c = AccountsCurve(P)
    total = float(c.cumulative(c.span_s))
    assert total == pytest.approx(P.demand.conversion * P.demand.accounts[-1][1], rel=1e-9)
    lo, hi = P.ranges["demand.conversion"]
    assert lo * P.demand.accounts[-1][1] <= total <= hi * P.demand.accounts[-1][1]
    # readiness follows the accounts: more accounts early means more demand early
    more = dataclasses.replace(
        P.demand,
        accounts=(
            (P.demand.accounts[0][0], 0.0),
            (P.demand.accounts[1][0], P.demand.accounts[1][1] * 1.2),
        )
        + P.demand.accounts[2:],
    )
    c2 = AccountsCurve(dataclasses.replace(P, demand=more))
    t = P.calendar.seconds(P.demand.accounts[1][0])
    assert float(c2.cumulative(t)) > float(c.cumulative(t))


def test_in_sample_fit_within_5_percent() -> None:
    f = forecast(P)
    pts = in_sample(P)
    assert len(pts) == 2
    for pt in pts:
        assert abs(predict_point(f, pt) / pt.cumulative - 1) <= 0.05, pt.at


def test_in_sample_check_fails_when_demand_is_wrong() -> None:
    # The check can fail: twice the pull (applicants ready later) misses the in-sample points.
    f = forecast(P, params={"demand.pull": P.demand.pull * 2})
    assert max(abs(predict_point(f, pt) / pt.cumulative - 1) for pt in in_sample(P)) > 0.05


def test_the_fit_never_sees_the_holdouts() -> None:
    # Change every hold-out's published value: the fit does not move.
    moved = dataclasses.replace(
        P,
        calibration=tuple(
            dataclasses.replace(pt, cumulative=pt.cumulative * 3) if pt.role == "holdout" else pt
            for pt in P.calibration
        ),
    )
    assert len(holdouts(moved)) == len(holdouts(P)) >= 1
    a, b = fit_profile(P), fit_profile(moved)
    assert a.params == pytest.approx(b.params, rel=1e-9)
    assert a.max_abs_error <= 0.05


# ---------------------------------------------------------------- outage as it was
def test_sales_continue_in_the_outage_and_paid_stock_builds() -> None:
    f = forecast(P, step_s=300.0)
    r = f.result
    cal = P.calendar
    o = P.outages[0]
    a, b = cal.seconds(o.start), cal.seconds(o.end)
    during = (r.t_s >= a) & (r.t_s < b)
    assert r.payments_served_per_s[during].mean() > 0  # quota sales go on
    paid = r.orbits["stamping"] + r.rooms["stamping"] + r.issuer_queue
    assert paid[during][-1] > 10 * max(1.0, paid[r.t_s < a][-1])  # paid-but-unstamped stock builds
    assert (r.served_per_s[during] > 0).all()  # partial, not total
    k_byp = cal.seconds(P.bypass.at)
    assert r.bypass_cum[r.t_s < k_byp - 300].max() == 0 and r.bypass_cum[-1] > 0


def test_more_capacity_never_serves_fewer() -> None:
    served = [
        forecast(P, stamps_per_second=c, step_s=300.0).outcome()["served"]
        for c in (4, 6, 8.5, 12, 20, 40)
    ]
    assert all(b >= a - 1e-6 for a, b in zip(served, served[1:], strict=False)), served


def test_a_shorter_outage_never_serves_fewer() -> None:
    o = P.outages[0]
    served = []
    for hours in (60, 36, 12, 1):
        end = o.start + (o.end - o.start) * (hours / 60)
        served.append(forecast(P, outage=(o.start, end), step_s=300.0).outcome()["served"])
    assert all(b >= a - 1e-6 for a, b in zip(served, served[1:], strict=False)), served


# ---------------------------------------------------------------- extensions keep the past
def test_extension_keeps_the_past() -> None:
    d = P.calendar.seconds(P.outages[0].end)
    a = forecast(P, step_s=300.0)
    b = forecast(P, step_s=300.0, extend_days=2)
    na = len(a.result.t_s)
    before = a.result.t_s + 300.0 <= d
    arr_a = a.result.arrivals_per_s[:na][before]
    arr_b = b.result.arrivals_per_s[:na][before]
    assert np.array_equal(arr_a, arr_b)  # arrivals before the decision unchanged
    assert not np.allclose(
        a.result.arrivals_per_s[:na], b.result.arrivals_per_s[:na]
    )  # later ones move
    assert b.outcome()["arrived"] == pytest.approx(a.outcome()["arrived"], rel=1e-9)  # same people
    # Only the stated share retargets: the more re-aim
    # at the new close, the fewer arrive by the old one.
    by_old = [
        forecast(
            P, step_s=300.0, extend_days=2, params={"demand.retarget_share": r}
        ).result.arrived_cum[na - 1]
        for r in (0.0, P.demand.retarget_share, 1.0)
    ]
    assert by_old[0] > by_old[1] > by_old[2]
    assert (
        by_old[0] < a.result.arrived_cum[-1]
    )  # accounts opened after the decision aim at the new close


def test_extensions_are_whole_days() -> None:
    with pytest.raises(Exception, match="--extend"):
        forecast(P, extend_days=1.5)


# ---------------------------------------------------------------- overload physics
def _overload(**kw) -> float:
    n = 6 * 60
    return run_fluid(
        _inputs(
            n,
            stamping=np.full(n, 900.0),
            cap=np.full(n, 10.0),
            retry_after_s=600.0,
            persistence_s=86400.0,
            **kw,
        )
    ).served_cum[-1]


def test_wasted_work_and_usl_make_an_unbounded_issuer_serve_less() -> None:
    shed = _overload()
    waste = _overload(waste=True)
    usl = _overload(waste=True, usl=(0.05, 0.002, 20.0), timeout_s=30.0)
    assert waste < 0.95 * shed  # work on requests whose client has gone is wasted
    assert usl < waste  # past the USL peak throughput falls
    # pacing: a rate gate at the issuer's capacity in front of the same unbounded issuer restores it
    n = 6 * 60
    paced = run_fluid(
        _inputs(
            n,
            stamping=np.full(n, 900.0),
            cap=np.full(n, 10.0),
            retry_after_s=600.0,
            persistence_s=86400.0,
            waste=True,
            usl=(0.05, 0.002, 20.0),
            timeout_s=30.0,
        ),
        [
            Stage(
                name="pace",
                at_s=0.0,
                gates={"stamping": Gate(mode="rate", rate_per_s=10.0, room=0.0)},
            )
        ],
    )
    assert paced.served_cum[-1] > 1.3 * usl


def test_usl_factor_falls_past_the_peak() -> None:
    assert usl_factor(1.0, 0.05, 0.002, 20.0) == 1.0
    vals = [usl_factor(x, 0.05, 0.002, 20.0) for x in (1.5, 2, 4, 8)]
    assert all(b < a for a, b in zip(vals, vals[1:], strict=False)) and vals[0] < 1.0
    assert usl_factor(8.0, 0.0, 0.0, 20.0) == 1.0  # no contention, no coherency: nothing falls


def test_probe_capacity_feeds_the_usl() -> None:
    data = json.loads((ROOT / "tests/fixtures/runs/probe/capacity.json").read_text())
    from analysis.forecast import capacity_from_json

    cap = capacity_from_json(data)
    f = forecast(P, capacity=cap, overload="unbounded", step_s=300.0)
    assert f.result.inputs.usl == (cap.alpha, cap.beta, cap.peak_concurrency)
    assert f.result.inputs.waste
    shed = forecast(P, capacity=cap, overload="shed", step_s=300.0)
    assert f.outcome()["stamped"] < shed.outcome()["stamped"]


# ---------------------------------------------------------------- the command and its timeline
def _cli(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "surgecast", "forecast", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_forecast_command_writes_a_balanced_timeline(tmp_path: Path) -> None:
    out = tmp_path / "f"
    proc = _cli("--profile", "casn2024", "--out", str(out), tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "served" in proc.stdout and "in-sample" in proc.stdout
    doc = json.loads((out / "forecast.json").read_text())
    assert set(doc["outcome"]) == {"served", "lost", "waiting"}
    with (out / "timeline.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for col in (
        "calendar_at",
        "served_cum",
        "served_stamps_per_s",
        "lost_cum",
        "arrived_cum",
        "in_system",
        "room_registration",
        "room_ordering",
        "room_stamping",
        "orbit_registration",
        "orbit_ordering",
        "orbit_stamping",
        "payments_queue",
        "issuer_queue",
    ):
        assert col in rows[0], col
    worst = max(
        abs(
            float(r["arrived_cum"])
            - float(r["served_cum"])
            - float(r["lost_cum"])
            - float(r["in_system"])
        )
        for r in rows
    )
    assert worst <= 1.0
    # compartments add up to in_system
    comp = (
        "room_registration",
        "room_ordering",
        "room_stamping",
        "orbit_registration",
        "orbit_ordering",
        "orbit_stamping",
        "payments_queue",
        "issuer_queue",
    )
    assert max(abs(sum(float(r[c]) for c in comp) - float(r["in_system"])) for r in rows) <= 1.0
    # counts keep >= 10 significant digits: they read back as the model's values to 1e-11
    f = forecast(P)
    mid = len(rows) // 2
    for col, arr in (
        ("arrived_cum", f.result.arrived_cum),
        ("lost_cum", f.result.lost_cum),
        ("in_system", f.result.in_system),
    ):
        assert float(rows[mid][col]) == pytest.approx(float(arr[mid]), rel=1e-11), col
    last = rows[-1]
    assert float(last["served_cum"]) == pytest.approx(doc["outcome"]["served"], abs=0.1)
    assert float(last["in_system"]) == pytest.approx(doc["outcome"]["waiting"], abs=0.1)


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--extend", "36h"], "--extend"),
        (["--extend", "1.5d"], "--extend"),
        (["--stamps-per-second", "0"], "--stamps-per-second"),
        (["--stamps-per-second", "many"], "--stamps-per-second"),
        (["--outage", "2024-09-05T08:00/2024-09-03T08:00"], "--outage"),
        (["--outage", "2025-01-01T00:00/2025-01-02T00:00"], "--outage"),
        (["--capacity", "/nonexistent/capacity.json"], "--capacity"),
        (["--decided-at", "2024-09-05T20:00"], "--decided-at"),
        (["--extend", "2d", "--decided-at", "2023-01-01T00:00"], "--decided-at"),
    ],
)
def test_forecast_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], flag: str) -> None:
    out = tmp_path / "o"
    proc = _cli("--profile", "casn2024", *args, "--out", str(out), tmp=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert (
        flag in proc.stderr
        and len(proc.stderr.strip().splitlines()) == 1
        and "Traceback" not in proc.stderr
    )
    assert not out.exists()


def test_params_have_ranges_and_apply() -> None:
    for name in P.ranges:
        lo, hi = P.ranges[name]
        assert lo <= hi
        apply_params(P, {name: lo})
    assert apply_params(P, {"bypass.share": 0.3}).bypass.share == 0.3


@pytest.mark.parametrize(
    "closes",
    [
        None,
        [],
        [(16.8 * 86400, 23 * 86400.0), (16.8 * 86400, 25 * 86400.0)],
        [(17 * 86400.0, 23 * 86400.0), (19 * 86400.0, 25 * 86400.0)],
    ],
)
@pytest.mark.parametrize("retarget", [0.0, 0.5, 1.0])
def test_vectorised_readiness_equals_the_step_by_step_reference(closes, retarget) -> None:
    c = AccountsCurve(P, closes=closes, retarget=retarget)
    fast, slow = c._ready_fast(P), c._ready(P, 60.0)
    assert np.abs(np.cumsum(fast) - np.cumsum(slow)).max() < 1e-3
    assert (fast >= 0).all()


@pytest.mark.parametrize("pull", [60.0, 1e4])
def test_readiness_with_a_strong_pull_is_finite_and_equals_the_reference(pull) -> None:
    # k ln L passes a float's range from pull ~50 (L^k overflowed to inf, L^-k to 0: nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for closes in ([], None):
            kw = {} if closes is None else {"closes": closes}
            c = AccountsCurve(P, pull=pull, retarget=0.5, **kw)
            fast, slow = c._ready_fast(P), c._ready(P, 60.0)
            assert np.isfinite(fast).all() and (fast >= 0).all()
            assert np.abs(np.cumsum(fast) - np.cumsum(slow)).max() < 1e-3


@pytest.mark.parametrize("pull", [0.4725, 5.0, 30.0])
def test_the_stock_summed_in_logs_is_the_direct_sum_where_both_can_be_computed(pull) -> None:
    rng = np.random.default_rng(7)
    u = np.cumsum(rng.uniform(0.0, 120.0, 2001))
    uc = float(u[1500])  # the close falls inside the steps: the stock ends there
    flow = rng.uniform(0.0, 50.0, 2000)
    flow[700] = -30.0  # a retargeted share leaving
    left = np.maximum(uc - u, 0.0)
    direct = AccountsCurve._stock(flow, u, uc, pull)
    assert np.allclose(AccountsCurve._stock_in_logs(flow, left, pull), direct, rtol=1e-9, atol=1e-9)
    assert (direct[1500:] == 0).all() and direct[:1500].max() > 0


def test_fifo_waste_useful_work_stops_once_the_queue_outgrows_patience() -> None:
    # As measured on the testbed (docs/benchmarks.md): an unbounded FIFO issuer at twice its
    # capacity serves the same few useful requests whether the window is short or long.
    def useful(minutes: int, waste: bool) -> float:
        n = minutes
        return run_fluid(
            _inputs(
                n,
                stamping=np.full(n, 1200.0),
                cap=np.full(n, 10.0),
                retry_after_s=300.0,
                persistence_s=None,
                p_retry=0.5,
                waste=waste,
            )
        ).served_cum[-1]

    short, long = useful(60, True), useful(120, True)
    assert long - short < 0.05 * 10.0 * 3600  # almost nothing useful in the second hour
    assert useful(120, False) - useful(60, False) == pytest.approx(
        10.0 * 3600, rel=1e-6
    )  # shedding keeps serving


def test_calibrate_says_what_it_fitted_on() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "analysis.calibrate", "casn2024"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert (
        "in-sample points only" in out and "demand.pull" in out and "outages.capacity_factor" in out
    )
    fitted = [ln for ln in out.splitlines() if ln.strip().startswith("in-sample")]
    predicted = [ln for ln in out.splitlines() if ln.strip().startswith("holdout")]
    assert len(fitted) == len(in_sample(P)) and len(predicted) == len(holdouts(P))
    assert "never fitted on" in out
