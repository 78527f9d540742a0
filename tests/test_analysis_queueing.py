"""Erlang B/C/A against independent computations and published values."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest

from analysis.queueing import erlang_a, erlang_b, erlang_c, mmc


def erlang_c_factorial(c: int, a: Fraction) -> Fraction:
    """The textbook closed form with exact rational arithmetic (a different method from
    the recursion under test):  C = (a^c / c!) (c / (c - a)) / (sum_{k<c} a^k/k! + that)."""
    top = a**c / math.factorial(c) * Fraction(c) / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize("c", [11, 12, 15, 20])
def test_erlang_c_matches_exact_factorial_formula(c: int) -> None:
    exact = erlang_c_factorial(c, Fraction(10))
    assert erlang_c(c, 10.0) == pytest.approx(float(exact), rel=1e-12)


def test_erlang_c_published_table_values() -> None:
    # Erlang C tables, 10 erlangs (4 decimals as printed): 11 -> 0.6821, 12 -> 0.4494, 15 -> 0.1020.
    assert round(erlang_c(11, 10.0), 4) == 0.6821
    assert round(erlang_c(12, 10.0), 4) == 0.4494
    assert round(erlang_c(15, 10.0), 4) == 0.1020
    # Worked exercise: 120 customers/h, 3-minute service, 10 assistants (a = 6 erlangs);
    # the published solution reads P(wait) "about 0.10" off the Erlang C curve.
    assert erlang_c(10, 6.0) == pytest.approx(0.10, abs=0.005)
    # Erlang B table: 10 erlangs offered to 10 lines, blocking 0.2146.
    assert round(erlang_b(10, 10.0), 4) == 0.2146


def test_recursion_is_stable_for_large_systems() -> None:
    # 10,000 servers: the factorial formula would overflow floats; the recursion does not.
    c = erlang_c(10_000, 9_900.0)
    assert 0.0 < c < 1.0 and math.isfinite(c)


def test_mmc_wait_and_tail_formulas() -> None:
    r = mmc(arrival_rate=10.0, service_rate=1.0, servers=12)
    assert r.mean_wait == pytest.approx(r.p_wait / 2.0)
    assert r.mean_queue == pytest.approx(10.0 * r.mean_wait)  # Little
    t95 = r.wait_percentile(0.95)
    assert r.p_wait_longer(t95) == pytest.approx(0.05)
    assert mmc(arrival_rate=12.0, service_rate=1.0, servers=12).mean_wait == math.inf


def _chain_exact(
    lam: Fraction, mu: Fraction, c: int, theta: Fraction, n_max: int
) -> tuple[float, float]:
    """Stationary P(wait) and E[queue] of M/M/c+M from exact rationals, truncated at n_max."""
    p = [Fraction(1)]
    for n in range(1, n_max + 1):
        p.append(p[-1] * lam / (min(n, c) * mu + max(n - c, 0) * theta))
    z = sum(p)
    pw = sum(p[c:]) / z
    eq = sum(max(n - c, 0) * pn for n, pn in enumerate(p)) / z
    return float(pw), float(eq)


@pytest.mark.parametrize("lam", [8, 10, 14])  # under, at and over capacity (c mu = 10)
def test_erlang_a_against_exact_chain(lam: int) -> None:
    a = erlang_a(arrival_rate=lam, service_rate=1.0, servers=10, patience=4.0)
    pw, eq = _chain_exact(Fraction(lam), Fraction(1), 10, Fraction(1, 4), 250)
    assert a.p_wait == pytest.approx(pw, rel=1e-9)
    assert a.mean_queue == pytest.approx(eq, rel=1e-9)
    assert a.p_abandon == pytest.approx(eq / 4 / lam, rel=1e-9)
    assert 0 <= a.utilisation <= 1


def test_erlang_a_limits() -> None:
    # Patience -> infinity: Erlang C.  Heavy overload: the fluid limit (lambda - c mu)/theta.
    assert erlang_a(
        arrival_rate=10, service_rate=1, servers=12, patience=1e9
    ).p_wait == pytest.approx(erlang_c(12, 10.0), rel=1e-6)
    big = erlang_a(arrival_rate=2000, service_rate=1, servers=1000, patience=60)
    assert big.mean_queue == pytest.approx(1000 * 60, rel=0.01)
    assert big.throughput == pytest.approx(1000, rel=0.01)


# ---- Erlang A at planning scale (issue 9): O(c) closed form against the independent chain ----
@pytest.mark.parametrize(
    "lam, patience", [(6000.0, 100.0), (4900.0, 600.0), (5000.0, 3600.0), (4000.0, 60.0)]
)
def test_erlang_a_closed_form_matches_the_chain_at_c_5000(lam: float, patience: float) -> None:
    from analysis.queueing import erlang_a_chain

    a = erlang_a(arrival_rate=lam, service_rate=1.0, servers=5000, patience=patience)
    b = erlang_a_chain(arrival_rate=lam, service_rate=1.0, servers=5000, patience=patience)
    assert a.p_wait == pytest.approx(b.p_wait, rel=1e-8, abs=1e-14)
    assert a.mean_queue == pytest.approx(b.mean_queue, rel=1e-7, abs=1e-12)
    assert a.p_abandon == pytest.approx(b.p_abandon, rel=1e-7, abs=1e-15)
    assert a.utilisation == pytest.approx(b.utilisation, rel=1e-9)


def test_the_c_5000_check_can_fail() -> None:
    # A mutated formula (Erlang C's queue, ignoring abandonment) is far from the chain.
    from analysis.queueing import erlang_a_chain

    b = erlang_a_chain(arrival_rate=4990.0, service_rate=1.0, servers=5000, patience=60.0)
    c = mmc(arrival_rate=4990.0, service_rate=1.0, servers=5000)
    assert abs(c.mean_queue / b.mean_queue - 1) > 0.05


def test_erlang_a_long_patience_overload_is_the_fluid_limit() -> None:
    # lambda 6000, c 5000, one day of patience: the excess abandons, the queue is (λ − cμ)/θ.
    a = erlang_a(arrival_rate=6000.0, service_rate=1.0, servers=5000, patience=86400.0)
    assert a.p_abandon == pytest.approx(1000 / 6000, rel=1e-6)
    assert a.mean_queue == pytest.approx(1000 * 86400, rel=1e-6)
    assert a.throughput == pytest.approx(5000, rel=1e-9)
    huge = erlang_a(arrival_rate=6000.0, service_rate=1.0, servers=5000, patience=1e8)
    assert huge.p_abandon == pytest.approx(1000 / 6000, rel=1e-6)
    near = erlang_a(arrival_rate=4999.0, service_rate=1.0, servers=5000, patience=1e8)
    assert near.p_wait == pytest.approx(
        erlang_c(5000, 4999.0), rel=1e-3
    )  # patience -> inf: Erlang C


def test_queue_json_reports_erlang_b_as_p_block(capsys) -> None:
    from surgecast.cli import main

    assert (
        main(["queue", "--arrival-rate", "10", "--service-rate", "1", "--servers", "10", "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert round(out["p_block"], 4) == 0.2146
    assert (
        main(
            [
                "queue",
                "--arrival-rate",
                "6000",
                "--service-rate",
                "1",
                "--servers",
                "5000",
                "--patience",
                "1e8",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["p_abandon"] == pytest.approx(1 / 6, rel=1e-6) and 0 < out["p_block"] < 1
