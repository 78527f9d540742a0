"""The suite's second pass (tests/conftest.py ALONE): its tests run with nothing beside them,
and a failure there fails the whole command. And the conftest's xdist groups hold together.

Each case runs a real pytest, with xdist, in a scratch folder holding a copy of the suite's
conftest and three small test files: one named like an ALONE module, one like a module of a
serial group.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")
ALONE_NAME = "test_latency_truth.py"  # a module the conftest runs alone
GROUPED_NAME = "test_security.py"  # a module of the conftest's "wallclock" group
GROUPED_TESTS = 6


def _suite(tmp_path: Path, alone_body: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
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
    assert "second pass" in r.stdout
    # once, and not on an xdist worker (gw0, gw1): in the pass with nothing beside it
    assert (tmp_path / "where.txt").read_text().split() == ["main"], r.stdout
    # the group's tests all ran, on one worker (two workers were free to share them)
    workers = (tmp_path / "grouped.txt").read_text().split()
    assert len(workers) == GROUPED_TESTS and len(set(workers)) == 1, workers
    assert workers[0].startswith("gw"), workers


@pytest.mark.timeout(150)
def test_a_failure_in_the_second_pass_fails_the_command(tmp_path: Path) -> None:
    # The mutant: the parallel pass is green, only the test that runs alone fails.
    r = _suite(tmp_path, "    assert False, 'late client'")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "late client" in r.stdout
    assert f"{2 + GROUPED_TESTS} passed" in r.stdout  # the parallel pass itself was green
