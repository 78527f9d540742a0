"""What the distributed tests share (tests/test_distributed.py on loopback,
tests/test_netns_distributed.py across two network namespaces): the master's and the workers'
command lines and environment, watching the master's progress, and reading what it wrote."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from scenarios.latency import read_hdr
from tests.test_rehearse_runs import FAST_TESTBED, rows

MASTER_ENV = {
    "SURGECAST_RESULTS_WAIT_S": "5",
    "SURGECAST_READY_WAIT_S": "60",
    "PYTHONUNBUFFERED": "1",
}
"""The environment of a master and its workers (on top of the caller's): a lost worker is
named after 5 s of waiting for its results, and the workers have 60 s to come up."""


def testbed_flags() -> list[str]:
    """The `--set` flags of the rehearsal tests' fast testbed (`surgecast testbed`)."""
    return sum((["--set", kv] for kv in FAST_TESTBED), [])


def master_cmd(
    *, bind_host: str, port: int, url: str, token: str, out: Path, extra: Sequence[str] = ()
) -> list[str]:
    """`surgecast rehearse --master` for two workers against `url`: 10 arrivals/s for 6 s,
    seed 4, written to `out`."""
    return [
        sys.executable,
        "-m",
        "surgecast",
        "rehearse",
        "--master",
        "--workers",
        "2",
        "--master-bind-host",
        bind_host,
        "--master-port",
        str(port),
        "--host",
        url,
        f"--admin-token={token}",
        "--arrival-rate",
        "10",
        "--duration",
        "6",
        "--seed",
        "4",
        *extra,
        "--out",
        str(out),
    ]


def worker_cmd(*, master_host: str, port: int) -> list[str]:
    """`surgecast rehearse --worker` for the master at `master_host`:`port`."""
    return [
        sys.executable,
        "-m",
        "surgecast",
        "rehearse",
        "--worker",
        "--master-host",
        master_host,
        "--master-port",
        str(port),
    ]


def read_lines(proc: subprocess.Popen[str]) -> list[str]:
    """The lines of `proc`'s stdout, filled in as they come by a daemon thread."""
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()  # type: ignore[arg-type]
    return lines


def wait_for_arrivals(lines: list[str], timeout: float) -> None:
    """Block until the master's progress line shows arrivals dispatched (at most `timeout` s)."""
    end = time.time() + timeout
    while time.time() < end and not any(
        "arrivals" in x and not x.split("arrivals ")[1].startswith("0/") for x in lines
    ):
        time.sleep(0.2)


def request_counts(out: Path) -> dict[str, int]:
    """Requests per step as Locust counted them (locust_stats.csv, the Aggregated row left out)."""
    return {
        x["Name"]: int(x["Request Count"])
        for x in rows(out / "locust_stats.csv")
        if x["Name"] != "Aggregated"
    }


def service_samples(out: Path, step: str) -> int:
    """How many samples the run's merged service-time histogram of `step` holds."""
    return read_hdr(str(out / "latency" / f"{step}.service.hdr")).get_total_count()
