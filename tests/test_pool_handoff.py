"""The idle hand-off of the pool (scenarios/pool.py, scenarios/locustfile.py `Applicant`):
an idle user blocks in `wait_time()`; an arrival taken by a user stopped before its journey began
is given back (`ArrivalDispatcher.give_back`), to another idle user or recorded as dropped.

Runs in a subprocess: importing Locust patches the standard library with gevent.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECKS = r"""
import sys
from types import SimpleNamespace
import gevent
import numpy as np
from gevent.event import Event
from gevent.pool import Group
from locust import User, task
from locust.env import Environment
from scenarios.pool import ArrivalDispatcher

MUTANT = len(sys.argv) > 1
results = {}

# 1. A user stopped in the gap between wait_time() (it took an arrival) and its task: Locust still
#    reports it WAITING there, so stop() kills it; the arrival is not lost. gevent queues the kill
#    behind the user's pending wake-up, so the task still begins with the arrival (the journey's
#    own `finally` records it); had the kill landed first, on_stop would give it back.
took = Event()
given_back, began = [], []
class Gap(User):
    next_plan = None
    def wait_time(self):
        if not took.is_set():
            self.next_plan = "arrival-1"
            took.set()
        else:
            gevent.sleep(30)
        return 0
    @task
    def journey(self):
        if self.next_plan is not None:
            began.append(self.next_plan)
        self.next_plan = None
    def on_stop(self):
        if self.next_plan is not None:
            given_back.append(self.next_plan)

env = Environment(user_classes=[Gap])
group = Group()
u = Gap(env)
u.start(group)
took.wait(timeout=5)
results["killed in the gap"] = u.stop() is True
gevent.sleep(0.05)
results["the taken arrival is not lost"] = began + given_back == ["arrival-1"]
group.kill(block=True)

# 2. give_back hands the arrival to another idle user, else records it as dropped (with a reason).
class Rec:
    def __init__(self):
        self.dropped = []
    def arrival_dropped(self, applicant_id, reason):
        self.dropped.append((applicant_id, reason))
rec = Rec()
d = ArrivalDispatcher(np.array([]), make_plan=lambda i, t: None, recorder=rec)
if MUTANT:  # the mutant forgets the arrival
    d.give_back = lambda plan: None
other = gevent.spawn(d.take)
gevent.sleep(0.01)
d.busy = 1
first = SimpleNamespace(applicant_id="a-1")
d.give_back(first)
other.join(timeout=1)
results["given to another idle user"] = other.value is first and d.busy == 1
d.give_back(SimpleNamespace(applicant_id="a-2"))
results["none idle: recorded as dropped"] = (len(rec.dropped) == 1 and rec.dropped[0][0] == "a-2"
                                             and rec.dropped[0][1] == "spawn_lag" and d.busy == 0)

for name, ok in results.items():
    print(("ok   " if ok else "FAIL ") + name)
"""


def _run(*args: str) -> list[str]:
    r = subprocess.run(
        [sys.executable, "-c", CHECKS, *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.strip().splitlines()


def test_a_taken_arrival_is_given_back_when_its_user_stops_first() -> None:
    lines = _run()
    assert len(lines) == 4 and all(ln.startswith("ok ") for ln in lines), lines


def test_the_mutant_that_forgets_a_given_back_arrival_is_caught() -> None:
    lines = _run("mutant")
    assert lines[:2] == ["ok   killed in the gap", "ok   the taken arrival is not lost"], lines
    assert [ln for ln in lines[2:] if ln.startswith("FAIL")], lines
