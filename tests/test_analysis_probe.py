"""probe.csv -> capacity.json, on the fixture in tests/fixtures/probe/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis.probe import PROBE_COLUMNS, capacity_from_probe, read_probe_csv
from floor.errors import InputFileError

FIXTURE = Path(__file__).parent / "fixtures" / "probe" / "probe.csv"


def test_capacity_from_fixture() -> None:
    rows = read_probe_csv(FIXTURE)
    cap = capacity_from_probe(
        rows, configured={"issuer_workers": 4}, measured_at="2024-09-01T00:00:00.000Z"
    )
    json.dumps(cap)  # JSON-ready
    stamps = [r for r in rows if r["step"] == "stamps"]
    acceptable = [r["throughput_per_s"] for r in stamps if r["error_ratio"] <= 0.01]
    assert cap["stamps_per_second"] == max(acceptable)
    assert cap["excluded_levels"]["stamps"] == [32]  # 12 % errors at 32
    assert cap["peak_concurrency"]["stamps"] == 16
    u = cap["usl"]["stamps"]
    assert u["points"] == 5 and u["r2"] > 0.98
    assert u["alpha"] == pytest.approx(0.08, abs=0.03) and u["beta"] == pytest.approx(
        0.002, abs=0.001
    )
    assert "beyond the highest measured level" in u["note"]  # peak ~21 > 16: said, not used
    assert cap["usl"]["pay"]["alpha"] is None and "needs at least 4" in cap["usl"]["pay"]["note"]
    assert cap["configured"] == {"issuer_workers": 4}
    assert set(cap) >= {"stamps_per_second", "peak_concurrency", "usl", "configured", "measured_at"}


def test_no_stamps_rows_is_said_not_guessed() -> None:
    rows = [r for r in read_probe_csv(FIXTURE) if r["step"] != "stamps"]
    cap = capacity_from_probe(rows)
    assert cap["stamps_per_second"] is None and "no 'stamps' rows" in cap["note"]


def test_all_levels_failing() -> None:
    rows = [{**r, "error_ratio": 0.5} for r in read_probe_csv(FIXTURE) if r["step"] == "stamps"]
    cap = capacity_from_probe(rows)
    assert cap["stamps_per_second"] is None and cap["peak_concurrency"]["stamps"] is None


def test_bad_probe_csv(tmp_path) -> None:
    p = tmp_path / "probe.csv"
    p.write_text(",".join(PROBE_COLUMNS) + "\n1,stamps,10,0,0,abc,1,2,3,60\n")
    with pytest.raises(
        InputFileError, match=r"line 2, column throughput_per_s: 'abc' is not a number"
    ):
        read_probe_csv(p)
    p.write_text("concurrency,step\n1,stamps\n")
    with pytest.raises(InputFileError, match="missing column"):
        read_probe_csv(p)
    p.write_text(",".join(PROBE_COLUMNS) + "\n1.5,stamps,10,0,0,1,1,2,3,60\n")
    with pytest.raises(InputFileError, match="concurrency"):
        read_probe_csv(p)


def test_empty_percentiles_read_as_none_but_an_empty_rate_is_refused(tmp_path) -> None:
    # A level cut short by a signal has steps without a request: the probe writes their
    # percentiles empty. The rate and counts may never be empty.
    p = tmp_path / "probe.csv"
    p.write_text(
        ",".join(PROBE_COLUMNS) + "\n1,stamps,10,0,0,9.5,1,2,3,60\n2,upload,0,0,0,0,,,,1.5\n"
    )
    rows = read_probe_csv(p)
    assert rows[1]["p50_ms"] is None and rows[1]["p99_ms"] is None and rows[0]["p95_ms"] == 2.0
    p.write_text(",".join(PROBE_COLUMNS) + "\n1,stamps,10,0,0,,1,2,3,60\n")
    with pytest.raises(InputFileError, match="column throughput_per_s: '' is not a number"):
        read_probe_csv(p)


# ---- the levelling statistics, against theory and against the failure they exist to stop ----

from analysis.probe import (  # noqa: E402
    BATCH_COLUMNS,
    assess,
    dispersion,
    level_estimate,
    read_batches_csv,
)


def _batches(
    rng: np.random.Generator, n: int, rate: float, k: int, phase: str = "ladder"
) -> list[dict]:
    return [
        {
            "concurrency": n,
            "phase": phase,
            "start_unix": 0.0,
            "duration_s": 1.0,
            "stamps": float(rng.poisson(rate)),
            "server_stamps": None,
            "requests": 0.0,
            "errors": 0.0,
        }
        for _ in range(k)
    ]


def test_interval_covers_a_poisson_rate_as_stated() -> None:
    # A busy exponential issuer completes a Poisson stream: the 95 % interval of 30 one-second
    # batches must hold the true rate in about 95 % of seeded trials (binomial 3 sigma: 92-98 %).
    rng = np.random.default_rng(7)
    hits = 0
    trials = 600
    for _ in range(trials):
        b = _batches(rng, 32, 16.0, 30)
        e = level_estimate(b, spread=dispersion(b))
        hits += e.ci_low <= 16.0 <= e.ci_high
    assert 0.92 <= hits / trials <= 0.98, hits / trials
    # and it is not vacuous: half-width near 1.96 * sqrt(16 / 30) = 1.43 stamps/s
    assert e.ci_high - e.ci_low == pytest.approx(2 * 1.96 * (16 / 30) ** 0.5, rel=0.3)


def test_dispersion_tells_regular_from_poisson() -> None:
    rng = np.random.default_rng(3)
    d_poisson, df = dispersion(_batches(rng, 32, 16.0, 40))
    assert d_poisson == pytest.approx(1.0, abs=0.5) and df > 0
    regular = [{"concurrency": 32, "stamps": 20.0 + (i % 2), "duration_s": 1.0} for i in range(40)]
    assert dispersion(regular)[0] < 0.1


def test_dispersion_weighs_each_batch_by_its_seconds() -> None:
    # A Poisson stream of 16/s counted over batches of 0.2-1 s (the probe counts its last batch
    # only as far as the client has seen it): still Poisson, dispersion about 1 over 400 trials'
    # pooled batches (sd of the estimate about sqrt(2 / df), 0.02 here).
    rng = np.random.default_rng(5)
    rows = []
    for t in range(400):
        for d in (1.0, 1.0, 1.0, 0.2 + 0.8 * rng.random()):
            rows.append({"concurrency": t, "stamps": float(rng.poisson(16.0 * d)), "duration_s": d})
    d_mixed, df = dispersion(rows)
    assert df == 1200 and d_mixed == pytest.approx(1.0, abs=0.1)
    # the same batches read as if all were a second long (the count alone): each short batch
    # looks like a dip, and the stream looks over-dispersed (about 1.7 here)
    blind = dispersion([{**r, "duration_s": 1.0} for r in rows])[0]
    assert blind > 1.4, blind


def test_assess_calls_a_doubling_rise_and_a_plateau_flat() -> None:
    rng = np.random.default_rng(11)
    lo, hi, top = _batches(rng, 8, 8.0, 4), _batches(rng, 16, 16.0, 4), _batches(rng, 32, 16.0, 30)
    spread = dispersion(lo + hi + top)
    e8, e16, e32 = (level_estimate(b, spread=spread) for b in (lo, hi, top))
    assert assess(e8, e16) == "rising"
    assert (
        assess(e16, e32, final=True) in ("flat", "falling")
        or abs(e32.stamps_per_second / e16.stamps_per_second - 1) > 0.05
    )


def test_the_short_noisy_level_does_not_win_the_winners_curse() -> None:
    # What the old probe did: a 2-second ladder level that happened to read 21/s on a 16/s
    # issuer was "the peak". The held level (30 s at 16/s) is the capacity, with its interval.
    rng = np.random.default_rng(5)
    batches = (
        _batches(rng, 4, 8.0, 2)
        + _batches(rng, 8, 13.0, 2)
        + [{**b, "stamps": 21.0} for b in _batches(rng, 16, 16, 2)]
        + _batches(rng, 32, 16.0, 3)
        + _batches(rng, 64, 16.0, 30, "hold")
    )
    batches = _with_queue(
        batches, {4: 0, 8: 0, 16: 2, 32: 10, 64: 40}
    )  # the issuer saturated from 32
    cap = capacity_from_probe([], batches=batches, configured_stamps_per_second=16.0)
    assert cap["levelled"] is True and cap["capacity_concurrency"] == 64
    assert cap["stamps_per_second"] == pytest.approx(16.0, rel=0.1)
    assert cap["ci_low"] < cap["stamps_per_second"] < cap["ci_high"]
    assert cap["error_vs_configured"] == pytest.approx(cap["stamps_per_second"] / 16 - 1, abs=1e-3)
    # mutated: the old rule (the highest level) would have said 21
    assert max(lv["stamps_per_second"] for lv in cap["levels"]) >= 20.9


def test_still_rising_at_the_top_is_not_called_a_peak() -> None:
    rng = np.random.default_rng(2)
    batches = (
        _batches(rng, 1, 4.0, 3)
        + _batches(rng, 2, 8.0, 3)
        + _batches(rng, 4, 16.0, 3)
        + _batches(rng, 8, 32.0, 20, "hold")
    )
    cap = capacity_from_probe([], batches=batches)
    assert (
        cap["levelled"] is False and cap["stamps_per_second"] is None and cap["limited_by"] is None
    )
    assert "not levelled by the top level (concurrency 8)" in cap["note"]
    assert cap["highest_measured"]["concurrency"] == 8


def test_batches_csv_round_trip_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "probe_batches.csv"
    p.write_text(",".join(BATCH_COLUMNS) + "\n4,hold,1700000000.5,1.0,16,15,40,0\n")
    b = read_batches_csv(p)
    assert b[0]["server_stamps"] == 15.0 and b[0]["phase"] == "hold"
    p.write_text(",".join(BATCH_COLUMNS) + "\n4,warm,1700000000.5,1.0,16,,40,0\n")
    with pytest.raises(InputFileError, match="column phase: 'warm'"):
        read_batches_csv(p)
    p.write_text(",".join(BATCH_COLUMNS) + "\n4,hold,1700000000.5,0,16,,40,0\n")
    with pytest.raises(InputFileError, match="column duration_s: '0' must be a finite number > 0"):
        read_batches_csv(p)
    # a file written before the probe measured its lateness: no late_s column, read as not late
    p.write_text(",".join(BATCH_COLUMNS[:-1]) + "\n4,hold,1700000000.5,1.0,16,,40,0,,\n")
    assert BATCH_COLUMNS[-1] == "late_s" and read_batches_csv(p)[0]["late_s"] is None
    p.write_text(",".join(BATCH_COLUMNS) + "\n4,hold,1700000000.5,1.0,16,,40,0,,,soon\n")
    with pytest.raises(InputFileError, match="column late_s: 'soon' is not a number"):
        read_batches_csv(p)


def test_report_shows_the_interval_and_the_configured_capacity(tmp_path: Path) -> None:
    import shutil

    from floor import atomic
    from reports.build import build_report

    run = tmp_path / "probe"
    # capacity.json is rewritten below: leave out the manifest, which would refuse the edited file
    shutil.copytree(
        Path(__file__).parent / "fixtures" / "runs" / "probe",
        run,
        ignore=shutil.ignore_patterns("manifest.json"),
    )
    rng = np.random.default_rng(4)
    batches = (
        _batches(rng, 8, 12.0, 3) + _batches(rng, 16, 16.0, 3) + _batches(rng, 32, 16.0, 30, "hold")
    )
    batches = [{**b, "server_queue": 0.0 if b["concurrency"] == 8 else 9.0} for b in batches]
    cap = capacity_from_probe(
        read_probe_csv(run / "probe.csv"),
        batches=batches,
        max_error_ratio=1.0,
        configured_stamps_per_second=16.0,
    )
    atomic.write_json(run / "capacity.json", cap)
    html = build_report(run, lang="en").paths[0].read_text()
    assert "configured 16/s" in html and "95% interval" in html
    html_id = build_report(run, lang="id").paths[0].read_text()
    assert "terkonfigurasi 16/detik" in html_id


# ---- levelling needs evidence: a flat step, or the issuer's queue and no significant rise ----

from analysis.probe import queued_levels  # noqa: E402


def _with_queue(batches: list[dict], queue: dict[int, int]) -> list[dict]:
    return [{**b, "server_queue": float(queue[b["concurrency"]])} for b in batches]


def test_a_short_inconclusive_step_levels_only_where_stamps_queue() -> None:
    # The knee: 16 and 32 applicants on a 16/s issuer, 3 ladder seconds at 16 and a 30-s hold at 32.
    # The step 16 -> 32 cannot be shown flat from 3 seconds of Poisson counts; what shows that
    # 32 is saturated is the issuer's queue at its batch edges.
    rng = np.random.default_rng(8)
    ladder = [
        {**b, "stamps": x}
        for b, x in zip(_batches(rng, 16, 15, 3), (15.0, 17.0, 14.0), strict=True)
    ]
    base = _batches(rng, 8, 10.0, 3) + ladder + _batches(rng, 32, 16.0, 30, "hold")
    queued = capacity_from_probe([], batches=_with_queue(base, {8: 0, 16: 3, 32: 20}))
    assert queued["levelled"] is True and queued["capacity_concurrency"] == 32, queued["steps"]
    assert queued["queued_levels"] == [16, 32] and queued["steps"][-1]["significant"] == "undecided"
    # mutated: no queue anywhere (a client that cannot
    # drive the issuer): the same rates are not a peak
    idle = capacity_from_probe([], batches=_with_queue(base, {8: 0, 16: 0, 32: 0}))
    assert idle["levelled"] is False and idle["stamps_per_second"] is None, idle["steps"]


def test_a_significant_rise_into_a_queued_level_is_not_a_peak() -> None:
    # Stamps queue at 16 and 32, but 32 does 40 % more
    # than 16: still rising, whatever the queue says.
    rng = np.random.default_rng(9)
    base = _batches(rng, 16, 16.0, 6) + _batches(rng, 32, 22.4, 30, "hold")
    cap = capacity_from_probe([], batches=_with_queue(base, {16: 5, 32: 30}))
    assert cap["steps"][-1]["verdict"] == "rising"
    assert cap["levelled"] is False and cap["stamps_per_second"] is None
    # the knee crossed: from 16 without a queue into 32 where the server's queue never emptied
    knee = capacity_from_probe([], batches=_with_queue(base, {16: 0, 32: 30}))
    assert knee["levelled"] is True and knee["capacity_concurrency"] == 32
    # two saturated levels that differ by the machine's drift, not by 40 %: CI's demo probe read
    # 14.4/s for 3 s at 16 and 16.3/s held at 32 on a 16/s testbed, the server's queue never empty
    drift = [
        {**b, "stamps": x} for b, x in zip(_batches(rng, 16, 14.4, 3), (14, 15, 14), strict=True)
    ]
    drift += [
        {**b, "stamps": 16.0 + k % 2} for k, b in enumerate(_batches(rng, 32, 16, 20, "hold"))
    ]
    drifted = capacity_from_probe([], batches=_with_queue(drift, {16: 5, 32: 20}))
    assert drifted["steps"][-1]["significant"] == "rising", drifted["steps"]  # 16.5 / 14.33: +15 %
    assert drifted["levelled"] is True and drifted["capacity_concurrency"] == 32, drifted["note"]
    assert drifted["stamps_per_second"] == 16.5
    # but the same rise seen only through the client's waits is not enough
    rows = [
        {
            "concurrency": n,
            "step": "stamps",
            "requests": 10,
            "errors": 0,
            "error_ratio": 0.0,
            "throughput_per_s": x,
            "p50_ms": w,
            "p95_ms": w,
            "p99_ms": w,
            "duration_s": 6.0,
        }
        for n, x, w in [(16, 16.0, 400.0), (32, 22.4, 1600.0)]
    ]
    client = capacity_from_probe(rows, batches=base)
    assert client["queued_levels"] == [32] and client["levelled"] is False


def test_queued_levels_needs_a_queue_at_most_edges() -> None:
    edges = [(16, q) for q in (4, 0, 3)] + [(32, q) for q in [9] * 19 + [0]] + [(64, 0)] * 5
    b = [{"concurrency": n, "server_queue": float(q)} for n, q in edges]
    assert queued_levels(b, {}) == {32}  # 16: one edge in 3 found none
    # without the server's figures: the client's median waits, 3x the least
    assert queued_levels([], {1: 500.0, 16: 1200.0, 32: 1600.0}) == {32}


def _stalled_probe() -> list[dict]:
    """A 16/s issuer probed 8 -> 16 -> 32 (held), the client stalled for 1.5 s in every 4th
    hold batch: the issuer's queue is empty at the stalled edge, and the batch after it starts
    with idle workers (12 stamps, not 16)."""
    rows = [
        {
            "concurrency": 8,
            "phase": "ladder",
            "stamps": 8,
            "duration_s": 1.0,
            "server_queue": 0,
            "late_s": 0.003,
        }
    ] * 3
    rows += [
        {
            "concurrency": 16,
            "phase": "ladder",
            "stamps": s,
            "duration_s": 1.0,
            "server_queue": 4,
            "late_s": 0.004,
        }
        for s in (16, 15, 17)
    ]
    for k in range(16):
        stall, recovery = k % 4 == 1, k % 4 == 2
        rows.append(
            {
                "concurrency": 32,
                "phase": "hold",
                "stamps": 28 if stall else 12 if recovery else 16 + (k % 2),
                "duration_s": 2.5 if stall else 1.0,
                "server_queue": 0 if stall else 20,
                "late_s": 1.5 if stall else 0.005,
            }
        )
    return rows


def test_batches_the_client_stalled_in_are_left_out() -> None:
    rows = _stalled_probe()
    cap = capacity_from_probe([], batches=rows, configured_stamps_per_second=16.0)
    assert cap["levelled"] is True and cap["capacity_concurrency"] == 32, cap["note"]
    assert cap["stalled_batches"] == 8 and "client stalled" in cap["note"]
    assert cap["stamps_per_second"] == 16.5  # the 8 steady hold batches: 16 and 17 in turn
    assert 32 in cap["queued_levels"]
    # The mutant: the same batches with the lateness unknown (the rule cannot see the stalls):
    # a quarter of the edges show an empty queue, so 32 is not queued, and the stalls and their
    # recoveries read as the target's: 13.3/s at 32, its interval (11.9-14.6) short of the true
    # 16/s, a step down from 16 that is flat with confidence (so levelled, at the wrong figure).
    # (A duration-blind dispersion had made the same batches too noisy to level at all.)
    blind = capacity_from_probe([], batches=[{**b, "late_s": None} for b in rows])
    assert blind["stalled_batches"] == 0 and 32 not in blind["queued_levels"], blind
    assert blind["levelled"] is False or blind["ci_high"] < 16.0, blind
    # and a level whose steady edges show no queue is still not levelled: the rule hides only
    # what the stall did, not a target that ran dry
    dry = [{**b, "server_queue": 0} if b["concurrency"] == 32 else b for b in rows]
    assert capacity_from_probe([], batches=dry)["levelled"] is False


def test_every_batch_stalled_is_said_and_nothing_measured() -> None:
    rows = [
        {
            "concurrency": n,
            "phase": "ladder",
            "stamps": 5,
            "duration_s": 2.0,
            "server_queue": 0,
            "late_s": 1.0,
        }
        for n in (1, 2, 4)
    ]
    cap = capacity_from_probe([], batches=rows)
    assert cap["stamps_per_second"] is None and cap["stalled_batches"] == 3
    assert cap["note"].startswith("every one of the 3 batches was stalled"), cap["note"]
