"""The capacity probe's settings, the statistics it is judged by, and what it returns.

Plain data, no Locust: `ProbeSettings` (how the ladder steps), `Judge` (the callables from
`analysis.probe` the ladder runs on) and `ProbeRun` (probe.csv and probe_batches.csv rows,
why it stopped, and what stopped its hold). scenarios.probe runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class ProbeSettings:
    """How the probe steps its load.

    >>> ProbeSettings(host="http://127.0.0.1:1").levels()[:5]
    [1, 2, 4, 8, 16]
    """

    host: str
    step_duration_s: float = 3.0   # most measured seconds per ladder level
    warmup_s: float = 0.5          # settling seconds after a level has filled
    batch_s: float = 1.0           # one sub-window
    min_batches: int = 3           # batches before a level may be judged (and held, to stop)
    budget_s: float = 40.0         # wall seconds for the whole ladder and hold
    precision: float = 0.025       # hold until the interval's half-width is this share of the rate
    hold_share: float = 0.4        # share of the budget the climb leaves for the hold
    climb_gain: float = 0.25       # a gain not significant stops the climb only below this share,
    queue_factor: float = 3.0      # and only where stamps wait this many times the least wait
    max_concurrency: int = 256
    max_error_ratio: float = 0.05
    documents: int = 2
    seed: int = 1

    def levels(self) -> list[int]:
        """Concurrency levels 1, 2, 4, ... up to max_concurrency."""
        out = [1]
        while out[-1] * 2 <= self.max_concurrency:
            out.append(out[-1] * 2)
        return out


@dataclass(frozen=True, kw_only=True)
class Judge:
    """The statistics the ladder runs on (callables, so this module needs no analysis import).

    `estimate(level_batches, all_batches)` returns an object with `stamps_per_second`
    and `half_width()`; `assess(below, above, final=bool)` returns rising, flat,
    falling, undecided or inconclusive; `queued(batches, median_wait_ms_by_level)`
    the levels where stamps queue at the issuer; `steady(batches, planned_s)` the batches
    that speak for the target (their `late_s`, how late the closing edge came, shows the
    client ran: a batch it stalled in, and the one after, are written to probe_batches.csv
    but neither judged nor counted towards a level's batches). The default: every batch.
    """

    estimate: Callable[[list[dict[str, Any]], list[dict[str, Any]]], Any]
    assess: Callable[..., str]
    queued: Callable[[list[dict[str, Any]], dict[int, float]], set[int]]
    steady: Callable[[list[dict[str, Any]], float], list[dict[str, Any]]] = (
        lambda batches, _planned_s: batches)


@dataclass
class ProbeRun:
    """What a probe measured: probe.csv rows, probe_batches.csv rows, and why it stopped."""

    rows: list[dict[str, Any]]
    batches: list[dict[str, Any]]
    stopped: str
    wall_s: float
    hold_stopped_by: str | None = None   # "precision" (the interval was tight), "budget", or None


def precise(judge: Judge, batches: list[dict[str, Any]], n: int, precision: float) -> bool:
    """Level n's interval within `precision` of its rate, on `batches` as counted.

    The hold asks it twice before it stops (`_Ladder.hold`): on the stamps the client has seen,
    and again once the batch just closed is seen whole, as the published interval counts it::

        >>> class Est:
        ...     def __init__(self, mine): self.hw = 0.1 / sum(b["stamps"] for b in mine)
        ...     def half_width(self): return self.hw
        >>> judge = Judge(estimate=lambda mine, every: Est(mine), assess=None, queued=None)
        >>> rows = [{"concurrency": 4, "stamps": 2}, {"concurrency": 4, "stamps": 3}]
        >>> precise(judge, rows, 4, 0.025), precise(judge, rows[:1], 4, 0.025)
        (True, False)
        >>> precise(judge, rows, 8, 0.025)  # no batch of the level: nothing is precise
        False
    """
    mine = [b for b in batches if b["concurrency"] == n]
    return bool(mine) and judge.estimate(mine, batches).half_width() <= precision
