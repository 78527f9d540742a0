"""Process hygiene: SIGTERM/SIGINT/SIGKILL of `rehearse`, `drill` and `probe` leave no
child running, stop the load at once, publish what was collected marked incomplete, and no
secret is on any argv.

Real processes on loopback; children are found through /proc (parent pids, command lines, and the
SURGECAST_PARENT_PID their launcher put in their environment).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from testbed.process import TestbedServer

ROOT = Path(__file__).resolve().parents[1]
FAST = [
    "--testbed-set",
    'security.password_hash="pbkdf2"',
    "--testbed-set",
    "security.pbkdf2_iterations=1000",
]
SECRET = "f00dfeedf00dfeedf00dfeedf00dfeed"


def _procs() -> dict[int, tuple[int, str, str]]:
    """pid -> (ppid, cmdline, environ) of every process we can read."""
    out: dict[int, tuple[int, str, str]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (d / "environ").read_bytes().replace(b"\0", b"\n").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        out[int(d.name)] = (ppid, cmd, env)
    return out


def _descendants(root: int) -> dict[int, tuple[int, str, str]]:
    procs = _procs()
    found, frontier = {}, {root}
    while frontier:
        nxt = {p for p, (pp, _, _) in procs.items() if pp in frontier and p not in found}
        found.update({p: procs[p] for p in nxt})
        frontier = nxt
    return found


def _launched_by(pids: set[int]) -> list[int]:
    """Live processes whose launcher (SURGECAST_PARENT_PID) is one of `pids`."""
    keys = {f"SURGECAST_PARENT_PID={p}" for p in pids}
    return [p for p, (_, _, env) in _procs().items() if any(k in env.splitlines() for k in keys)]


def _refused(url: str) -> bool:
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return True
    return False


class _Run:
    """A `surgecast ...` process whose stdout is read in the background."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "surgecast", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        self.lines: list[str] = []
        self.family: dict[int, tuple[int, str, str]] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        # the test may close the pipe (communicate) while this thread still reads: then it ends
        with contextlib.suppress(ValueError):
            for line in self.proc.stdout:
                self.lines.append(line)

    def wait_for(self, pred, timeout: float) -> bool:  # type: ignore[no-untyped-def]
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.proc.poll() is None:
            self.family.update(_descendants(self.proc.pid))
            if pred():
                return True
            time.sleep(0.2)
        return False


