"""The harness's latency figures against a target with a known latency law (issue 14).

One real rehearsal (Locust, the default journey at 10 arrivals/s for 20 s: two stall periods)
against a real testbed whose `POST /v1/accounts` follows the law of testbed/latency_law.py:
50 ms, every 100th request 500 ms, a 2 s stall in every 10 s. The register step is the
applicant's first request, sent at the arrival's intended time, so:

* service clock: the harness's `register.service.hdr` percentiles against the server's own
  record of the same requests (answer sent − request received), within one HDR bucket
  (3 significant digits) plus `CLIENT_ALLOWANCE_S` for the loopback legs and the client
  process's scheduling, which the server cannot see (measured figures: docs/benchmarks.md);
* the target itself: request by request, its realised latency (sent − received) is the law
  recomputed here from the request's number and arrival, never early, p99 late at most
  `TARGET_LATE_P99_S`;
* intended clock: `register.intended.hdr` p90/p95/p99 within 5 % of the law applied to the
  run's own intended start times (`analysis.latency_truth.predicted_band`), which is
  what coordinated omission predicts for an open model: every arrival in a stall waits for
  its end. The prediction's resolution is one sample upward: a request whose answer was due
  just before a stall, sent a few ms late, is held to the stall's end (a CI run, 3 December:
  p90 +5.4 % from one such request, +0.2 % against the band).

Each check is shown able to fail: against a law with a 1.5 s stall or without its tail, and
against a "client" whose clock starts after the stall (a closed-loop tester's service clock).
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from analysis.latency_truth import (
    Law,
    band_gaps,
    hdr_of,
    law_latency,
    law_record,
    predicted_band,
    predicted_quantiles,
    rehearse,
    relative_gaps,
    service_clock_gaps,
)
from scenarios.latency import read_hdr
from testbed.process import TestbedServer
from tests.test_rehearse_runs import FAST_TESTBED

CLIENT_ALLOWANCE_S = 0.030  # loopback legs + the client's scheduling on a loaded 2-core machine
TARGET_LATE_P99_S = (
    0.050  # the target itself must keep its law this well (p99 of answer sent − law's time)
)
PCTS = (50, 90, 95, 99, 99.9)


def _unix(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def _one_run(tmp: Path) -> tuple[Path, list[list[float]]]:
    flags = sum((["--set", kv] for kv in [*FAST_TESTBED, "latency_law.enabled=true"]), [])
    with TestbedServer(port=0, extra_args=flags) as tb:
        r = rehearse(tb.url, tb.admin_token, rate=10, duration=20, seed=5, out=tmp, timeout=110)
        assert r.returncode == 0, r.stderr[-2000:] + r.stdout[-1000:]
        truth = law_record(tb.url, tb.admin_token)
    assert truth is not None and truth["columns"][-1] == "sent_unix"
    (tmp / "latency_truth.json").write_text(json.dumps(truth))
    return tmp, truth["requests"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One rehearsal; a second only if the loaded machine made the target break its own law."""
    for attempt in range(2):
        out, rows = _one_run(tmp_path_factory.mktemp(f"truth{attempt}"))
        late = float(np.percentile([s - a for _r, _n, _d, a, s in rows], 99))
        if late <= TARGET_LATE_P99_S:
            break
    assert late <= TARGET_LATE_P99_S, (
        f"the target answered {late * 1000:.0f} ms after its law (p99), twice"
    )
    return out, rows


def test_service_clock_matches_the_servers_record(run):
    out, rows = run
    harness = read_hdr(str(out / "latency" / "register.service.hdr"))
    truth = hdr_of([s - r for r, _n, _d, _a, s in rows])
    assert harness.get_total_count() == truth.get_total_count() == len(rows) > 150
    gaps = service_clock_gaps(harness, truth, PCTS, loopback_s=CLIENT_ALLOWANCE_S)
    assert all(g["ok"] for g in gaps), [
        (g["pct"], round(g["truth_s"], 4), round(g["diff_s"] * 1000, 2)) for g in gaps
    ]
    # against the law itself (answer due - received): the target's own lateness on top
    due = hdr_of([a - r for r, _n, _d, a, _s in rows])
    slack = CLIENT_ALLOWANCE_S + TARGET_LATE_P99_S
    assert all(g["ok"] for g in service_clock_gaps(harness, due, PCTS, loopback_s=slack))
    # the law is in the data: 1 % exactly at the tail, the stall's 20 % above 500 ms
    assert sum(1 for _r, _n, d, _a, _s in rows if d == 0.5) == len(rows) // 100
    assert truth.get_value_at_percentile(99) / 1e6 > 1.5
    # ... and the check can fail: against a law whose stall is 1.5 s, not 2 s
    short = Law(stall_s=1.5)
    wrong = hdr_of(
        law_latency(
            short, np.array([r for r, *_ in rows]), np.array([d for _r, _n, d, _a, _s in rows])
        )
    )
    assert not all(
        g["ok"] for g in service_clock_gaps(harness, wrong, PCTS, loopback_s=CLIENT_ALLOWANCE_S)
    )


def _free_of_stalls(law: Law, received: np.ndarray, delay: np.ndarray) -> np.ndarray:
    """Tail requests that no stall holds, under the law or under the law without its tail.

    A tail request received in a stall's last 0.45 s ends after the stall; without its tail
    it would be held to the stall's end, within 0.45 s of the truth (CI met one at 0.16 s).
    """
    tail = delay == law.tail_s
    held_tailed = law_latency(law, received, delay) >= law.tail_s + 0.01
    held_untailed = law_latency(law, received, law.base_s) >= law.base_s + 0.01
    return tail & ~held_tailed & ~held_untailed


