"""Every Locust internal surgecast relies on, behind one seam, with the tested version range
checked at import.

Locust's documented API (User, LoadTestShape, events, runners) is used where it is; what is not
documented lives here, so a Locust upgrade that moves it fails here, loudly, and in
tests/test_locust_compat.py (which names each internal), not deep inside a run:

- the idle hand-off (documented, not an internal; checked in the test): Locust marks a user WAITING
  before it calls ``wait_time()`` and RUNNING after (``TaskSet.wait``), and ``User.stop`` kills a
  WAITING user at once. An idle pool member blocks in its ``wait_time()`` for its next arrival, so
  Locust may stop it at once, and a busy one finishes its journey. surgecast writes no ``_state``.
- ``WorkerRunner._send_stats()``: a worker's last statistics report, sent before its results.
- ``locust.argument_parser.default_args_dict``: replaced by a cached copy (one parse per process).
- the spawn-rate nudge: ``LoadTestShape.tick`` results are acted on only when they change, so the
  same (users, rate) is re-sent with the rate moved by a hair to replace users that retired.
- ``StatsCSV._percentile_fields``: the percentile columns of Locust's CSVs, made with one sort
  per row instead of one per percentile (``one_sort_percentiles``; the same values).

    >>> tested("2.47.0"), tested("3.0.0")
    (True, False)
"""

from __future__ import annotations

import time
from typing import Any

import locust
from locust import argument_parser
from locust import stats as locust_stats

from floor.errors import UsageError

__all__ = [
    "TESTED",
    "SPAWN_RATE_NUDGE",
    "LocustVersionError",
    "tested",
    "send_last_stats",
    "cache_locust_default_args",
    "nudged",
    "one_sort_percentiles",
]

TESTED = ((2, 30), (2, 48))
"""Locust versions these internals are tested with: from 2.30 up to, not including, 2.48
(pyproject pins it)."""

SPAWN_RATE_NUDGE = 0.001
"""Users per second added to the spawn rate to make Locust act on an unchanged shape tick."""


class LocustVersionError(UsageError):
    """The installed Locust is outside the range whose internals surgecast was tested with
    (exit 2)."""


def tested(version: str) -> bool:
    """True if ``version`` (e.g. '2.47.0') is within TESTED.

    >>> tested("2.30.0"), tested("2.29.9"), tested("2.48.0.dev3")
    (True, False, False)
    """
    parts = []
    for p in version.split(".")[:2]:
        digits = "".join(c for c in p if c.isdigit())
        parts.append(int(digits or 0))
    lo, hi = TESTED
    return lo <= tuple(parts) < hi


def check_version(version: str = locust.__version__) -> None:
    """Raise LocustVersionError unless ``version`` is tested (done once, at import of this
    module)."""
    if not tested(version):
        lo, hi = (".".join(map(str, v)) for v in TESTED)
        raise LocustVersionError(
            f"locust {version} is not a tested version (surgecast relies on internals of "
            f"locust >={lo},<{hi}); install one: python3 -m pip install 'locust>={lo},<{hi}'"
        )


check_version()


def send_last_stats(runner: Any) -> None:
    """Send a worker's statistics report now (``WorkerRunner._send_stats``), ahead of what
    follows on its socket."""
    runner._send_stats()


def cache_locust_default_args() -> None:
    """Make `locust.argument_parser.default_args_dict` build Locust's parser once per process.

    Locust 2.47's worker, on every `spawn` message, filters the master's options with
    `k not in argument_parser.default_args_dict()` evaluated once *per option*, and each
    call builds and parses Locust's whole argument parser (about 1 ms). With the
    rehearsal's ~100 options that blocked a worker's event loop for ~100 ms each time
    the master's shape resized the pool (up to once a second), and arrivals due in that
    time were handed over late (a dispatch-lag tail seen only with workers). The
    defaults do not change within a process, so one copy is returned each time.

        >>> cache_locust_default_args(); a = argument_parser.default_args_dict()
        >>> a == argument_parser.default_args_dict() and "host" in a
        True
    """
    if getattr(argument_parser.default_args_dict, "surgecast_cached", False):
        return
    defaults = argument_parser.default_args_dict()

    def default_args_dict() -> dict[str, Any]:
        return dict(defaults)

    default_args_dict.surgecast_cached = True  # type: ignore[attr-defined]
    argument_parser.default_args_dict = default_args_dict


def nudged(users: int, rate: float, flip: int) -> tuple[int, float]:
    """A shape tick with the spawn rate moved by ``flip`` x SPAWN_RATE_NUDGE (flip is 0 or 1).

    >>> nudged(10, 100.0, 0), nudged(10, 100.0, 1)
    ((10, 100.0), (10, 100.001))
    """
    return (users, rate + flip * SPAWN_RATE_NUDGE)


def _walk(keys: list[int], times: dict[int, int], num_requests: int, percent: float) -> int:
    """`locust.stats.calculate_response_time_percentile` on keys sorted once (descending)."""
    num_of_request = int(num_requests * percent)
    processed_count = 0
    for response_time in keys:
        processed_count += times[response_time]
        if num_requests - processed_count <= num_of_request:
            return response_time
    return 0


def _current_window(entry: Any) -> tuple[dict[int, int], int] | None:
    """The response times of about the last 10 s and their count, as
    `StatsEntry.get_current_response_time_percentile` finds them (None: no cached second)."""
    window = locust_stats.CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW
    t = int(time.time())
    cache = entry.response_times_cache
    if cache is None:
        return None
    cached = None
    for ts in (t - window, *(t - window + d for i in range(1, 9) for d in (-i, i))):
        if ts in cache:
            cached = cache[ts]
            break
    if not cached:
        return None
    times = locust_stats.diff_response_time_dicts(entry.response_times, cached.response_times)
    n = (entry.num_requests - entry.num_none_requests) - (cached.num_requests
                                                          - cached.num_none_requests)
    return times, n


def _percentile_fields(self: Any, stats_entry: Any, use_current: bool = False) -> list[Any]:
    """`StatsCSV._percentile_fields` (Locust 2.47) with one sort per row."""
    if not stats_entry.num_requests:
        return self.percentiles_na
    percents = self.percentiles_to_report
    if use_current and stats_entry.use_response_times_cache:
        got = _current_window(stats_entry)
        if got is None:  # get_current_response_time_percentile gave None: `int(None or 0)`
            return [0] * len(percents)
        times, n = got
    else:
        times = stats_entry.response_times
        n = stats_entry.num_requests - stats_entry.num_none_requests
    keys = sorted(times, reverse=True)
    return [int(_walk(keys, times, n, p) or 0) for p in percents]


_PLAIN_PERCENTILE_FIELDS = locust_stats.StatsCSV._percentile_fields


def one_sort_percentiles(on: bool = True) -> None:
    """Make Locust's CSV writer sort an entry's response times once per row, not once per
    percentile column (`on=False` puts Locust's own back).

    With the full history (the run directory keeps it) Locust writes a row per request name
    every second, each of ~10 percentile columns diffing the last 10 s and sorting them again;
    the values are the same (tests/test_locust_compat.py checks them against Locust's).
    """
    locust_stats.StatsCSV._percentile_fields = (  # type: ignore[method-assign]
        _percentile_fields if on else _PLAIN_PERCENTILE_FIELDS
    )