@pytest.mark.timeout(150)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_a_rehearsal_and_its_children_and_publishes_it_incomplete(
    tmp_path: Path, sig: int
) -> None:
    out = tmp_path / "out"
    env = dict(os.environ, SURGECAST_ADMIN_TOKEN=SECRET)
    run = _Run(
        "rehearse", "--arrival-rate", "4", "--duration", "60", "--out", str(out), *FAST, env=env
    )
    assert run.wait_for(
        lambda: any("arrivals" in ln and " 0/" not in ln for ln in run.lines), 60
    ), run.lines
    family = dict(run.family)
    assert any("locust" in c for _, c, _ in family.values()) and any(
        " testbed" in c for _, c, _ in family.values()
    )
    # the secret is in no child's command line (ps shows argv to every user)
    assert not [c for _, c, _ in family.values() if SECRET in c or "--admin-token" in c]
    t0 = time.monotonic()
    run.proc.send_signal(sig)
    _, err = run.proc.communicate(timeout=60)
    took = time.monotonic() - t0
    assert took < 15, took
    assert run.proc.returncode == 1, (run.proc.returncode, err[-1500:])
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("Interrupted: "), err[-800:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["exit_code"] >= 1
    assert any("interrupted" in p for p in summary["problems"])
    assert (out / "ledger.csv").is_file() and (out / "arrivals.csv").is_file()
    host = json.loads((out / "run.json").read_text())["host"]
    time.sleep(0.5)
    alive = [p for p in family if Path(f"/proc/{p}").exists()]
    assert alive == [], [family[p][1][:120] for p in alive]
    assert _refused(host)  # the embedded testbed is gone


@pytest.mark.timeout(150)
def test_sigterm_stops_the_load_at_once(tmp_path: Path) -> None:
    """Before: after SIGTERM the Locust child kept loading the target for its whole stop timeout."""
    with TestbedServer(
        port=0,
        extra_args=[
            "--set",
            'security.password_hash="pbkdf2"',
            "--set",
            "security.pbkdf2_iterations=1000",
            "--set",
            "issuer.service.mean=3.0",
        ],
    ) as tb:
        # slow stamps: every applicant is in a journey (polling) when the signal comes
        run = _Run(
            "rehearse",
            "--arrival-rate",
            "4",
            "--duration",
            "60",
            "--host",
            tb.url,
            "--out",
            str(tmp_path / "out"),
        )
        assert run.wait_for(lambda: sum("arrivals" in ln for ln in run.lines) >= 2, 60), run.lines
        run.proc.send_signal(signal.SIGTERM)
        run.proc.communicate(timeout=60)
        time.sleep(1.0)
        from floor.jsonhttp import JsonClient

        admin = JsonClient(tb.url, token=tb.admin_token)
        before = admin.json("GET", "/admin/metrics")
        time.sleep(3.0)
        after = admin.json("GET", "/admin/metrics")

    def made(
        m: dict,
    ) -> tuple[int, ...]:  # what only a client request creates (the queues drain on their own)
        c = m["counts"]
        return c["accounts"], c["sessions"], sum(c["orders"].values()), sum(c["stamps"].values())

    assert run.proc.returncode == 1
    assert not [p for p in run.family if Path(f"/proc/{p}").exists()]
    assert made(before)[0] > 0  # the load was flowing when the signal came
    assert made(before) == made(after), (made(before), made(after))


@pytest.mark.timeout(120)
def test_sigkill_of_rehearse_leaves_no_testbed_or_locust_running(tmp_path: Path) -> None:
    """Before: kill -9 of rehearse left the embedded testbed (and Locust) running."""
    run = _Run(
        "rehearse", "--arrival-rate", "3", "--duration", "60", "--out", str(tmp_path / "out"), *FAST
    )
    assert run.wait_for(lambda: any("arrivals" in ln for ln in run.lines), 60), run.lines
    family = dict(run.family)
    run.proc.kill()
    run.proc.wait(10)
    end = time.monotonic() + 15
    while time.monotonic() < end and any(Path(f"/proc/{p}").exists() for p in family):
        time.sleep(0.2)
    alive = [family[p][1][:100] for p in family if Path(f"/proc/{p}").exists()]
    assert alive == [], alive


@pytest.mark.timeout(150)
def test_sigterm_of_a_drill_says_interrupted_and_stops_its_paused_testbed(tmp_path: Path) -> None:
    out = tmp_path / "drill"
    run = _Run("drill", "issuer-outage", "--out", str(out))
    # the issuer is paused from 3 s to 8 s into the load: signal while it is paused
    assert run.wait_for(
        lambda: (out / "arrivals.csv").exists() or len(_descendants(run.proc.pid)) >= 3, 90
    )
    assert run.wait_for(lambda: False, 6) is False
    family = dict(run.family)
    assert not [c for _, c, _ in family.values() if "--admin-token" in c]
    t0 = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    _, err = run.proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 20
    assert run.proc.returncode == 1, (run.proc.returncode, err[-1500:])
    assert err.strip().splitlines()[-1].startswith("Interrupted: drill"), err[-800:]
    verdict = json.loads((out / "drill.json").read_text())["verdict"]
    assert verdict["passed"] is False and verdict["interrupted"] is True
    time.sleep(0.5)
    alive = [family[p][1][:100] for p in family if Path(f"/proc/{p}").exists()]
    assert alive == [], alive
    assert _launched_by({run.proc.pid, *family}) == []


@pytest.mark.timeout(120)
def test_sigterm_of_a_probe_publishes_the_levels_measured_marked_incomplete(tmp_path: Path) -> None:
    out = tmp_path / "probe"
    run = _Run("probe", "--out", str(out), "--step-duration", "2", "--warmup", "0.5")
    proc = run.proc
    assert run.wait_for(lambda: False, 15) is False  # about 15 s in: the first levels are measured
    family = dict(run.family)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (proc.returncode, err[-1500:])
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("Interrupted: "), err[
        -800:
    ]
    cap = json.loads((out / "capacity.json").read_text())
    assert cap["complete"] is False
    # what it published reads back (a level cut short may leave a step's percentiles empty)
    from analysis.probe import read_probe_csv

    assert {r["step"] for r in read_probe_csv(out / "probe.csv")} >= {"stamps", "journey"}
    time.sleep(0.5)
    assert [p for p in family if Path(f"/proc/{p}").exists()] == []


@pytest.mark.timeout(60)
def test_a_testbed_that_fails_to_start_names_no_token_in_its_error() -> None:
    from floor.errors import TargetError

    server = TestbedServer(port=0, admin_token=SECRET, extra_args=["--set", "issuer.workers=-3"])
    with pytest.raises(TargetError) as e:
        server.start()
    assert SECRET not in str(e.value) and "testbed did not start" in str(e.value)


@pytest.mark.timeout(60)
def test_a_worker_without_master_gives_up_within_its_wait(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: `rehearse --worker` with no master waited silently (Locust retries for 300 s)."""
    from surgecast.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    code = main(["rehearse", "--worker", "--master-port", str(port), "--master-wait", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and time.monotonic() - t0 < 10
    assert err[0].startswith("[surgecast] waiting up to 2 s for the master")
    assert err[-1].startswith("TargetError: no master listens on 127.0.0.1:")


@pytest.mark.timeout(150)
def test_sigterm_of_the_demo_stops_its_phase_and_its_testbed(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    run = _Run("demo", "--quick", "--out", str(out))
    # signal during the probe phase (a child `surgecast probe` loading the demo's testbed)
    assert run.wait_for(
        lambda: any(" probe" in c for _, c, _ in _descendants(run.proc.pid).values()), 90
    )
    assert run.wait_for(lambda: False, 6) is False
    family = dict(run.family)
    assert not [c for _, c, _ in family.values() if "--admin-token" in c]
    t0 = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    _, err = run.proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 20
    assert run.proc.returncode == 1, (run.proc.returncode, err[-1500:])
    assert err.strip().splitlines()[-1].startswith("Interrupted: demo"), err[-800:]
    time.sleep(0.5)
    alive = [family[p][1][:100] for p in family if Path(f"/proc/{p}").exists()]
    assert alive == [], alive
