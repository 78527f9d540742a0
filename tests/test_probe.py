"""The capacity probe against testbeds whose capacity is known, and its bad inputs.

The testbed's capacity is configured (workers / mean service time), and its
issuer counts its own completions (/admin/metrics), so every probe here is
checked twice: against the configured truth and against what the server did.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from stall import stalling
from testbed_fixtures import FAST

from analysis.probe import capacity_from_probe, read_batches_csv
from scenarios.target import AdminClient
from testbed.process import TestbedServer


def _surgecast(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "surgecast", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _probe(
    tmp_path: Path, workers: int, service: str, *flags: str
) -> tuple[subprocess.CompletedProcess[str], dict]:
    with TestbedServer(
        extra_args=[*FAST, "--issuer-workers", str(workers), "--issuer-service", service]
    ) as tb:
        proc = _surgecast(
            "probe",
            "--host",
            tb.url,
            f"--admin-token={tb.admin_token}",
            "--out",
            str(tmp_path),
            *flags,
        )
    assert tb.admin_token not in (tmp_path / "capacity.json").read_text()
    return proc, json.loads((tmp_path / "capacity.json").read_text())


def _probe_on(
    tb: TestbedServer, out: Path, *flags: str
) -> tuple[subprocess.CompletedProcess[str], dict]:
    proc = _surgecast(
        "probe", "--host", tb.url, f"--admin-token={tb.admin_token}", "--out", str(out), *flags
    )
    return proc, json.loads((out / "capacity.json").read_text())


@pytest.fixture(scope="module")
def const20() -> Iterator[TestbedServer]:
    """2 workers x constant 0.1 s = 20 stamps/s: a regular issuer, so the count has little noise."""
    with TestbedServer(
        extra_args=[*FAST, "--issuer-workers", "2", "--issuer-service", "constant:0.1"]
    ) as tb:
        yield tb


@pytest.mark.timeout(150)
def test_probe_finds_a_constant_capacity_within_5_percent(
    tmp_path: Path, const20: TestbedServer
) -> None:
    proc, cap = _probe_on(const20, tmp_path, "--budget", "25")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert cap["configured_stamps_per_second"] == 20.0
    assert cap["levelled"] is True and cap["limited_by"] == "throughput"
    assert abs(cap["error_vs_configured"]) <= 0.05, cap
    assert cap["ci_low"] <= cap["stamps_per_second"] <= cap["ci_high"]
    # the client's count of stamps it saw done agrees with the issuer's own counter
    assert abs(cap["client_vs_server"]) <= 0.02, cap
    # the peak is not the top level: the ladder went
    # past the knee and held a level where stamps queue
    assert cap["capacity_concurrency"] < cap["parameters"]["max_concurrency"]
    assert cap["capacity_concurrency"] in cap["queued_levels"]
    assert cap["parameters"]["wall_s"] < 60
    with open(tmp_path / "probe.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    stamps = [r for r in rows if r["step"] == "stamps"]
    levels = [int(r["concurrency"]) for r in stamps]
    # 1 first; then x4 while the issuer's queue stays empty (below the knee), x2 once stamps queue
    assert levels == sorted(levels) and levels[0] == 1 and len(levels) >= 3
    assert {r["step"] for r in rows} >= {
        "register",
        "login",
        "order",
        "pay",
        "stamp",
        "poll_stamp",
        "download",
        "journey",
        "stamps",
    }
    batches = read_batches_csv(tmp_path / "probe_batches.csv")
    assert {b["phase"] for b in batches} == {"ladder", "hold"}
    held = [b for b in batches if b["concurrency"] == cap["capacity_concurrency"]]
    # the hold, not a 3-second ladder window: min_batches (3) held at least before a precision
    # stop (a regular issuer's interval is tight early), and to its budget otherwise
    hold = [b for b in held if b["phase"] == "hold"]
    assert len(hold) >= 3 and sum(b["duration_s"] for b in held) >= 6, held
    if cap["hold_stopped_by"] == "budget":
        assert sum(b["duration_s"] for b in held) >= 8, held
    assert "sustainable capacity" in proc.stdout and "configured capacity: 20" in proc.stdout
    # A probe that stops too early must be caught: the same run cut before the first level where
    # stamps queued (its ladder below the knee, the last level held longest) is not levelled.
    knee = min(cap["queued_levels"])
    early = [b for b in batches if b["concurrency"] < knee]
    last = max(b["concurrency"] for b in early)
    early += [{**b, "phase": "hold"} for b in early if b["concurrency"] == last] * 4
    cut = capacity_from_probe([], batches=early, configured_stamps_per_second=20.0)
    assert cut["levelled"] is False and cut["stamps_per_second"] is None, cut["steps"]


@pytest.mark.timeout(150)
def test_a_slowed_issuer_fails_the_5_percent_check(tmp_path: Path, const20: TestbedServer) -> None:
    # The check can fail: the same testbed with its issuer slowed by 1.25 (a mutant issuer: it
    # serves 16/s while its configuration still says 20/s). The probe measures what the issuer
    # does, so its error against the configured figure is about -20 %, far outside 5 %.
    admin = AdminClient(const20.url, token=const20.admin_token)
    admin.faults(issuer_slow_factor=1.25)
    try:  # another seed: other applicants than the first probe's on this testbed
        proc, cap = _probe_on(const20, tmp_path, "--budget", "25", "--seed", "2")
    finally:
        admin.faults(issuer_slow_factor=1.0)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert cap["configured_stamps_per_second"] == 20.0 and cap["levelled"] is True
    assert abs(cap["error_vs_configured"]) > 0.05, cap
    assert cap["stamps_per_second"] == pytest.approx(16.0, rel=0.05), cap
    assert abs(cap["client_vs_server"]) <= 0.02, cap


@pytest.mark.timeout(150)
def test_a_stalling_client_does_not_move_the_capacity(
    tmp_path: Path, const20: TestbedServer
) -> None:
    """The probe's own process stopped (SIGSTOP) for 1.5 s every 4 s, as an overloaded machine
    stops it: its batches then read the client, not the target (the issuer's queue drains while
    the client sleeps, and idles after it until the applicants reach it again). Those batches
    are left out (`late_s`, `stalled_batches`), and the probe still levels with the issuer's 20/s
    inside its interval. Without the rule the same batches read less (the recovery batches) or
    do not level."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "surgecast",
            "probe",
            "--host",
            const20.url,
            f"--admin-token={const20.admin_token}",
            "--out",
            str(tmp_path),
            # 35 s, not the unstalled tests' 25: with a quarter to half of the batches left out,
            # a fresh-venv run at 25 s reached only concurrency 8 (still rising, 19.0/s) and
            # could not level
            "--budget",
            "35",
            "--seed",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        with stalling(proc, stop_s=1.5, every_s=4.0):
            out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err
    cap = json.loads((tmp_path / "capacity.json").read_text())
    # a quarter of the batches are left out, so the interval is wide (half-width 9-16 % seen): the
    # check is that it levelled, that its 95 % interval holds the truth, and that it is near it
    # (a fresh-machine run read -8.5 % with an interval of 15.4-21.2)
    assert cap["levelled"] is True and cap["ci_low"] <= 20.0 <= cap["ci_high"], cap
    assert abs(cap["error_vs_configured"]) <= 0.10, cap
    assert cap["stalled_batches"] >= 2 and "client stalled" in cap["note"], cap
    # the client's count of the steady batches is the server's, within 5 % here (2 % unstalled):
    # each stall splits the steady batches, and each split adds the two counters' edge mismatch
    assert abs(cap["client_vs_server"]) <= 0.05, cap
    batches = read_batches_csv(tmp_path / "probe_batches.csv")
    late = [b for b in batches if b["late_s"] > 0.25]
    assert late and all(b["late_s"] < 3 for b in late)  # the stalls, as long as they were
    bare = capacity_from_probe(
        [], batches=[{**b, "late_s": None} for b in batches], configured_stamps_per_second=20.0
    )
    assert bare["stamps_per_second"] is None or bare["stamps_per_second"] < cap["stamps_per_second"]


