"""The capacity probe against a testbed whose capacity is known, and its bad inputs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from testbed_fixtures import FAST

from testbed.process import TestbedServer

# 2 issuer workers x constant 0.1 s = 20 stamps/s exactly: the truth the probe must find.
KNOWN = [*FAST, "--issuer-workers", "2", "--issuer-service", "constant:0.1"]


def _surgecast(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "surgecast", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.timeout(180)
def test_probe_finds_the_configured_capacity(tmp_path: Path) -> None:
    with TestbedServer(extra_args=KNOWN) as tb:
        proc = _surgecast("probe", "--host", tb.url, f"--admin-token={tb.admin_token}", "--out", str(tmp_path),
                          "--step-duration", "4", "--warmup", "1", "--max-concurrency", "32", "--quiet")
    assert proc.returncode == 0, proc.stderr
    cap = json.loads((tmp_path / "capacity.json").read_text())
    # Measured, not configured: a saturated issuer serves 20/s; allow for 4-second windows.
    assert 15.0 <= cap["stamps_per_second"] <= 23.0, cap["stamps_per_second"]
    assert cap["configured"]["issuer"]["workers"] == 2
    assert cap["parameters"]["kind"] == "probe" and cap["parameters"]["levels"][0] == 1
    with open(tmp_path / "probe.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    stamps = [r for r in rows if r["step"] == "stamps"]
    levels = [int(r["concurrency"]) for r in stamps]
    assert levels == sorted(levels) and levels[:3] == [1, 2, 4]
    # Closed model: throughput rises with concurrency until the issuer saturates, never above it.
    xs = [float(r["throughput_per_s"]) for r in stamps]
    assert xs[1] > xs[0] and max(xs) <= 23.0
    assert {r["step"] for r in rows} >= {"register", "login", "order", "pay", "stamp", "poll_stamp",
                                          "download", "journey", "stamps"}
    assert "sustainable capacity" in proc.stdout
    assert tb.admin_token not in (tmp_path / "capacity.json").read_text()


@pytest.mark.parametrize(("args", "flag"), [
    (["--step-duration", "0"], "--step-duration"),
    (["--max-concurrency", "0"], "--max-concurrency"),
    (["--max-error-ratio", "2"], "--max-error-ratio"),
    (["--host", "http://10.1.2.3:8080"], "--host"),
])
def test_probe_bad_flags_are_one_line_exit_2(tmp_path: Path, args: list[str], flag: str) -> None:
    out = tmp_path / "out"
    proc = _surgecast("probe", *args, "--out", str(out), timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and flag in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())
