"""Benchmark the testbed's write path: server CPU and latency per ``POST /v1/orders``, one client.

    python benchmarks/bench_testbed_writes.py [--requests 1000] [--rounds 2] [--clients 1]
                                              [--tree OTHER_CHECKOUT ...]

Each round starts a fresh fast testbed pinned to CPU 0 (``taskset -c 0``) and sends
``--requests`` sequential orders from one client; it prints the median and p90
latency and the server's CPU per request. With ``--clients N`` (N > 1) N threads send
their share at once, so writes queue at the one writer thread (where group commit works),
and the orders/s of the round is printed too. With ``--tree`` the testbed of each other
checkout (e.g. ``git archive``-ed before a change) runs in alternation with this
one, so the figures are side by side on the same machine and load. Loopback only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
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


def _orders(c: Client, token: str, n: int, lat: list[float]) -> None:
    for i in range(n):
        t0 = time.perf_counter()
        r = c.post("/v1/orders", json_body={"quantity": 1}, token=token,
                   headers={"Idempotency-Key": f"k{i}"})
        lat.append(time.perf_counter() - t0)
        assert r.status == 201, r.json


def one_round(tree: Path, requests: int, clients: int = 1) -> tuple[float, float, float, float]:
    """(median ms, p90 ms, server CPU ms per request, orders/s) for the testbed of ``tree``."""
    with TreeTestbed(tree, extra_args=[*FAST, *HIGH_CAPACITY]) as tb:
        assert tb.proc is not None
        users = [(Client(tb.url), []) for _ in range(clients)]
        tokens = [register_and_login(c)[0] for c, _ in users]
        cpu0, t0 = cpu_seconds(tb.proc.pid), time.perf_counter()
        threads = [threading.Thread(target=_orders, args=(c, tok, requests // clients, lat))
                   for (c, lat), tok in zip(users, tokens, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(tb.proc.pid) - cpu0
    lat = sorted(x for _, part in users for x in part)
    done = len(lat)
    return (statistics.median(lat) * 1e3, lat[int(0.9 * done)] * 1e3, cpu / done * 1e3,
            done / wall)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--clients", type=int, default=1, help="concurrent clients (default 1)")
    ap.add_argument("--tree", action="append", default=[],
                    help="another checkout to compare (repeatable)")
    a = ap.parse_args()
    trees = [ROOT, *(Path(t).resolve() for t in a.tree)]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for rnd in range(a.rounds):
        for tree in trees:
            med, p90, cpu, rate = one_round(tree, a.requests, a.clients)
            print(f"round {rnd + 1} {tree}: POST /v1/orders x {a.clients} clients: median "
                  f"{med:.2f} ms, p90 {p90:.2f} ms, server CPU {cpu:.2f} ms/request, "
                  f"{rate:.0f} orders/s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