def test_free_of_stalls_keeps_only_requests_that_tell_the_laws_apart():
    """Pure: stall in [8, 10) of every 10 s; a tail request at 9.662 ends at 10.162, unheld."""
    law = Law()
    received = np.array([1001.0, 1007.6, 1009.662, 1009.662, 1003.0])
    delay = np.array([law.tail_s] * 4 + [law.base_s])
    delay[3] = law.base_s
    assert _free_of_stalls(law, received, delay).tolist() == [True, False, False, False, False]
    # the CI case: unheld with its tail, but held to the stall's end without it, 0.162 s apart
    gap = law.tail_s - law_latency(law, received[2:3], law.base_s)[0]
    assert abs(gap - 0.162) < 1e-6


def test_the_target_answers_by_its_law(run):
    """Request by request, the server's realised latency is the law's, recomputed here."""
    _out, rows = run
    got = np.array([[r, n, s - r] for r, n, _d, _a, s in rows])
    received, n, realised = got[:, 0], got[:, 1].astype(int), got[:, 2]
    law = Law()
    delay = np.where(n % law.tail_every == law.tail_every - 1, law.tail_s, law.base_s)
    late = realised - law_latency(law, received, delay)
    assert late.min() > -1e-4, f"answered {-late.min() * 1000:.2f} ms before the law's time"
    assert np.percentile(late, 99) <= TARGET_LATE_P99_S
    # ... and the check can fail: a law with a 1.5 s stall is off by up to 0.5 s on the stalled
    wrong = realised - law_latency(Law(stall_s=1.5), received, delay)
    assert np.abs(wrong).max() > 0.4
    # ... and a law without its tail, wherever a stall swallows the request under neither law
    untailed = realised - law_latency(law, received, law.base_s)
    tail = delay == law.tail_s
    free = _free_of_stalls(law, received, delay)
    # the run's two tail requests are ~10 s apart, so the stalls swallow both about a quarter of
    # the time: then no request tells the laws apart, and only the law's own fit is asserted
    assert np.all(np.abs(untailed[free]) > 0.4) and np.all(np.abs(late[tail]) < TARGET_LATE_P99_S)


def test_intended_clock_shows_the_stall_as_coordinated_omission_predicts(run):
    out, rows = run
    with (out / "arrivals.csv").open(newline="") as f:
        starts = [_unix(a["intended_at"]) for a in csv.DictReader(f) if a["outcome"] != "dropped"]
    intended = read_hdr(str(out / "latency" / "register.intended.hdr"))
    assert intended.get_total_count() == len(starts)
    pcts = (90, 95, 99)
    measured = {p: intended.get_value_at_percentile(p) / 1e6 for p in pcts}
    gaps = band_gaps(measured, predicted_band(Law(), starts, pcts), tolerance=0.05)
    assert all(g["ok"] for g in gaps), [
        (g["pct"], round(g["low_s"], 4), round(g["high_s"], 4), round(g["error"], 4)) for g in gaps
    ]
    # ... and the check can fail: against the law with a stall half a second shorter or longer
    for stall_s in (1.5, 2.5):
        wrong = band_gaps(measured, predicted_band(Law(stall_s=stall_s), starts, pcts))
        assert not all(g["ok"] for g in wrong), (stall_s, wrong)
    # A closed-loop tester's clock starts when it finally sends, after the stall: it sees one
    # stalled request per connection, and its percentiles fall far below the prediction (red).
    law = Law()
    predicted = predicted_quantiles(law, starts, pcts)
    t = np.sort(np.array(starts))
    omitted = np.where(
        np.mod(t, law.stall_every_s) >= law.stall_every_s - law.stall_s,
        law.base_s,
        law_latency(law, t, law.base_s),
    )
    coordinated = {p: float(np.percentile(omitted, p)) for p in predicted}
    assert not all(g["ok"] for g in relative_gaps(coordinated, predicted, tolerance=0.05))


def test_one_request_sent_into_a_stall_is_within_the_band_and_two_are_not():
    """Pure: 5 arrivals/s for 20 s on a grid (two stalls, one sample every 0.1 s of their ramp:
    10 % at p90), the harness's clock computed from the law at each request's receive time.

    A request whose answer was due 2 ms before a stall, sent 4 ms late, is held to the stall's
    end; it moves the stall's quantiles up one sample, exactly to the band's upper edge: the
    point prediction alone calls that red, the band not. Two such requests are outside it: the
    band is one sample, not a free margin.
    """
    law = Law(tail_every=0)
    grid = np.concatenate([1000.01 + np.arange(0, 10, 0.2), 1010.11 + np.arange(0, 10, 0.2)])
    pcts = (90, 95, 99)

    def clock(lagged: list[float]) -> tuple[np.ndarray, dict[float, float]]:
        t = np.sort(np.concatenate([grid, lagged]))
        received = np.where(np.isin(t, lagged), t + 0.004, t)  # these are sent 4 ms late
        h = hdr_of(law_latency(law, received, law.base_s) + received - t)
        return t, {p: h.get_value_at_percentile(p) / 1e6 for p in pcts}

    def point_ok(lagged: list[float]) -> bool:
        t, got = clock(lagged)
        return all(g["ok"] for g in relative_gaps(got, predicted_quantiles(law, t, pcts)))

    def band_ok(lagged: list[float]) -> bool:
        t, got = clock(lagged)
        return all(g["ok"] for g in band_gaps(got, predicted_band(law, t, pcts)))

    one, two = [1007.948], [1007.948, 1017.949]
    assert point_ok([]) and band_ok([])
    t, got = clock(one)
    band = predicted_band(law, t, pcts)
    assert all(abs(got[p] - band[p][1]) <= 2e-3 for p in pcts), (got, band)  # one sample up
    assert not point_ok(one) and band_ok(one)
    assert not band_ok(two)
