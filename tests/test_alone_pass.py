"""The suite's later passes (tests/conftest.py ALONE, BESIDE_GROUPS): the second pass's tests
run with nothing beside them, the third pass's beside each other only, and a failure in either
fails the whole command. And the conftest's xdist groups hold together.

Each case runs a real pytest, with xdist, in a scratch folder holding a copy of the suite's
conftest and four small test files: one named like an ALONE module, one like a module whose
tests run beside each other (with one test kept strictly alone), one like a module of a serial
group, and one of ordinary tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BESIDE_GROUPS

CONFTEST = Path(__file__).with_name("conftest.py")
ALONE_NAME = "test_latency_truth.py"  # a module the conftest runs alone
GROUPED_NAME = "test_security.py"  # a module of the conftest's "wallclock" group
GROUPED_TESTS = 6
BESIDE_NAME = "test_probe.py"  # a module whose named tests run beside each other, the rest alone
# one test named for each of the conftest's third-pass groups
_FIRST_OF_GROUP: dict[str, str] = {}
for _prefix, _group in BESIDE_GROUPS.items():
    _FIRST_OF_GROUP.setdefault(_group, _prefix)
BESIDE_TESTS = [prefix.split("::")[1] for prefix in _FIRST_OF_GROUP.values()]
STRICT_TEST = "test_a_target_that_never_levels_is_flagged_not_peaked"  # not in a group: alone


def _suite(
    tmp_path: Path, alone_body: str, beside_body: str = "    pass"
) -> subprocess.CompletedProcess[str]:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    # each test records where and when it ran: [worker, start, end]
    (tmp_path / BESIDE_NAME).write_text(
        "import json, os, time\n\n"
        "import pytest\n\n"
        "def _log(name, start):\n"
        "    with open(os.environ['BESIDE'], 'a') as f:\n"
        "        f.write(json.dumps([name, os.environ.get('PYTEST_XDIST_WORKER', 'main'), start,"
        " time.time()]) + '\\n')\n\n"
        + "".join(
            f"def {name}():\n"
            "    i = " + str(i) + "\n"
            "    start = time.time()\n"
            "    time.sleep(1.0)\n"
            "    _log('beside', start)\n"
            f"{beside_body}\n\n"
            for i, name in enumerate(BESIDE_TESTS)
        )
        + f"def {STRICT_TEST}():\n"
        "    start = time.time()\n"
        "    time.sleep(0.3)\n"
        "    _log('strict', start)\n")
    (tmp_path / "test_other.py").write_text("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    (tmp_path / ALONE_NAME).write_text(
        "import os\n\n"
        "def test_alone(tmp_path_factory):\n"
        "    with open(os.environ['WHERE'], 'a') as f:\n"
        "        f.write(os.environ.get('PYTEST_XDIST_WORKER', 'main') + '\\n')\n"
        f"{alone_body}\n")
    # tests that take a moment each, so that free workers would take some if the group let them
    (tmp_path / GROUPED_NAME).write_text(
        "import os, time\n\n"
        "import pytest\n\n"
        f"@pytest.mark.parametrize('i', range({GROUPED_TESTS}))\n"
        "def test_grouped(i):\n"
        "    time.sleep(0.3)\n"
        "    with open(os.environ['GROUPED'], 'a') as f:\n"
        "        f.write(os.environ.get('PYTEST_XDIST_WORKER', 'main') + '\\n')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "SURGECAST_TEST"))}
    env["WHERE"] = str(tmp_path / "where.txt")
    env["GROUPED"] = str(tmp_path / "grouped.txt")
    env["BESIDE"] = str(tmp_path / "beside.jsonl")
    # only the plugin the conftest needs (xdist): each case starts eight pytest processes (the
    # passes and their workers), and hypothesis, benchmark and the rest cost each a second of CPU
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "2",
            "--dist",
            "loadgroup",  # as pyproject's addopts (which `-c os.devnull` leaves out)
            "-p",
            "xdist.plugin",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "-c",
            os.devnull,
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.timeout(150)
def test_alone_tests_run_once_outside_the_workers(tmp_path: Path) -> None:
    r = _suite(tmp_path, "    assert True")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pass 2 (alone)" in r.stdout
    # once, and not on an xdist worker (gw0, gw1): in the pass with nothing beside it
    assert (tmp_path / "where.txt").read_text().split() == ["main"], r.stdout
    # the group's tests all ran, on one worker (two workers were free to share them)
    workers = (tmp_path / "grouped.txt").read_text().split()
    assert len(workers) == GROUPED_TESTS and len(set(workers)) == 1, workers
    assert workers[0].startswith("gw"), workers
    # the third pass: its tests on several workers at once, after the second pass and beside
    # nothing else; the one kept strictly alone ran in the second pass, in the main process
    runs = [json.loads(line) for line in (tmp_path / "beside.jsonl").read_text().splitlines()]
    beside = [r for r in runs if r[0] == "beside"]
    strict = [r for r in runs if r[0] == "strict"]
    assert len(beside) == len(BESIDE_TESTS) and len(strict) == 1, runs
    assert strict[0][1] == "main" and all(r[1].startswith("gw") for r in beside), runs
    assert len({r[1] for r in beside}) > 1, runs  # spread: they were free to run one by one
    assert max(r[2] for r in beside) < min(r[3] for r in beside), runs  # and they overlapped
    assert strict[0][3] <= min(r[2] for r in beside), runs  # nothing beside the strict one
    assert r.stdout.index("pass 2 (alone)") < r.stdout.index("pass 3 (beside)"), r.stdout


@pytest.mark.timeout(150)
def test_a_failure_in_the_second_pass_fails_the_command(tmp_path: Path) -> None:
    # The mutant: the parallel pass is green, only the test that runs alone fails.
    r = _suite(tmp_path, "    assert False, 'late client'")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "late client" in r.stdout
    assert f"{2 + GROUPED_TESTS} passed" in r.stdout  # the parallel pass itself was green


@pytest.mark.timeout(150)
def test_a_failure_in_the_third_pass_fails_the_command(tmp_path: Path) -> None:
    # The mutant: the parallel and the second pass are green, only a test beside others fails.
    r = _suite(tmp_path, "    assert True", "    assert i != 1, 'probe beside another'")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "probe beside another" in r.stdout
    assert "1 failed, 2 passed" in r.stdout  # the third pass's own summary
