"""Admission to a full resource queue, as a property: no waiter is left waiting while there is room.

Hypothesis draws a queue bound, a number of workers and a crowd of waiters, each of
which, once given room, either adds a job or adds nothing (a replay, a 402, an order
already paying) or raises; some are cancelled or lose their client while waiting,
before or after the resume. Whatever the mix, every waiter that is still wanted gets
an answer, every job put is served, and no room stays held.
"""

from __future__ import annotations

import asyncio
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.capacity import ClientGone, Resource
from testbed.config import ResourceConfig, ServiceTime

BEHAVIOURS = ["add", "nothing", "raise", "cancel", "gone"]


async def _scenario(bound: int, workers: int, crowd: list[tuple[str, bool]]) -> None:
    served: list[str] = []

    async def on_start(job: str) -> None:
        return None

    async def on_finish(job: str) -> bool:
        served.append(job)
        return True

    cfg = ResourceConfig(
        workers=workers, service=ServiceTime(distribution="constant", mean=0.0), queue_bound=bound
    )
    res = Resource("issuer", cfg, random.Random(0), on_start=on_start, on_finish=on_finish)
    res.pause()
    res.start()
    for i in range(bound):  # a full queue
        async with res.admission() as slot:
            slot.put(f"fill-{i}")
    gone_events = [asyncio.Event() for _ in crowd]

    async def waiter(i: int, behaviour: str) -> str:
        async with res.admission(gone_events[i].wait) as slot:
            if behaviour == "add":
                slot.put(f"job-{i}")
            elif behaviour == "raise":
                raise ValueError("a 402")
            await asyncio.sleep(0)
        return behaviour

    tasks = [asyncio.create_task(waiter(i, b)) for i, (b, _late) in enumerate(crowd)]
    await asyncio.sleep(0)
    assert res.state()["waiting_for_room"] == len(crowd)

    def interrupt(late: bool) -> None:
        for i, (b, when) in enumerate(crowd):
            if when == late:
                if b == "cancel":
                    tasks[i].cancel()
                elif b == "gone":
                    gone_events[i].set()

    interrupt(late=False)
    await asyncio.sleep(0)
    res.resume()
    interrupt(late=True)
    done, pending = await asyncio.wait(tasks, timeout=5)
    assert not pending, f"{len(pending)} waiters hung with room to spare (lost wakeup)"
    for t, (b, _late) in zip(tasks, crowd, strict=True):
        if b == "cancel":
            continue  # it may have finished before its cancel landed
        if b == "raise":
            assert isinstance(t.exception(), ValueError)
        elif b == "gone":
            assert t.cancelled() or isinstance(t.exception(), ClientGone) or t.result() == "gone"
        else:
            assert t.result() == b
    for _ in range(50):
        await asyncio.sleep(0)
        if not res.queue and not res.busy:
            break
    added = {
        f"job-{i}"
        for i, t in enumerate(tasks)
        if not t.cancelled() and t.exception() is None and crowd[i][0] == "add"
    }
    assert set(served) == added | {f"fill-{i}" for i in range(bound)}
    assert len(served) == len(set(served))
    assert res._held == 0 and res.has_room() and res.state()["waiting_for_room"] == 0
    await res.stop()


@settings(max_examples=150, deadline=None)
@given(
    bound=st.integers(1, 3),
    workers=st.integers(1, 3),
    crowd=st.lists(st.tuples(st.sampled_from(BEHAVIOURS), st.booleans()), min_size=1, max_size=12),
)
def test_no_waiter_hangs_whatever_the_others_do(
    bound: int, workers: int, crowd: list[tuple[str, bool]]
) -> None:
    asyncio.run(_scenario(bound, workers, crowd))


def test_shed_refuses_at_once_and_holds_nothing() -> None:
    async def go() -> None:
        async def hook(job: str) -> bool:
            return True

        cfg = ResourceConfig(
            workers=1, service=ServiceTime(mean=0.0), queue_bound=1, overload="shed"
        )
        res = Resource("issuer", cfg, random.Random(0), on_start=hook, on_finish=hook)
        res.pause()
        async with res.admission() as slot:
            slot.put("a")
        from testbed.capacity import QueueFull

        try:
            async with res.admission():
                raise AssertionError("admitted past the bound")
        except QueueFull:
            pass
        assert res.shed == 1 and res._held == 0 and len(res.queue) == 1

    asyncio.run(go())
