"""Benchmark the testbed: GET /v1/quota req/s on one core (wrk), and complete journeys per second.

    python benchmarks/bench_testbed.py [--duration 10] [--runs 3] [--journeys 300]

The server is pinned to CPU 0 (``taskset -c 0``) and wrk to CPU 1, so the figure
is what one core of the testbed serves. Journeys (register, log in, order, pay,
wait for the credit, stamp, wait for done, download the PDF) run with the
issuer's and the payment gateway's capacity set high, so the service's own
overhead is what is measured. Prints the figures; record them in
docs/benchmarks.md under "## Testbed". Loopback only, bounded in time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from testbed_fixtures import FAST, Client, identity, stamp  # noqa: E402

from testbed.process import TestbedServer  # noqa: E402

HIGH_CAPACITY = ["--set", "issuer.workers=512", "--issuer-service", "constant:0.001",
                 "--set", "payments.workers=512", "--set", "payments.service.mean=0.001"]


class PinnedTestbed(TestbedServer):
    """A testbed started under ``taskset -c CPUS``."""

    def __init__(self, cpus: str, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.cpus = cpus

    def command(self) -> list[str]:
        return ["taskset", "-c", self.cpus, *super().command()]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_quota(
    tb: TestbedServer, token: str, duration: int, runs: int, connections: int
) -> list[float]:
    """Requests/s of GET /v1/quota, one figure per wrk run."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    cmd = [
        "taskset",
        "-c",
        "1",
        wrk,
        "-t1",
        f"-c{connections}",
        "-H",
        f"Authorization: Bearer {token}",
        tb.url + "/v1/quota",
    ]
    subprocess.run([*cmd[:4], "-d2s", *cmd[4:]], capture_output=True, check=True)  # warm-up
    rates = []
    for _ in range(runs):
        out = subprocess.run(
            [*cmd[:4], f"-d{duration}s", *cmd[4:]], capture_output=True, text=True, check=True
        ).stdout
        if "Non-2xx" in out:
            raise SystemExit(f"wrk saw errors:\n{out}")
        rates.append(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)))  # type: ignore[union-attr]
    return rates


def journey(c: Client, n: int) -> None:
    """One applicant's whole journey."""
    ident = identity(n)
    assert c.post("/v1/accounts", json_body=ident).status == 201
    token = c.post(
        "/v1/sessions", json_body={"email": ident["email"], "password": ident["password"]}
    ).json["token"]
    oid = c.post(
        "/v1/orders", json_body={"quantity": 2}, token=token, headers={"Idempotency-Key": "o"}
    ).json["order_id"]
    assert c.post(f"/v1/orders/{oid}/pay", token=token).status == 202
    while c.get("/v1/quota", token=token).json["available"] < 2:
        time.sleep(0.005)
    sid = stamp(c, token, "s").json["stamp_id"]
    while c.get(f"/v1/stamps/{sid}", token=token).json["status"] != "done":
        time.sleep(0.005)
    assert c.get(f"/v1/stamps/{sid}/document", token=token).status == 200


def journeys_per_second(tb: TestbedServer, total: int, threads: int) -> tuple[float, float]:
    """(journeys/s, server CPU share) for ``total`` journeys over ``threads`` client threads."""
    counter = iter(range(total))
    lock = threading.Lock()

    def worker() -> None:
        c = Client(tb.url)
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            journey(c, 10_000_000 + n)

    assert tb.proc is not None
    cpu0, t0 = cpu_seconds(tb.proc.pid), time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    elapsed = time.perf_counter() - t0
    return total / elapsed, (cpu_seconds(tb.proc.pid) - cpu0) / elapsed


def machine() -> str:
    """CPU model and count from lscpu."""
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = re.search(r"Model name:\s+(.+)", out)
    return f"{model.group(1).strip() if model else 'unknown CPU'}, {os.cpu_count()} CPUs"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--journeys", type=int, default=300)
    ap.add_argument("--threads", type=int, default=16)
    args = ap.parse_args()
    print(f"machine: {machine()}; Python {sys.version.split()[0]}")
    with PinnedTestbed("0", extra_args=FAST) as tb:
        c = Client(tb.url)
        ident = identity(1)
        c.post("/v1/accounts", json_body=ident)
        token = c.post(
            "/v1/sessions", json_body={"email": ident["email"], "password": ident["password"]}
        ).json["token"]
        rates = wrk_quota(tb, token, args.duration, args.runs, args.connections)
    print(
        f"GET /v1/quota, server on 1 core, wrk -t1 -c{args.connections} -d{args.duration}s: median "
        f"{statistics.median(rates):,.0f} req/s (runs: {', '.join(f'{r:,.0f}' for r in rates)})"
    )
    for label, extra in [
        ("cheap hashing (pbkdf2, 1000 iterations)", FAST),
        ("default hashing (scrypt n=4096)", []),
    ]:
        total = args.journeys if extra else max(20, args.journeys // 5)
        with PinnedTestbed("0", extra_args=[*extra, *HIGH_CAPACITY]) as tb:
            rate, cpu = journeys_per_second(tb, total, args.threads)
        print(
            f"journeys/s, server on 1 core, issuer and payments capacity high, {label}: "
            f"{rate:,.1f} ({total} journeys, {args.threads} client threads, server CPU {cpu:.0%} "
            "of one core)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