@pytest.mark.timeout(150)
def test_probe_finds_the_default_testbeds_capacity_within_5_percent(tmp_path: Path) -> None:
    """The demo's testbed as configured by default: 4 workers x lognormal (mean 0.25 s,
    sigma 0.2) = 16 stamps/s, the demo's probe settings (--budget 40).

    Why +-5 % is a fair bound here: c busy renewal servers complete N stamps in t s with
    Var N ~ lambda*t*CV^2, CV^2 = exp(0.04) - 1 = 0.041. The hold gets at least 40 % of the
    budget (16 s) unless its interval is tighter first, so N >= ~256 and sd <= 1.3 %: +-5 %
    is about 4 sd, and the client's count is within 2 % of the server's. A wrong probe
    fails it: the same check on the issuer slowed by 1.25 reads -20 % (the test below)."""
    with TestbedServer(extra_args=FAST) as tb:
        proc, cap = _probe_on(tb, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert cap["configured"]["issuer"]["service"]["distribution"] == "lognormal"
    assert cap["configured_stamps_per_second"] == 16.0 and cap["levelled"] is True
    assert abs(cap["error_vs_configured"]) <= 0.05, cap
    assert abs(cap["client_vs_server"]) <= 0.02, cap
    assert cap["hold_stopped_by"] in ("precision", "budget"), cap
    if cap["hold_stopped_by"] == "precision":  # it says why it stopped, and it is true
        assert (cap["ci_high"] - cap["ci_low"]) / 2 / cap["stamps_per_second"] <= 0.025, cap
    assert cap["parameters"]["precision"] == 0.025 and cap["parameters"]["wall_s"] < 60


@pytest.mark.timeout(150)
def test_probe_on_an_exponential_issuer_is_the_servers_count_and_covers_the_truth(
    tmp_path: Path,
) -> None:
    # 4 workers x exponential 0.25 s = 16 stamps/s (no longer the default), the demo's settings.
    # Completions of a busy exponential issuer are Poisson: in the ~15-25 s held their count
    # alone varies by 5-6 % (one sigma; +-5 % on every run would need ~3,600 completions, about
    # 4 min at 16/s: docs/benchmarks.md), so the check is that the probe measured what the
    # server did (2 %) and that its 99 % interval holds the configured truth, an interval that
    # is not vacuous (half-width <= 20 %). The +-5 % check against the configured capacity is
    # the constant issuer's above, and the slowed issuer shows it can fail.
    proc, cap = _probe(tmp_path, 4, "exponential:0.25", "--confidence", "0.99")
    assert proc.returncode == 0, proc.stderr
    assert cap["configured_stamps_per_second"] == 16.0 and cap["levelled"] is True
    assert abs(cap["client_vs_server"]) <= 0.02, cap
    assert cap["ci_low"] <= 16.0 <= cap["ci_high"], cap
    assert (cap["ci_high"] - cap["ci_low"]) / 2 / cap["stamps_per_second"] <= 0.2, cap
    assert cap["capacity_concurrency"] >= 16  # 4 workers need a queue: more than 8 applicants


@pytest.mark.timeout(90)
def test_a_target_that_never_levels_is_flagged_not_peaked(tmp_path: Path) -> None:
    # 64 workers x 0.05 s = 1280 stamps/s: far beyond 4 applicants, so throughput rises at every
    # level. Too good to be true: the probe must not call its top level the peak.
    proc, cap = _probe(tmp_path, 64, "constant:0.05", "--max-concurrency", "4", "--budget", "15")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (
        cap["levelled"] is False and cap["stamps_per_second"] is None and cap["limited_by"] is None
    )
    # either reason names the top level: "(concurrency 4): throughput was still rising", or, when
    # the step into it was not shown significant, "(concurrency 4, R stamps/s): ... not shown
    # flat" (seen once in CI, 4 December: 12.5 stamps/s at 4); neither calls it the peak
    assert "not levelled by the top level (concurrency 4" in cap["note"], cap["note"]
    assert "not levelled by the top level" in proc.stderr and "Traceback" not in proc.stderr
    assert cap["highest_measured"]["concurrency"] == 4
    assert cap["steps"] and all(s["gain"] > 0.25 for s in cap["steps"]), cap["steps"]
    assert cap["steps"][-1]["significant"] == "rising", cap["steps"]
    assert cap["parameters"]["stopped"] == "top"


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--step-duration", "0"], "--step-duration"),
        (["--max-concurrency", "0"], "--max-concurrency"),
        (["--max-error-ratio", "2"], "--max-error-ratio"),
        (["--budget", "1"], "--budget"),
        (["--confidence", "1"], "--confidence"),
        (["--batch", "5", "--step-duration", "2"], "--batch"),
        (["--host", "http://10.1.2.3:8080"], "--host"),
    ],
)
def test_probe_bad_flags_are_one_line_exit_2(tmp_path: Path, args: list[str], flag: str) -> None:
    out = tmp_path / "out"
    proc = _surgecast("probe", *args, "--out", str(out), timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and flag in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())
