"""The suite's second pass (tests/conftest.py ALONE): its tests run with nothing beside them,
and a failure there fails the whole command.

Each case runs a real pytest, with xdist, in a scratch folder holding a copy of the suite's
conftest and two small test files, one of them named like an ALONE module.
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


def _suite(tmp_path: Path, alone_body: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_other.py").write_text("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    (tmp_path / ALONE_NAME).write_text(
        "import os\n\n"
        "def test_alone(tmp_path_factory):\n"
        "    with open(os.environ['WHERE'], 'a') as f:\n"
        "        f.write(os.environ.get('PYTEST_XDIST_WORKER', 'main') + '\\n')\n"
        f"{alone_body}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "SURGECAST_TEST"))}
    env["WHERE"] = str(tmp_path / "where.txt")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "2",
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


@pytest.mark.timeout(150)
def test_a_failure_in_the_second_pass_fails_the_command(tmp_path: Path) -> None:
    # The mutant: the parallel pass is green, only the test that runs alone fails.
    r = _suite(tmp_path, "    assert False, 'late client'")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "late client" in r.stdout
    assert "2 passed" in r.stdout  # the parallel pass itself was green
