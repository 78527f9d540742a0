"""Each Locust internal surgecast relies on (scenarios/locust_compat.py) still behaves as
it assumes, and the seam refuses a Locust outside the tested range.

The checks run in a subprocess: importing Locust patches the standard library with gevent, and that
must not leak into the test process.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECKS = r'''
import inspect
import gevent
from gevent.pool import Group
from locust import User, task, constant, argument_parser
from locust.env import Environment
from locust.runners import Runner, WorkerRunner
from locust.user.users import LOCUST_STATE_STOPPING
from scenarios import locust_compat as lc

class Idle(User):
    """Blocks in wait_time() as an idle pool member does; its task is a 30 s journey."""
    def wait_time(self):
        gevent.sleep(30)   # an idle pool member blocked for its next arrival
        return 0
    @task
    def journey(self):
        if getattr(self, "busy", False):
            gevent.sleep(30)

env = Environment(user_classes=[Idle])
results = {}

# 1. The idle hand-off: Locust marks a user WAITING before it calls wait_time() (and RUNNING after),
#    so a user blocked in wait_time() is stopped at once; one inside its task is asked to finish.
group = Group()
a, b = Idle(env), Idle(env)
b.busy = True
a.start(group); b.start(group); gevent.sleep(0.05)
results["user blocked in wait_time stopped at once"] = a.stop() is True and a._greenlet.dead
results["user in its task asked to finish"] = (b.stop() is False
                                               and b._state == LOCUST_STATE_STOPPING)
group.kill(block=True)

# 2. WorkerRunner._send_stats(): a method taking nothing but the runner.
results["WorkerRunner._send_stats()"] = (
    callable(getattr(WorkerRunner, "_send_stats", None))
    and list(inspect.signature(WorkerRunner._send_stats).parameters) == ["self"])

# 3. argument_parser.default_args_dict: replaced by a cached copy that answers the same.
before = argument_parser.default_args_dict()
lc.cache_locust_default_args()
after = argument_parser.default_args_dict()
results["default_args_dict cached"] = (
    before == after and "host" in after
    and getattr(argument_parser.default_args_dict, "surgecast_cached", False))

# 4. the spawn-rate nudge: the shape worker acts only on a tick that differs from the last one.
src = inspect.getsource(Runner.shape_worker)
results["shape acts only on a changed tick"] = (
    "shape_last_tick != current_tick" in src
    and lc.nudged(5, 100.0, 1) != lc.nudged(5, 100.0, 0))

# 5. the version check refuses an untested Locust.
try:
    lc.check_version("9.0.0")
    results["version check refuses 9.0.0"] = False
except lc.LocustVersionError as e:
    results["version check refuses 9.0.0"] = "locust>=" in str(e)

for name, ok in results.items():
    print(("ok   " if ok else "FAIL ") + name)
'''


def test_every_locust_internal_in_use_behaves_as_the_seam_assumes() -> None:
    r = subprocess.run(
        [sys.executable, "-c", CHECKS], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 6 and all(ln.startswith("ok ") for ln in lines), r.stdout


def test_the_pin_in_pyproject_is_the_tested_range() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pin = next(d for d in deps if d.startswith("locust"))
    tree = ast.parse((ROOT / "scenarios" / "locust_compat.py").read_text(encoding="utf-8"))
    lo, hi = next(
        ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "TESTED"
    )
    assert pin.replace(" ", "") == f"locust>={lo[0]}.{lo[1]},<{hi[0]}.{hi[1]}", pin


def test_no_module_outside_the_seam_touches_a_locust_internal() -> None:
    """User._state, _send_stats, default_args_dict, LOCUST_STATE_* and StatsCSV's
    _percentile_fields appear only in the seam (which now writes no _state: the idle hand-off is
    Locust's documented wait_time())."""
    internals = ("._state", "._send_stats", "default_args_dict", "LOCUST_STATE_",
                 "_percentile_fields")
    offenders = []
    for path in [
        *ROOT.glob("scenarios/*.py"),
        ROOT / "locustfile.py",
        *ROOT.glob("surgecast/**/*.py"),
    ]:
        if path.name == "locust_compat.py":
            continue
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(ROOT)}: {name}" for name in internals if name in text]
    assert not offenders, offenders


PERCENTILES = r'''
import random, time
import locust.stats as ls
from scenarios import locust_compat as lc

clock = [1_700_000_000.25]
time.time = lambda: clock[0]
rng = random.Random(7)
stats = ls.RequestStats(use_response_times_cache=True)
csv = ls.StatsCSV.__new__(ls.StatsCSV)
csv.percentiles_to_report = list(ls.PERCENTILES_TO_REPORT)
csv.percentiles_na = ["N/A"] * len(csv.percentiles_to_report)
plain = lc._PLAIN_PERCENTILE_FIELDS
rows = same = 0
for second in range(40):
    for _ in range(rng.randrange(0, 60)):
        clock[0] += rng.random() / 60
        t = rng.choice([rng.randrange(1, 30), rng.randrange(1, 9000)])
        t = None if rng.random() < 0.03 else t
        stats.log_request("GET", rng.choice(["a", "b", "c"]), t, 10)
    if second % 7 == 3:
        clock[0] += 4  # gaps: some seconds have no cached response times
    for e in [*stats.entries.values(), stats.total]:
        for current in (True, False):
            rows += 1
            same += plain(csv, e, current) == lc._percentile_fields(csv, e, current)
print(rows, same)
'''


@pytest.mark.parametrize("mutant", [False, True])
def test_one_sort_percentiles_equal_locusts_own(mutant: bool) -> None:
    """The CSV percentile columns made with one sort equal Locust's one sort per column, over
    seconds with and without cached history; a walk that stops one request late is caught."""
    patch = ("lc._walk = lambda k, d, n, p, w=lc._walk: w(k, d, n, p) if p < 0.9 "
             "else w(k, d, n, min(p + 0.01, 1.0))\n") if mutant else ""
    script = PERCENTILES.replace("plain = ", patch + "plain = ")
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    rows, same = map(int, r.stdout.split())
    assert rows > 200
    assert (same < rows) if mutant else (same == rows), r.stdout
