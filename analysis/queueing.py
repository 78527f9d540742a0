"""Queueing formulas for one resource: Erlang B, Erlang C (M/M/c) and Erlang A (M/M/c+M).

Rates are per second; `offered load` a = λ/μ in erlangs; `c` servers.

* Erlang B (loss) by the stable recursion  B(0) = 1,  B(k) = a B(k-1) / (k + a B(k-1)).
* Erlang C (delay) from B:  C = B / (1 - ρ (1 - B)),  ρ = a / c  (valid for ρ < 1).
* M/M/c mean wait  Wq = C / (cμ - λ),  mean queue  Lq = λ Wq,
  wait tail  P(W > t) = C exp(-(cμ - λ) t).
* Erlang A (M/M/c+M: exponential patience with mean 1/θ): the birth-death chain with
  birth rate λ and death rate min(n, c) μ + max(n - c, 0) θ, in closed form with O(c)
  work (Erlang B for the servers, a series or the incomplete gamma function for the
  queue; `erlang_a`). Valid in overload (λ ≥ cμ) too, since abandonment keeps the chain
  stable. `erlang_a_chain` sums the truncated chain in arrays: the independent check.

    >>> round(erlang_b(10, 10.0), 4)          # 10 erlangs on 10 lines: 21.46 % blocked
    0.2146
    >>> r = mmc(arrival_rate=10.0, service_rate=1.0, servers=12)
    >>> round(r.p_wait, 4), round(r.mean_wait, 4)
    (0.4494, 0.2247)
    >>> a = erlang_a(arrival_rate=12.0, service_rate=1.0, servers=10, patience=5.0)
    >>> 0 < a.p_abandon < 1 and a.utilisation <= 1
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from floor.errors import FieldError

__all__ = [
    "erlang_b",
    "erlang_c",
    "mmc",
    "erlang_a",
    "erlang_a_chain",
    "MMcResult",
    "ErlangAResult",
    "check_inputs",
]


def check_inputs(
    arrival_rate: float, service_rate: float, servers: int, patience: float | None = None
) -> None:
    """Raise FieldError (naming the CLI flag) unless the rates and server count make sense.

    >>> check_inputs(1.0, 2.0, 1)
    >>> check_inputs(1.0, 0.0, 1)
    Traceback (most recent call last):
    ...
    floor.errors.FieldError: --service-rate = 0.0: give a rate > 0 (services per second per server)
    """
    if not (
        isinstance(arrival_rate, int | float) and math.isfinite(arrival_rate) and arrival_rate >= 0
    ):
        raise FieldError("--arrival-rate", arrival_rate, "give a rate >= 0 (arrivals per second)")
    if not (
        isinstance(service_rate, int | float) and math.isfinite(service_rate) and service_rate > 0
    ):
        raise FieldError(
            "--service-rate", service_rate, "give a rate > 0 (services per second per server)"
        )
    if isinstance(servers, bool) or not isinstance(servers, int) or servers < 1:
        raise FieldError("--servers", servers, "give a whole number of servers >= 1")
    if patience is not None and not (math.isfinite(patience) and patience > 0):
        raise FieldError("--patience", patience, "give the mean patience in seconds, > 0")


def erlang_b(servers: int, load: float) -> float:
    """Blocking probability of M/M/c/c with `load` erlangs, by the stable recursion.

    >>> round(erlang_b(1, 1.0), 3)
    0.5
    """
    if servers < 0 or load < 0:
        raise ValueError("servers and load must be >= 0")
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(servers: int, load: float) -> float:
    """Probability an arrival waits in M/M/c (Erlang C); 1.0 when load >= servers (unstable).

    >>> round(erlang_c(11, 10.0), 4)
    0.6821
    """
    if load >= servers:
        return 1.0
    b = erlang_b(servers, load)
    rho = load / servers
    return b / (1.0 - rho * (1.0 - b))


@dataclass(frozen=True, kw_only=True)
class MMcResult:
    """M/M/c figures. `mean_wait` (s) and `mean_queue` are inf when unstable (λ ≥ cμ)."""

    arrival_rate: float
    service_rate: float
    servers: int
    p_wait: float
    mean_wait: float
    mean_queue: float
    utilisation: float

    @property
    def stable(self) -> bool:
        """True when λ < cμ."""
        return self.arrival_rate < self.servers * self.service_rate

    def p_wait_longer(self, t: float) -> float:
        """P(W > t) = C exp(-(cμ - λ) t) for t >= 0.

        >>> round(mmc(arrival_rate=1, service_rate=2, servers=1).p_wait_longer(0.0), 2)
        0.5
        """
        if not self.stable:
            return 1.0
        return self.p_wait * math.exp(-(self.servers * self.service_rate - self.arrival_rate) * t)

    def wait_percentile(self, q: float) -> float:
        """The q-quantile of the wait (s): 0 when P(W > 0) <= 1 - q,
        else ln(C / (1 - q)) / (cμ - λ).

        >>> round(mmc(arrival_rate=1, service_rate=2, servers=1).wait_percentile(0.95), 4)
        2.3026
        """
        if not 0 < q < 1:
            raise FieldError("percentile", q, "give a quantile in (0, 1), e.g. 0.95")
        if not self.stable:
            return math.inf
        if self.p_wait <= 1 - q:
            return 0.0
        return math.log(self.p_wait / (1 - q)) / (
            self.servers * self.service_rate - self.arrival_rate
        )


def mmc(*, arrival_rate: float, service_rate: float, servers: int) -> MMcResult:
    """M/M/c: probability of waiting, mean wait, mean queue and utilisation.

    >>> r = mmc(arrival_rate=10.0, service_rate=1.0, servers=15)
    >>> round(r.p_wait, 4), r.utilisation
    (0.102, 0.6666666666666666)
    """
    check_inputs(arrival_rate, service_rate, servers)
    load = arrival_rate / service_rate
    cap = servers * service_rate
    if arrival_rate >= cap:
        return MMcResult(
            arrival_rate=arrival_rate,
            service_rate=service_rate,
            servers=servers,
            p_wait=1.0,
            mean_wait=math.inf,
            mean_queue=math.inf,
            utilisation=1.0,
        )
    c = erlang_c(servers, load)
    wq = c / (cap - arrival_rate)
    return MMcResult(
        arrival_rate=arrival_rate,
        service_rate=service_rate,
        servers=servers,
        p_wait=c,
        mean_wait=wq,
        mean_queue=arrival_rate * wq,
        utilisation=load / servers,
    )


@dataclass(frozen=True, kw_only=True)
class ErlangAResult:
    """M/M/c+M figures from the exact birth-death chain.

    `p_wait`: probability an arrival finds all servers busy (PASTA); `mean_queue`:
    mean number waiting; `p_abandon` = θ E[queue] / λ; `mean_wait` = E[queue] / λ
    (Little, over all arrivals, including those who abandon); `utilisation` = E[busy] / c;
    `throughput` = λ (1 - p_abandon); `states` = how many states the truncated chain kept.
    """

    arrival_rate: float
    service_rate: float
    servers: int
    patience: float
    p_wait: float
    mean_queue: float
    mean_wait: float
    p_abandon: float
    utilisation: float
    throughput: float
    states: int


def _log_chain(lam: float, mu: float, c: int, theta: float, n_max: int) -> np.ndarray:
    n = np.arange(1, n_max + 1, dtype=float)
    death = np.minimum(n, c) * mu + np.maximum(n - c, 0.0) * theta
    with np.errstate(divide="ignore"):
        steps = math.log(lam) - np.log(death) if lam > 0 else np.full(n_max, -np.inf)
    return np.concatenate([[0.0], np.cumsum(steps)])


def erlang_a(
    *, arrival_rate: float, service_rate: float, servers: int, patience: float
) -> ErlangAResult:
    """Erlang A (M/M/c+M) with mean patience `patience` seconds; valid for any λ, O(c) work.

    Closed form (no state arrays): with a = cμ/θ, x = λ/θ and the queue series
    S = Σ_j x^j / ((a+1)…(a+j)) and M = Σ_j j x^j / ((a+1)…(a+j)) = (x − a) S + a,
    π_c = 1 / (1/B − 1 + S) where B is Erlang B(c, λ/μ); P(wait) = π_c S, E[Q] = π_c M.
    S is summed (in chunks, in logs) when x < a and taken from the regularised lower
    incomplete gamma function when x ≥ a: S = Γ(a+1) P(a, x) e^x x^(−a).

    >>> a = erlang_a(arrival_rate=10.0, service_rate=1.0, servers=12, patience=1e9)
    >>> round(a.p_wait, 4)   # with (almost) infinite patience it is Erlang C
    0.4494
    >>> big = erlang_a(arrival_rate=6000.0, service_rate=1.0, servers=5000, patience=86400.0)
    >>> round(big.p_abandon, 4)   # overload: the excess 1000/s abandons
    0.1667
    """
    check_inputs(arrival_rate, service_rate, servers, patience)
    lam, mu, c, theta = float(arrival_rate), float(service_rate), int(servers), 1.0 / patience
    if lam == 0:
        return ErlangAResult(
            arrival_rate=0.0,
            service_rate=mu,
            servers=c,
            patience=patience,
            p_wait=0.0,
            mean_queue=0.0,
            mean_wait=0.0,
            p_abandon=0.0,
            utilisation=0.0,
            throughput=0.0,
            states=1,
        )
    b = erlang_b(c, lam / mu)
    x, a = lam / theta, c * mu / theta
    log_s, m_over_s, terms = _queue_series(x, a)
    if b == 0.0:  # far below capacity: nobody waits (to double precision)
        p_wait = 0.0
    else:
        rest = (1.0 / b - 1.0) * math.exp(-log_s) if log_s < 700 else 0.0
        p_wait = 1.0 / (rest + 1.0)
    eq = p_wait * m_over_s
    p_ab = min(1.0, theta * eq / lam)
    thr = lam * (1.0 - p_ab)
    util = min(1.0, thr / (c * mu))
    return _loaded_result(
        lam, mu, c, patience, p_wait=p_wait, eq=eq, p_ab=p_ab, util=util, states=c + terms
    )


def _loaded_result(
    lam: float,
    mu: float,
    c: int,
    patience: float,
    *,
    p_wait: float,
    eq: float,
    p_ab: float,
    util: float,
    states: int,
) -> ErlangAResult:
    """The figures of a chain with arrivals (λ > 0) from P(wait), E[queue] `eq`, P(abandon)
    `p_ab` and the utilisation: the mean wait by Little (E[queue] / λ) and the throughput
    λ (1 − p_abandon) follow from them."""
    return ErlangAResult(
        arrival_rate=lam,
        service_rate=mu,
        servers=c,
        patience=patience,
        p_wait=p_wait,
        mean_queue=eq,
        mean_wait=eq / lam,
        p_abandon=p_ab,
        utilisation=util,
        throughput=lam * (1.0 - p_ab),
        states=states,
    )


def _queue_series(
    x: float, a: float, chunk: int = 1 << 15, max_terms: int = 20_000_000
) -> tuple[float, float, int]:
    """(log S, M / S, terms summed) for the Erlang A queue series (see `erlang_a`)."""
    if x < a:
        log_x = math.log(x)
        start, top, acc_s, acc_m = (
            0,
            0.0,
            1.0,
            0.0,
        )  # term 0 is 1; sums kept relative to exp(top) = 1
        last = 0.0
        while start < max_terms:
            j = np.arange(start + 1, start + chunk + 1, dtype=float)
            logs = last + np.cumsum(log_x - np.log(a + j))
            acc_s += float(np.exp(logs).sum())
            acc_m += float((j * np.exp(logs)).sum())
            last = float(logs[-1])
            start += chunk
            if last < math.log(acc_s) - 46.0:
                return math.log(acc_s) + top, acc_m / acc_s, start
    from scipy.special import gammainc, gammaln

    p = float(gammainc(a, x))
    log_s = float(gammaln(a + 1.0)) + math.log(p) + x - a * math.log(x)
    s_inv = math.exp(-log_s) if log_s < 700 else 0.0
    return log_s, (x - a) + a * s_inv, 0


def erlang_a_chain(
    *,
    arrival_rate: float,
    service_rate: float,
    servers: int,
    patience: float,
    max_states: int = 50_000_000,
) -> ErlangAResult:
    """Erlang A from the truncated birth–death chain (states held in arrays): the independent
    check of `erlang_a`. Memory grows with the mode c + (λ − cμ)/θ; refuses past `max_states`.

    >>> a = erlang_a_chain(arrival_rate=12.0, service_rate=1.0, servers=10, patience=5.0)
    >>> b = erlang_a(arrival_rate=12.0, service_rate=1.0, servers=10, patience=5.0)
    >>> abs(a.p_abandon - b.p_abandon) < 1e-12
    True
    """
    check_inputs(arrival_rate, service_rate, servers, patience)
    lam, mu, c, theta = float(arrival_rate), float(service_rate), int(servers), 1.0 / patience
    if lam == 0:
        return erlang_a(arrival_rate=0.0, service_rate=mu, servers=c, patience=patience)
    mode = lam / mu if lam < c * mu else c + (lam - c * mu) / theta
    spread = math.sqrt(max(lam / theta, lam / mu, 1.0))
    n_max = int(mode + 40 * spread + 100)
    while True:
        if n_max > max_states:
            raise FieldError(
                "--patience", patience, f"the chain needs over {max_states:,} states; use erlang_a"
            )
        logp = _log_chain(lam, mu, c, theta, n_max)
        top = logp.max()
        if logp[-1] - top < math.log(1e-20):
            break
        n_max *= 2
    keep = logp - top > math.log(1e-20) - 10
    last = int(np.nonzero(keep)[0][-1]) + 1
    p = np.exp(logp[:last] - top)
    p /= p.sum()
    n = np.arange(last, dtype=float)
    queue = np.maximum(n - c, 0.0)
    busy = np.minimum(n, c)
    eq = float(queue @ p)
    p_wait = float(p[c:].sum()) if last > c else 0.0
    p_ab = theta * eq / lam
    util = min(1.0, float(busy @ p) / c)
    return _loaded_result(
        lam, mu, c, patience, p_wait=p_wait, eq=eq, p_ab=p_ab, util=util, states=last
    )
