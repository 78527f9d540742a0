"""The DES against theory (Little, Erlang C/A) and the fluid model against the DES."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.backlog import FluidInputs, run_fluid
from analysis.des import DesConfig, mmc_waits, nhpp_arrivals, poisson_arrivals, simulate
from analysis.queueing import erlang_a, mmc


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_littles_law_on_des_output(seed: int) -> None:
    """L = lambda W for the queue: L by sampling the number waiting on a fine time grid,
    lambda W from the attempts' own waits. Tolerance 2 %: sampling on a 0.5 s grid plus
    the edge effects of a finite run (the queue is not empty at the ends)."""
    rng = np.random.default_rng(seed)
    arr = poisson_arrivals(rate=9.5, count=100_000, rng=rng)
    res = simulate(arr, DesConfig(servers=10, service_rate=1.0, patience_s=3.0,
                                  retry_probability=0.5, retry_after_s=30.0), rng=rng)
    t_end = float(arr[-1])
    grid = np.arange(0.0, t_end, 0.5)
    l_time_avg = res.queue_at(grid).mean()
    inside = res.arrival < t_end
    lam_hat = inside.sum() / t_end
    w = np.minimum(res.leave_queue[inside], t_end) - res.arrival[inside]
    assert l_time_avg == pytest.approx(lam_hat * w.mean(), rel=0.02)


def test_des_matches_erlang_a_and_c() -> None:
    """Stationary M/M/c+M: abandonment and mean queue within 5 % of the exact chain
    (standard errors with 300k customers are about 1 %); M/M/c mean wait within 5 %."""
    rng = np.random.default_rng(7)
    arr = poisson_arrivals(rate=11.0, count=300_000, rng=rng)
    res = simulate(arr, DesConfig(servers=10, service_rate=1.0, patience_s=5.0), rng=rng)
    exact = erlang_a(arrival_rate=11.0, service_rate=1.0, servers=10, patience=5.0)
    assert res.abandoned.mean() == pytest.approx(exact.p_abandon, rel=0.05)
    assert res.mean_wait == pytest.approx(exact.mean_wait, rel=0.05)
    svc = rng.exponential(1.0, len(arr))
    arr9 = poisson_arrivals(rate=9.0, count=300_000, rng=rng)
    w = mmc_waits(arr9, svc, 10)
    assert w.mean() == pytest.approx(
        mmc(arrival_rate=9.0, service_rate=1.0, servers=10).mean_wait, rel=0.1
    )


def test_fast_path_equals_general_simulation() -> None:
    rng = np.random.default_rng(3)
    arr = poisson_arrivals(rate=4.5, count=5000, rng=rng)
    res = simulate(arr, DesConfig(servers=5, service_rate=1.0), rng=np.random.default_rng(9))
    w = mmc_waits(arr, res.service, 5)
    np.testing.assert_allclose(w, res.wait, atol=1e-9)


def test_outage_holds_every_start() -> None:
    rng = np.random.default_rng(5)
    arr = poisson_arrivals(rate=2.0, count=4000, rng=rng)
    res = simulate(arr, DesConfig(servers=3, service_rate=1.0, outages=((500.0, 800.0),)), rng=rng)
    starts = res.served
    assert not ((starts >= 500.0) & (starts < 800.0)).any()
    assert (starts == 800.0).sum() == 3  # every server starts at the reopening
    assert res.queue_at(np.array([799.0]))[0] > 450  # about 2/s x 300 s waited for it


def _drain(times: np.ndarray, q: np.ndarray) -> tuple[float, float]:
    k = int(np.argmax(q))
    below = np.nonzero(q[k:] <= 0.05 * q[k])[0]
    return float(q[k]), float(times[k + below[0]] - times[k])


def test_fluid_matches_des_on_a_surge() -> None:
    """A surge (10/s, 25/s for an hour) then a one-hour outage, 130 servers x 0.1/s,
    patience 1 h, 60 % retry after 30 min. At tens of thousands waiting the fluid limit
    holds (relative noise ~ 1/sqrt(queue) < 1 %), so peak backlog and drain time (peak to
    5 % of peak) must agree within 5 %; the rest of the gap is the 1-minute step."""
    step, n = 60.0, 14 * 60
    t = np.arange(n) * step
    lam = np.where((t >= 7200) & (t < 10800), 25.0, 10.0)
    cap = np.where((t >= 10800) & (t < 14400), 0.0, 13.0)
    z = np.zeros(n)
    fluid = run_fluid(
        FluidInputs(
            step_s=step,
            t0_s=0.0,
            arrivals={"registration": z, "ordering": z, "stamping": lam * step},
            issuer_per_s=cap,
            payments_per_s=np.full(n, 1e9),
            stamps_per_applicant=1.0,
            patience_s=3600.0,
            retry_probability=0.6,
            retry_after_s=1800.0,
            total_applicants=float((lam * step).sum()),
        )
    )
    grid = t + step
    f_peak, f_drain = _drain(grid, fluid.queue)
    rng = np.random.default_rng(2024)
    arr = nhpp_arrivals(lam * step, step_s=step, rng=rng)
    des = simulate(
        arr,
        DesConfig(
            servers=130,
            service_rate=0.1,
            patience_s=3600.0,
            retry_probability=0.6,
            retry_after_s=1800.0,
            outages=((10800.0, 14400.0),),
        ),
        rng=rng,
    )
    d_peak, d_drain = _drain(grid, des.queue_at(grid))
    assert f_peak > 30_000
    assert f_peak == pytest.approx(d_peak, rel=0.05)
    assert f_drain == pytest.approx(d_drain, rel=0.05)
    assert fluid.served_cum[-1] == pytest.approx(des.served_between(0, grid[-1]), rel=0.02)
