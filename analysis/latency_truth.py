"""The harness's latency figures against a target with a known latency law (testbed/latency_law.py).

The law on a route: each answer `base` after the request arrived (every 100th: `tail`),
and a stall of S seconds in every period of P seconds of Unix time ([kP − S, kP)), an
answer due in a stall waiting for its end (a frozen process). Two checks:

**Service clock** (from the actual send to the answer): the harness's HDR percentiles of the
step must equal the server's own record of the same requests (answer sent − request
received) within HDR precision (3 significant digits: one HDR bucket, 0.1 %) plus the
loopback allowance `loopback_s` (the client's send → server's receive and answer →
client's read, which the server cannot see).

**Intended clock and coordinated omission.** In an open model the applicant's first request
is sent at its intended time τ whatever the target does, so its latency is L(τ, d) =
answer_at(τ, d) − τ. With τ uniform over the period (Poisson arrivals), d = b with
probability 0.99 and T with 0.01, and d̄ = 0.99 b + 0.01 T, an answer is held past x ≥ T
exactly when τ ∈ [P − S − d, P − x) of its period, so::

    P(L > x) = (S + d̄ − x) / P          for T ≤ x ≤ S + b
    x_q      = S + d̄ − P (1 − q)       for q ≥ 1 − (S + d̄ − T) / P

With b = 50 ms, T = 500 ms, S = 2 s, P = 10 s (the defaults): d̄ = 54.5 ms, and
p90 = 1.0545 s, p95 = 1.5545 s, p99 = 1.9545 s, p99.9 = 2.0445 s, while p50 = b (79.2 % of
requests are answered in exactly b). A closed-loop tester that sends its next request only
after the last answer sees one stalled request per connection per stall (coordinated
omission): for a connection sending every Δ seconds, a fraction Δ/P of its samples, not
S/P, and its p99 falls to the tail T or below. `predicted_quantiles` applies the law to the
run's realised intended start times (so sampling noise of the arrival times cancels);
`analytic_quantile` is the closed form above::

    >>> law = Law()
    >>> [round(analytic_quantile(law, q), 4) for q in (0.90, 0.95, 0.99, 0.999)]
    [1.0545, 1.5545, 1.9545, 2.0445]
    >>> analytic_quantile(law, 0.5)
    0.05
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from floor.errors import TargetError
from floor.jsonhttp import JsonClient
from testbed.latency_law import LatencyLaw

Law = LatencyLaw  # the law's one home is the testbed that serves it (testbed/latency_law.py)


def law_latency(law: LatencyLaw, start_unix: np.ndarray, delay_s: np.ndarray | float) -> np.ndarray:
    """L = answer_at − start for requests received at `start_unix` with law delays `delay_s`.

    The vectorised `LatencyLaw.answer_at` − start::

        >>> law_latency(Law(), np.array([1000.0, 1008.5, 1009.99]), 0.05).round(3).tolist()
        [0.05, 1.5, 0.05]
    """
    due = start_unix + delay_s
    p, s = law.stall_every_s, law.stall_s
    phase = np.mod(due, p)
    held = phase >= p - s
    return np.where(held, due - phase + p, due) - start_unix


def analytic_quantile(law: Law, q: float) -> float:
    """The q-quantile of L for uniformly phased starts (the closed form of the module docstring)."""
    p_tail = 1 / law.tail_every if law.tail_every else 0.0
    d_bar = law.mean_delay_s
    if 1 - q <= (law.stall_s + d_bar - law.tail_s) / law.stall_every_s:
        return law.stall_s + d_bar - law.stall_every_s * (1 - q)
    # below the stall's range: the atom at b holds (1 − p_tail)(1 − (S)/P) of the mass
    atom_b = (1 - p_tail) * (1 - law.stall_s / law.stall_every_s)
    if q <= atom_b:
        return law.base_s
    return math.nan  # between b and T: not used by the checks


def predicted_quantiles(
    law: Law, intended_unix: Sequence[float], pcts: Iterable[float]
) -> dict[float, float]:
    """Quantiles of L over the run's own intended starts, the tail's 1 % spread evenly (each 100th).

    Read from an HDR histogram like the harness's (`hdr_of`), so the rank convention and the
    bucket are the same on both sides: where a stall leaves the samples sparse, one rank apart
    is tens of milliseconds (209 samples, p90: 0.905 s against numpy's "higher" 0.987 s).

    >>> predicted_quantiles(Law(), np.linspace(0, 100, 100001), [50, 95])[95]  # doctest: +ELLIPSIS
    1.55...
    """
    t = np.sort(np.asarray(intended_unix, dtype=float))
    n = np.arange(len(t))
    d = (
        np.where((n % law.tail_every) == law.tail_every - 1, law.tail_s, law.base_s)
        if law.tail_every
        else law.base_s
    )
    lat = law_latency(law, t, d)
    h = hdr_of(lat)
    return {p: h.get_value_at_percentile(p) / 1e6 for p in pcts}


def predicted_band(
    law: LatencyLaw, intended_unix: Sequence[float], pcts: Iterable[float], *, ranks: int = 1
) -> dict[float, tuple[float, float]]:
    """Per percentile: the law's quantile on the run's intended starts, and `ranks` samples above.

    The resolution of a prediction from intended starts, which is one-sided. A request whose
    answer was due just before a stall, but which the client sent a few milliseconds late (its
    send lag), is held to the stall's end: in the prediction it is one 50 ms answer, in the
    run an answer of about 2 s, and every quantile of the stall above it moves up one sample.
    (Lag cannot move a sample down: a request meant just before a stall's end is answered in
    about 50 ms either way.)
    Where a stall leaves the samples sparse (10 arrivals/s: about 40 samples over its 2 s)
    one sample is about 50 ms, 5 % at p90. With ~3 ms of send lag such a request comes in about
    one run in 17 of 20 s at 10/s (two stall starts); two in one run, once in some hundreds.
    The rank is HDR's (`round(p/100 * n)`, as `predicted_quantiles` reads it)::

        >>> starts = np.random.default_rng(1).uniform(0, 20, 200)
        >>> lo, hi = predicted_band(Law(), starts, [90])[90]
        >>> lo == predicted_quantiles(Law(), starts, [90])[90], round(hi - lo, 3)
        (True, 0.068)
    """
    t = np.asarray(intended_unix, dtype=float)
    n = len(t)
    out = {}
    for p in pcts:
        k = max(1, int(p / 100 * n + 0.5))  # HDR's rank of p (1-based)
        above = min(n, k + ranks)
        q = predicted_quantiles(law, t, (p, (above - 0.25) / n * 100))
        out[p] = (min(q.values()), max(q.values()))
    return out


def band_gaps(
    measured: dict[float, float],
    band: dict[float, tuple[float, float]],
    *,
    tolerance: float = 0.05,
) -> list[dict[str, float]]:
    """Per percentile: measured, band, relative error to the band, ok (|error| ≤ tolerance).

    The error is 0 inside the band, else relative to its nearer edge::

        >>> [round(band_gaps({90: x}, {90: (1.0, 1.1)})[0]["error"], 3) for x in (0.9, 1.05, 1.2)]
        [-0.1, 0.0, 0.091]
    """
    rows = []
    for p, (lo, hi) in band.items():
        got = measured[p]
        err = (got - hi) / hi if got > hi else (got - lo) / lo if got < lo else 0.0
        rows.append(
            {"pct": p, "measured_s": got, "low_s": lo, "high_s": hi, "error": err,
             "ok": abs(err) <= tolerance}
        )
    return rows


def hdr_of(values_s: Iterable[float]) -> HdrHistogram:
    """An HDR histogram (us, 1 us .. 1 h, 3 digits: the run directory's settings) of `values_s`."""
    h = HdrHistogram(1, 3600 * 1_000_000, 3)
    for v in values_s:
        h.record_value(int(min(3600e6, max(1, round(v * 1e6)))))
    return h


def service_clock_gaps(
    harness: HdrHistogram, truth: HdrHistogram, pcts: Iterable[float], *, loopback_s: float
) -> list[dict[str, float]]:
    """Per percentile: harness, truth, difference, allowed (HDR precision + loopback), ok.

    The harness measures a little more than the server's truth (the loopback legs), never less
    than one HDR bucket below it.

    >>> t = hdr_of([0.05] * 99 + [0.5]); h = hdr_of([0.0505] * 99 + [0.5006])
    >>> all(r["ok"] for r in service_clock_gaps(h, t, [50, 99, 100], loopback_s=0.002))
    True
    >>> all(r["ok"] for r in service_clock_gaps(hdr_of([0.06] * 100), t, [50], loopback_s=0.002))
    False
    """
    out = []
    for p in pcts:
        hv = harness.get_value_at_percentile(p) / 1e6
        tv = truth.get_value_at_percentile(p) / 1e6
        bucket = tv * 1e-3 + 1e-6
        diff = hv - tv
        ok = -bucket <= diff <= bucket + loopback_s
        out.append(
            {
                "pct": p,
                "harness_s": hv,
                "truth_s": tv,
                "diff_s": diff,
                "allowed_s": bucket + loopback_s,
                "ok": ok,
            }
        )
    return out


def relative_gaps(
    measured: dict[float, float], predicted: dict[float, float], *, tolerance: float = 0.05
) -> list[dict[str, float]]:
    """Per percentile: measured, predicted, relative error, ok (|error| ≤ tolerance).

    >>> ok = lambda got: relative_gaps({95: got}, {95: 1.5545})[0]["ok"]
    >>> ok(1.50), ok(1.0)
    (True, False)
    """
    rows = []
    for p, want in predicted.items():
        got = measured[p]
        err = (got - want) / want
        rows.append(
            {
                "pct": p,
                "measured_s": got,
                "predicted_s": want,
                "error": err,
                "ok": abs(err) <= tolerance,
            }
        )
    return rows


def rehearse(url: str, admin_token: str, *, rate: float, duration: float, seed: int, out: Path,
             prefix: Sequence[str] = (), timeout: float | None = None,
             ) -> subprocess.CompletedProcess[str]:
    """`surgecast rehearse --arrival-rate` against the target at `url` (the default journey).

    `prefix` goes before the interpreter (e.g. ``taskset -c 1``); run from the repository root.
    """
    cmd = [*prefix, sys.executable, "-m", "surgecast", "rehearse", "--quiet", "--host", url,
           "--admin-token", admin_token, "--arrival-rate", str(rate), "--duration", str(duration),
           "--seed", str(seed), "--out", str(out)]
    root = Path(__file__).resolve().parents[1]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=timeout)


def law_record(url: str, admin_token: str) -> dict[str, Any]:
    """The target's `GET /admin/latency-law`: the law and each request's row."""
    body = JsonClient(url, deadline_s=10, max_bytes=1 << 27).request(
        "GET", "/admin/latency-law", headers={"Authorization": f"Bearer {admin_token}"}
    ).json_or_none()
    if not isinstance(body, dict) or "requests" not in body:
        raise TargetError(f"{url}/admin/latency-law gave no record: enable [latency_law] there")
    return body
