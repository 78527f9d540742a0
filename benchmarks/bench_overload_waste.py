"""Overload waste on the real testbed: does an unbounded issuer do work for clients who left?

    python benchmarks/bench_overload_waste.py            # 40 s per mode
    python benchmarks/bench_overload_waste.py --quick    # 20 s per mode

A real testbed process on 127.0.0.1 (2 issuer workers x 0.25 s constant = 8 stamps/s).
Applicants arrive as a Poisson stream at twice that rate; each posts a stamp with a
fresh Idempotency-Key, polls until it is done or its patience (4 s) runs out, then gives
up and retries once with a *fresh* key (a new job: the retry storm), as a browser
refresh would. Two modes on the same offered load, side by side:

* `unbounded` (queue bound 100,000): every job is kept and served in FIFO order;
* `shed` (queue bound 8 = 1 s of work): a full queue answers 503 with Retry-After.

Figures: issuer completions in the window, completions the client was still waiting
for (useful), the wasted share, and the fluid model's prediction for the same inputs
(`analysis.backlog` with `waste=True`, exponential patience of the same mean), so the
model's mechanism is checked against the measurement. Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.backlog import FluidInputs, run_fluid  # noqa: E402
from testbed.process import TestbedServer  # noqa: E402
from tests.testbed_fixtures import FAST, Client, admin, buy, register_and_login, stamp, wait_for  # noqa: E402

CAP = 8.0          # stamps/s: 2 workers x 1 / 0.25 s
RATE = 16.0        # offered applicants/s (one stamp each)
PATIENCE = 4.0     # s a client polls before giving up
POLL = 0.5         # s between polls
RETRY_AFTER = 1.0  # s before the one retry (fresh key)


def _accounts(url: str, n: int, quota: int) -> list[str]:
    c = Client(url)
    tokens = []
    for i in range(n):
        tok, _, _ = register_and_login(c, 900_000 + i)
        buy(c, tok, quota)
        tokens.append(tok)
    for tok in tokens:
        wait_for(
            lambda t=tok: c.get("/v1/quota", token=t).json.get("available", 0) >= quota, timeout=60
        )
    return tokens


def _applicant(url: str, token: str, out: dict, lock: threading.Lock, stop_at: float) -> None:
    c = Client(url, timeout=30)
    for attempt in (0, 1):
        if time.monotonic() > stop_at:
            return
        r = stamp(c, token, secrets.token_hex(12))
        if r.status == 503:
            with lock:
                out["refused"] += 1
            time.sleep(float(r.headers.get("retry-after", "1")) if attempt == 0 else 0)
            continue
        if r.status not in (200, 201, 202):
            with lock:
                out["errors"] += 1
            return
        sid = r.json["stamp_id"]
        with lock:
            out["jobs"] += 1
        t0 = time.monotonic()
        while time.monotonic() - t0 < PATIENCE:
            time.sleep(POLL)
            g = c.get(f"/v1/stamps/{sid}", token=token)
            if g.status == 200 and g.json.get("status") == "done":
                with lock:  # counted only inside the window, like the issuer's completions
                    out["useful"] += time.monotonic() <= stop_at
                return
        with lock:
            out["gave_up"] += 1
        time.sleep(RETRY_AFTER)


def measure(mode: str, duration: float, seed: int = 1) -> dict:
    bound = 100_000 if mode == "unbounded" else int(CAP)
    args = FAST + [
        "--set",
        "issuer.workers=2",
        "--set",
        'issuer.service.distribution="constant"',
        "--set",
        "issuer.service.mean=0.25",
        "--set",
        f"issuer.queue_bound={bound}",
        "--set",
        f'issuer.overload="{mode}"',
        "--set",
        "payments.service.mean=0.01",
    ]
    with TestbedServer(extra_args=args) as tb:
        n_acc = 20
        tokens = _accounts(tb.url, n_acc, 100)
        a = Client(tb.url)
        before = admin(a, tb, "GET", "/admin/metrics").json["resources"]["issuer"]["completed"]
        out = {"jobs": 0, "useful": 0, "gave_up": 0, "refused": 0, "errors": 0}
        lock = threading.Lock()
        rng = random.Random(seed)
        start = time.monotonic()
        stop_at = start + duration
        with ThreadPoolExecutor(max_workers=160) as pool:
            t, k = start, 0
            while True:
                t += rng.expovariate(RATE)
                if t > stop_at:
                    break
                time.sleep(max(0.0, t - time.monotonic()))
                pool.submit(_applicant, tb.url, tokens[k % n_acc], out, lock, stop_at)
                k += 1
            out["arrivals"] = k
            time.sleep(max(0.0, stop_at - time.monotonic()))
            done = admin(a, tb, "GET", "/admin/metrics").json["resources"]["issuer"]
            out["completed"] = done["completed"] - before
            out["queue_left"] = done["queue_depth"]
        out["window_s"] = duration
    return out


def model(duration: float) -> dict:
    """The fluid model on the same inputs: 1 s steps, waste on or off."""
    n = int(duration)
    z = np.zeros(n)
    res = {}
    for waste in (False, True):
        inp = FluidInputs(
            step_s=1.0,
            t0_s=0.0,
            arrivals={"registration": z, "ordering": z, "stamping": np.full(n, RATE)},
            issuer_per_s=np.full(n, CAP),
            payments_per_s=np.full(n, 1e9),
            stamps_per_applicant=1.0,
            patience_s=PATIENCE,
            retry_probability=0.5,
            retry_after_s=PATIENCE + RETRY_AFTER,
            total_applicants=RATE * n,
            waste=waste,
        )
        r = run_fluid(inp)
        res["waste" if waste else "shed"] = {
            "useful": float(r.served_cum[-1]),
            "useful_share": float(r.served_cum[-1]) / (CAP * n),
        }
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    duration = 20.0 if ap.parse_args().quick else 40.0
    m = model(duration)
    for mode in ("unbounded", "shed"):
        r = measure(mode, duration)
        useful_share = r["useful"] / r["completed"] if r["completed"] else 0.0
        print(
            f"{mode:>9}: {r['arrivals']} applicants in {duration:g} s, {r['jobs']} jobs, issuer "
            f"completed {r['completed']} ({r['completed'] / duration:.2f}/s), useful {r['useful']} "
            f"({r['useful'] / duration:.2f}/s), wasted share {1 - useful_share:.1%}, gave up "
            f"{r['gave_up']}, refused {r['refused']}, queue left {r['queue_left']}"
        )
    for k, v in m.items():
        print(
            f"model {k:>5}: useful {v['useful']:.0f} ({v['useful'] / duration:.2f}/s), "
            f"useful share of capacity {v['useful_share']:.1%}"
        )


if __name__ == "__main__":
    main()
