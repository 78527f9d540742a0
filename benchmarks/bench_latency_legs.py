"""Where the service clock's extra milliseconds go: the legs of one request, client to server.

    python benchmarks/bench_latency_legs.py --rate 10 --duration 25

A fast testbed serves `GET /healthz` under the latency law (50 ms, every 100th 500 ms, a 2 s
stall every 10 s) and tags each answer with its number on the law's routes
(`x-latency-law-n`). A gevent client (Locust's FastHttpSession, one kept-alive session per
concurrent request, as a pool of users holds them) sends Poisson arrivals and stamps, with
the machine's one clock: the call, the moment its bytes go to the socket (`sendall`), and
the end of the call. Joined by number with the server's record (received, answer due,
sent), it prints per leg p50 / p90 / p99 / max:

* client call → sendall: the client building the request (counted as service by a tester);
* sendall → server received: loopback, the server's parse, its task start;
* server late: sent − answer due by the law (the target's own realised latency);
* server sent → client done: loopback, the client's wake-up and parse;
* client − server: what a tester's service clock adds to the server's realised latency.
"""

from __future__ import annotations

import gevent.monkey

gevent.monkey.patch_all()

import argparse  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import gevent._socket3 as gsocket  # noqa: E402
import numpy as np  # noqa: E402
from locust.contrib.fasthttp import FastHttpSession  # noqa: E402
from locust.env import Environment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from floor.jsonhttp import JsonClient  # noqa: E402
from testbed.process import TestbedServer  # noqa: E402

FAST = ['security.password_hash="pbkdf2"', "security.pbkdf2_iterations=1000",
        "latency_law.enabled=true", 'latency_law.paths=["/healthz"]']
SENT: dict[object, float] = {}
_sendall = gsocket.socket.sendall


def _stamped_sendall(self: gsocket.socket, data: bytes, *a: object) -> None:
    SENT[gevent.getcurrent()] = time.time()
    return _sendall(self, data, *a)


def run(rate: float, duration: float) -> dict[str, np.ndarray]:
    """One run; {leg: values in ms}."""
    gsocket.socket.sendall = _stamped_sendall
    with TestbedServer(port=0, extra_args=sum((["--set", kv] for kv in FAST), [])) as tb:
        env = Environment()
        free: list[FastHttpSession] = []
        out: list[tuple[int, float, float, float]] = []

        def one() -> None:
            s = free.pop() if free else FastHttpSession(tb.url, env.events.request, None)
            t_call = time.time()
            r = s.request("GET", "/healthz", name="healthz")
            t_end = time.time()
            free.append(s)
            out.append((int(r.headers.get("x-latency-law-n", -1)), t_call,
                        SENT[gevent.getcurrent()], t_end))

        rng, t0, gs = random.Random(1), time.time(), []
        t = t0
        while t < t0 + duration:
            t += rng.expovariate(rate)
            gevent.sleep(max(0.0, t - time.time()))
            gs.append(gevent.spawn(one))
        gevent.joinall(gs)
        truth = JsonClient(tb.url, deadline_s=10, max_bytes=1 << 26).request(
            "GET", "/admin/latency-law", headers={"Authorization": f"Bearer {tb.admin_token}"}
        ).json_or_none()
    rows = {int(r[1]): r for r in truth["requests"]}
    legs: dict[str, list[float]] = {k: [] for k in (
        "client call -> sendall", "sendall -> server received", "server late (sent - law)",
        "server sent -> client done", "client - server")}
    for n, t_call, t_send, t_end in out:
        rec, _n, _d, due, sent = rows[n]
        for k, v in zip(legs, (t_send - t_call, rec - t_send, sent - due, t_end - sent,
                               (t_end - t_call) - (sent - rec)), strict=True):
            legs[k].append(v * 1e3)
    return {k: np.array(v) for k, v in legs.items()}


def main() -> None:
    """Print the legs."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=25.0)
    a = ap.parse_args()
    legs = run(a.rate, a.duration)
    print(f"{len(next(iter(legs.values())))} requests at {a.rate:g}/s")
    for k, v in legs.items():
        q = np.percentile(v, [50, 90, 99])
        print(f"  {k:28s} p50 {q[0]:6.2f}  p90 {q[1]:6.2f}  p99 {q[2]:6.2f}  max {v.max():6.2f} ms")


if __name__ == "__main__":
    main()
