"""The probe's count stays whole when its ladder steps down into the level it holds.

A ladder that reads less at a deeper level holds the level below: it stops applicants whose
stamps are still queued at the issuer (each has `documents` of them) and whose last stamps it
had not yet seen done. Done by the issuer, those are seen by no client, and the first batches
of the hold read short: seen on 4 December, a probe of a 16/s exponential issuer stepped down
from 64 applicants to 16 and its first two hold batches counted 1 and 15 stamps against the
server's 9 and 24 (client_vs_server -4.2 %, outside the probe test's 2 %).

Here the production ladder (`tests/step_down_run.py`: the real runner, journeys, recorder and
rules; only the levelling verdict is scripted, falling at 64 applicants) steps down against
three fresh 20 stamps/s testbeds (2 workers x constant 0.1 s), run at the same time:

* with the server's figures, as the probe command reads them: every hold batch is the
  server's count at the same edges;
* without them (a target with no admin API): the first hold batches read as the rest of the
  hold, the client alone being the judge;
* the mutant: the same ladder with no wait at the step down. It must turn both checks red,
  or they could not see what they claim to.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import Any

import pytest

from tests.step_down_run import ladder_runs

TOP = 64
MODES: dict[str, list[str]] = {
    "server": [],
    "no-server": ["--no-server"],
    "mutant": ["--mutant", "no-drain"],
}
SLACK = 2  # stamps: the client's and the server's edges are read a moment apart


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, dict[str, Any]]]:
    """The three step-down runs, each against its own fresh testbed, at the same time."""
    with ladder_runs(MODES, ["--top", str(TOP), "--budget", "40"]) as out:
        yield out


def _stepped_down(run: dict[str, Any]) -> int:
    """The level held, after checking the ladder reached the top and stepped down from it."""
    assert run["stopped"] == "levelled" and max(run["levels"]) == TOP, run
    held = {b["concurrency"] for b in run["hold"]}
    assert len(held) == 1, run
    (level,) = held
    assert level < TOP and len(run["hold"]) >= 5, run
    return level


def short_of_server(hold: list[dict[str, Any]]) -> list[int]:
    """Indexes of the hold batches whose client count falls short of the server's."""
    return [i for i, b in enumerate(hold) if b["stamps"] < b["server_stamps"] - SLACK]


def short_of_hold(hold: list[dict[str, Any]], share: float = 0.8) -> list[int]:
    """Indexes of the first two hold batches below `share` of the median of the rest of the
    hold but its last (counted when the run ended: the mutant sees it part-way too)."""
    rest = statistics.median(b["stamps"] for b in hold[2:-1])
    return [i for i, b in enumerate(hold[:2]) if b["stamps"] < share * rest]


def test_with_the_servers_figures_every_hold_batch_is_the_servers_count(runs: dict) -> None:
    hold = runs["server"]["hold"]
    _stepped_down(runs["server"])
    assert short_of_server(hold) == [], hold
    client, server = sum(b["stamps"] for b in hold), sum(b["server_stamps"] for b in hold)
    assert abs(client - server) <= 0.02 * server, hold
    # the level held is saturated (20/s): the stopped applicants' stamps were queued
    assert statistics.median(b["server_stamps"] for b in hold) >= 18, hold
    assert short_of_hold(hold) == [], hold


def test_without_them_the_first_hold_batches_read_as_the_rest(runs: dict) -> None:
    hold = runs["no-server"]["hold"]
    _stepped_down(runs["no-server"])
    assert all(b["server_stamps"] is None for b in hold)
    assert short_of_hold(hold) == [], hold


def test_a_step_down_that_does_not_wait_fails_both_checks(runs: dict) -> None:
    hold = runs["mutant"]["hold"]
    _stepped_down(runs["mutant"])
    assert short_of_server(hold)[:1] == [0], hold   # seen: 10 and 12 of the server's 20
    assert short_of_hold(hold), hold
