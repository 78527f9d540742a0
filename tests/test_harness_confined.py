"""The harness stays confined to its target and
bounded in time and memory, and says how a run ended.

Real loopback servers: a real testbed behind `FaultyFront` (which redirects to another origin,
trickles, answers huge or wrong-typed bodies, or errors, path by path) and a `Sink` on another port
of 127.0.0.1 (another origin) that records every request it receives with its Authorization header.
Each rehearsal is a real `surgecast rehearse` process with real Locust; every bound is in time.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from floor.jsonhttp import BodyTooLarge, DeadlineExceeded, JsonClient, RedirectRefused
from testbed.process import TestbedServer
from tests.fault_front import FaultyFront, Sink

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
FAST = ["--set", 'security.password_hash="pbkdf2"', "--set", "security.pbkdf2_iterations=1000"]


def _surgecast(*args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "surgecast", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return r, time.monotonic() - t0


def _rehearse(
    host: str, out: Path, *extra: str, duration: str = "4", timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], float]:
    return _surgecast(
        "rehearse",
        "--arrival-rate",
        "3",
        "--duration",
        duration,
        "--host",
        host,
        "--out",
        str(out),
        "--quiet",
        *extra,
        timeout=timeout,
    )


def _lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.strip().splitlines() if ln.strip()]


@pytest.fixture(scope="module")
def tb():
    with TestbedServer(port=0, admin_token=TOKEN, extra_args=FAST) as server:
        yield server


# ---- the client module itself -------------------------------------------------------------------
def test_client_refuses_a_redirect_to_another_origin_and_never_sends_it_the_token(
    tb: TestbedServer,
) -> None:
    with Sink() as sink, FaultyFront(tb.url, {"/admin/": ("redirect", sink.url)}) as front:
        c = JsonClient(front.url, token=TOKEN, deadline_s=5)
        with pytest.raises(RedirectRefused) as e:
            c.request("GET", "/admin/config")
        assert sink.url.rsplit(":", 1)[1] in str(e.value) and TOKEN not in str(e.value)
        assert sink.requests == []
        assert c.refused  # kept for the caller to report


def test_client_total_deadline_cuts_a_trickle(tb: TestbedServer) -> None:
    with FaultyFront(tb.url, {"/healthz": ("trickle", 0.5)}) as front:
        t0 = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            JsonClient(front.url, deadline_s=2).request("GET", "/healthz")
        assert time.monotonic() - t0 < 4


def test_client_caps_a_huge_body_without_buffering_it(tb: TestbedServer) -> None:
    with (
        FaultyFront(tb.url, {"/admin/metrics": ("huge", 300 << 20)}) as front,
        pytest.raises(BodyTooLarge),
    ):
        JsonClient(front.url, token=TOKEN, deadline_s=20, max_bytes=4 << 20).request(
            "GET", "/admin/metrics"
        )


# ---- rehearse and probe -------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_admin_api_redirecting_off_origin_is_refused_reported_and_gets_no_token(
    tb: TestbedServer, tmp_path: Path
) -> None:
    """Before: 11 admin requests with the bearer token reached the other origin, and exit 0."""
    with (
        Sink() as sink,
        FaultyFront(
            tb.url,
            {
                "/admin/metrics": ("redirect", sink.url),
                "/admin/audit": ("redirect", sink.url),
                "/admin/ledger": ("redirect", sink.url),
            },
        ) as front,
    ):
        r, _ = _rehearse(front.url, tmp_path / "out", "--admin-token", TOKEN)
    assert sink.requests == [], sink.requests[:3]
    assert r.returncode == 1, (r.returncode, r.stderr[-1500:])
    assert "Traceback" not in r.stderr + r.stdout
    last = _lines(r.stderr)
    assert len(last) == 1 and last[0].startswith("RunFailed: refused:") and "redirect" in last[0], (
        last
    )
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["exit_code"] == 1 and any("redirect" in p for p in summary["problems"])


@pytest.mark.timeout(120)
def test_api_redirecting_off_origin_stops_the_load_and_the_sink_gets_nothing(
    tb: TestbedServer, tmp_path: Path
) -> None:
    with Sink() as sink, FaultyFront(tb.url, {"/v1/": ("redirect", sink.url)}) as front:
        r, elapsed = _rehearse(front.url, tmp_path / "out", "--admin-token", TOKEN, duration="20")
    assert sink.requests == [], sink.requests[:3]
    assert r.returncode == 1, (r.returncode, r.stderr[-1500:])
    assert _lines(r.stderr)[-1].startswith("RunFailed: refused:"), r.stderr[-800:]
    assert (
        elapsed < 20 + 15
    )  # stopped at the first redirect, not after its whole duration + stop timeout


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["rehearse", "probe"])
def test_healthz_redirect_is_refused_before_any_load(
    tb: TestbedServer, tmp_path: Path, command: str
) -> None:
    with Sink() as sink, FaultyFront(tb.url, {"/healthz": ("redirect", sink.url)}) as front:
        if command == "rehearse":
            r, _ = _rehearse(front.url, tmp_path / "out")
        else:
            r, _ = _surgecast(
                "probe", "--host", front.url, "--out", str(tmp_path / "out"), "--step-duration", "1"
            )
    assert sink.requests == []
    assert (
        r.returncode == 2 and _lines(r.stderr) and _lines(r.stderr)[-1].startswith("TargetError: ")
    ), r.stderr
    assert "redirect" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["rehearse", "probe"])
def test_trickling_healthz_is_cut_at_the_preflight_deadline(
    tb: TestbedServer, tmp_path: Path, command: str
) -> None:
    """Before: one byte every 2 s kept the 5 s per-read
    timeout from firing: rehearse and probe hung for ever."""
    with FaultyFront(tb.url, {"/healthz": ("trickle", 2.0)}) as front:
        if command == "rehearse":
            r, elapsed = _rehearse(front.url, tmp_path / "out")
        else:
            r, elapsed = _surgecast(
                "probe",
                "--host",
                front.url,
                "--out",
                str(tmp_path / "out"),
                "--step-duration",
                "1",
                timeout=50,
            )
    print(f"{command} against a trickling /healthz ended in {elapsed:.1f} s")
    assert r.returncode == 2, r.stderr[-800:]
    assert _lines(r.stderr)[-1].startswith("TargetError: ") and "within 5 s" in r.stderr
    assert elapsed < 5 + 12, elapsed


@pytest.mark.timeout(150)
def test_trickling_admin_api_cannot_hang_a_rehearsal(tb: TestbedServer, tmp_path: Path) -> None:
    """Before: `rehearse --duration 10` against a trickling admin API never ended."""
    with FaultyFront(
        tb.url,
        {
            "/admin/metrics": ("trickle", 1.0),
            "/admin/audit": ("trickle", 1.0),
            "/admin/ledger": ("trickle", 1.0),
            "/admin/records": ("trickle", 1.0),
        },
    ) as front:
        r, elapsed = _rehearse(
            front.url, tmp_path / "out", "--admin-token", TOKEN, duration="10", timeout=140
        )
    assert r.returncode == 1, (r.returncode, r.stderr[-1000:])
    assert "reconciliation could not run" in _lines(r.stderr)[-1]
    assert (tmp_path / "out" / "ledger.csv").is_file() and (
        tmp_path / "out" / "summary.json"
    ).is_file()
    assert elapsed < 10 + 60, elapsed


@pytest.mark.timeout(150)
def test_huge_admin_answers_are_capped_not_buffered(tb: TestbedServer, tmp_path: Path) -> None:
    """Before: 300 MB bodies took the harness to 2 GB. Now every answer is refused past its cap."""
    with FaultyFront(tb.url, {"/admin/metrics": ("huge", 300 << 20)}) as front:
        r, _ = _rehearse(
            front.url, tmp_path / "out", "--admin-token", TOKEN, duration="3", timeout=140
        )
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert r.returncode == 0, (r.returncode, r.stderr[-1000:])
    print(f"largest child process: {peak_mb:.0f} MB")
    assert peak_mb < 600, peak_mb  # the largest child process, in MB


@pytest.mark.timeout(120)
def test_wrong_typed_admin_json_keeps_the_client_data_and_fails_honestly(
    tb: TestbedServer, tmp_path: Path
) -> None:
    with FaultyFront(
        tb.url,
        {
            "/admin/metrics": ("json", {"resources": [1, 2], "gates": "open"}),
            "/admin/ledger": ("json", {"orders": 5, "accounts": "x"}),
            "/admin/records": ("json", {"orders": 5, "accounts": "x"}),
            "/admin/audit": ("json", [1, 2, 3]),
        },
    ) as front:
        r, _ = _rehearse(front.url, tmp_path / "out", "--admin-token", TOKEN)
    out = tmp_path / "out"
    assert "Traceback" not in r.stdout + r.stderr
    assert r.returncode == 1, (r.returncode, r.stderr[-1500:])
    assert "reconciliation could not run" in _lines(r.stderr)[-1]
    assert (out / "ledger.csv").read_text().count("\n") > 1 and (out / "arrivals.csv").is_file()
    assert json.loads((out / "run.json").read_text())["admin_problems"]


@pytest.mark.timeout(120)
def test_every_request_failing_is_not_exit_0(tb: TestbedServer, tmp_path: Path) -> None:
    with FaultyFront(tb.url, {"/v1/": ("status", 500)}) as front:
        r, _ = _rehearse(front.url, tmp_path / "out")
    assert r.returncode == 1, (r.returncode, r.stderr[-1000:])
    assert _lines(r.stderr)[-1].startswith("RunFailed: nothing succeeded"), r.stderr[-800:]


@pytest.mark.timeout(150)
@pytest.mark.parametrize("with_token", [True, False])
def test_a_target_dying_mid_run_is_not_exit_0(tmp_path: Path, with_token: bool) -> None:
    """Before: with --admin-token, reconciliation was skipped silently and the run exited 0."""
    with TestbedServer(port=0, admin_token=TOKEN, extra_args=FAST) as server:

        def kill_once_loaded() -> (
            None
        ):  # after the first registrations, not at a fixed time (slow start-ups)
            admin = JsonClient(server.url, token=TOKEN, deadline_s=2)
            end = time.monotonic() + 100
            while time.monotonic() < end:
                try:
                    if int(admin.json("GET", "/admin/metrics")["counts"]["accounts"]) > 0:
                        break
                except Exception:  # noqa: BLE001 (not up yet)
                    pass
                time.sleep(0.1)
            time.sleep(1.0)
            server.kill()

        killer = threading.Thread(target=kill_once_loaded, daemon=True)
        killer.start()
        extra = ("--admin-token", TOKEN) if with_token else ()
        r, _ = _rehearse(server.url, tmp_path / "out", *extra, duration="10", timeout=140)
        killer.join(5)
    assert r.returncode in (1, 3), (r.returncode, r.stderr[-1000:])
    assert "Traceback" not in r.stderr
    want = (
        "reconciliation could not run" if with_token else "did not answer GET /healthz at the end"
    )
    assert want in r.stderr, r.stderr[-800:]
