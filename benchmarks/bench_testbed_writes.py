"""Benchmark the testbed's write path: server CPU and latency per ``POST /v1/orders``, one client.

    python benchmarks/bench_testbed_writes.py [--requests 1000] [--rounds 2] [--tree OTHER_CHECKOUT ...]

Each round starts a fresh fast testbed pinned to CPU 0 (``taskset -c 0``) and sends
``--requests`` sequential orders from one client; it prints the median and p90
latency and the server's CPU per request. With ``--tree`` the testbed of each other
checkout (e.g. ``git archive``-ed before a change) runs in alternation with this
one, so the figures are side by side on the same machine and load. Loopback only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from bench_testbed import HIGH_CAPACITY, PinnedTestbed, cpu_seconds  # noqa: E402
from testbed_fixtures import FAST, Client, register_and_login  # noqa: E402


class TreeTestbed(PinnedTestbed):
    """A pinned testbed run from another checkout (its directory first on sys.path)."""

    def __init__(self, tree: Path, **kw: object) -> None:
        super().__init__("0", env={**os.environ, "PYTHONPATH": str(tree)}, **kw)
        self.tree = tree

    def command(self) -> list[str]:
        cmd = super().command()
        at = cmd.index("taskset") + 3
        return [*cmd[:at], "env", f"--chdir={self.tree}", *cmd[at:]]


def one_round(tree: Path, requests: int) -> tuple[float, float, float]:
    """(median ms, p90 ms, server CPU ms per request) for the testbed of ``tree``."""
    with TreeTestbed(tree, extra_args=[*FAST, *HIGH_CAPACITY]) as tb:
        assert tb.proc is not None
        c = Client(tb.url)
        token, *_ = register_and_login(c)
        lat = []
        cpu0 = cpu_seconds(tb.proc.pid)
        for i in range(requests):
            t0 = time.perf_counter()
            r = c.post("/v1/orders", json_body={"quantity": 1}, token=token, headers={"Idempotency-Key": f"k{i}"})
            lat.append(time.perf_counter() - t0)
            assert r.status == 201, r.json
        cpu = cpu_seconds(tb.proc.pid) - cpu0
    lat.sort()
    return statistics.median(lat) * 1e3, lat[int(0.9 * len(lat))] * 1e3, cpu / requests * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tree", action="append", default=[], help="another checkout to compare (repeatable)")
    a = ap.parse_args()
    trees = [ROOT, *(Path(t).resolve() for t in a.tree)]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for rnd in range(a.rounds):
        for tree in trees:
            med, p90, cpu = one_round(tree, a.requests)
            print(f"round {rnd + 1} {tree}: POST /v1/orders median {med:.2f} ms, p90 {p90:.2f} ms, "
                  f"server CPU {cpu:.2f} ms/request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
