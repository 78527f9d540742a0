"""The rehearsal's collector settings (scenarios.collector.quiet_collector): what is made before the
origin is frozen out of the scans, and full collections come GC_FULL_EVERY young ones apart.
The latency it buys is a benchmark's (docs/benchmarks.md, "The collector"), not a timed test."""

from __future__ import annotations

import gc

from scenarios.collector import GC_FULL_EVERY, quiet_collector


def test_the_set_up_is_frozen_and_full_collections_are_rare() -> None:
    before = gc.get_threshold()
    try:
        keep = [[i] for i in range(1000)]  # made before the origin: lives for the run
        quiet_collector()
        assert gc.get_freeze_count() >= len(keep)
        assert gc.get_threshold() == (before[0], before[1], GC_FULL_EVERY)
        # young cycles are still collected (a give-up's traceback is one)
        cycle: list = []
        cycle.append(cycle)
        del cycle
        assert gc.collect(0) + gc.collect(1) >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
