"""A probe's hold stops for precision only after `min_batches` held batches.

A regular issuer's interval can look tight after one or two batches (seen: a 20/s constant
issuer's probe stopped after 2 held batches, +-1.6 %), and the hold is the measurement, so a
precision stop needs `min_batches` (3) of them. Here the production ladder
(`tests/step_down_run.py`: the real runner, journeys, recorder and rules; the levelling verdict
scripted, falling at 16 applicants) holds the level below (4) against two fresh 20 stamps/s
testbeds at once, with a precision of +-100 %, which any interval meets: only the minimum keeps
the hold going. The mutant is the same ladder whose hold stops at its first precise batch; it
must hold fewer, or the check could not see the rule missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.step_down_run import ladder_runs

TOP = 16
MODES: dict[str, list[str]] = {"rule": [], "mutant": ["--mutant", "no-min-batches"]}


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, dict[str, Any]]]:
    """The two probes, each against its own fresh testbed, at the same time."""
    with ladder_runs(MODES, ["--top", str(TOP), "--budget", "30", "--precision", "1"]) as out:
        yield out


def _held(run: dict[str, Any]) -> int:
    """How many batches the hold ran, after checking it held one level and stopped for
    precision.

    The level is the one below the top (the ladder's previous one), or the top itself: on a
    busy machine the client may be too slow for the issuer to queue at 16 applicants, and then
    the top has headroom, is never judged falling, and is held as the last level (seen in CI,
    "top"). Either way the hold runs by the same rule."""
    assert max(run["levels"]) == TOP, run
    held = {b["concurrency"] for b in run["hold"]}
    assert len(held) == 1, run
    if run["stopped"] == "levelled":
        assert held <= set(run["levels"]) - {TOP}, run
    else:
        assert run["stopped"] == "top" and held == {TOP}, run
    assert run["hold_stopped_by"] == "precision", run
    return len(run["hold"])


def test_a_precision_stop_comes_after_min_batches_held(runs: dict) -> None:
    run = runs["rule"]
    assert run["min_batches"] == 3
    assert _held(run) == run["min_batches"], run  # precise from the first: stops at the minimum


def test_a_hold_without_the_minimum_stops_sooner(runs: dict) -> None:
    assert _held(runs["mutant"]) < runs["rule"]["min_batches"], runs["mutant"]
