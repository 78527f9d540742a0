"""The cyclic garbage collector during a rehearsal: kept from stalling the arrivals.

One concept, no Locust or gevent import, so it can be tested in any process.
"""

from __future__ import annotations

import gc

__all__ = ["GC_FULL_EVERY", "quiet_collector"]

GC_FULL_EVERY = 1000  # young collections between two full ones in a run (CPython's default: 10)


def quiet_collector() -> None:
    """Keep the cyclic garbage collector from stalling the arrivals (call just before the origin).

    A full collection scans every tracked object (about 0.5 us each here) with every greenlet
    stopped: mid-run it held the dispatcher 60-180 ms at 180 arrivals/s, which is what capped
    the per-core ceiling (docs/benchmarks.md, "The collector"). Everything made before the origin
    (modules, identities, accounts, the first users) lives for the whole run, so it is frozen out
    of the scans, and full collections of what the run makes come `GC_FULL_EVERY` young ones
    apart instead of 10 (about once a minute at 200 arrivals/s rather than every second; young
    cycles, such as a give-up's traceback, are still collected young)::

        quiet_collector(); gc.get_threshold()[2] == GC_FULL_EVERY   # True
    """
    gc.collect()
    gc.freeze()
    young, middle, _full = gc.get_threshold()
    gc.set_threshold(young, middle, GC_FULL_EVERY)
