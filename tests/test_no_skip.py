"""`SURGECAST_NO_SKIP=1` (set by `.ci/run`) turns a skipped test into a failed command.

The suite's own conftest is copied beside three small tests (one passes, one skips at run time,
one module skips at import, as `pytest.importorskip` does) and run as pytest runs it: in one
process and on xdist workers. With the variable the command fails and names each skip with its
reason; without it the same tests pass with two skips, so the guard is what turns it red.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

TESTS = {
    "test_fine.py": "def test_fine():\n    assert 1 + 1 == 2\n",
    "test_skips.py": "import pytest\n\n\ndef test_needs_a_tool():\n"
                     "    pytest.skip('needs the frobnicator')\n",
    "test_no_module.py": "import pytest\n\npytest.importorskip('no_such_module_anywhere')\n\n\n"
                         "def test_never():\n    pass\n",
}


def _run(tmp: Path, workers: str, no_skip: str | None) -> subprocess.CompletedProcess[str]:
    # not this run's own pytest variables: an xdist worker's PYTEST_XDIST_WORKER would make the
    # child think it is a worker too, and workers leave the check to their controller
    env = {k: v for k, v in os.environ.items()
           if k not in ("SURGECAST_NO_SKIP", "SURGECAST_TEST_PASS") and not k.startswith("PYTEST_")}
    if no_skip is not None:
        env["SURGECAST_NO_SKIP"] = no_skip
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-n", workers, str(tmp)], cwd=tmp, env=env, text=True,
                          capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("noskip")
    shutil.copy(HERE / "conftest.py", tmp / "conftest.py")
    for name, text in TESTS.items():
        (tmp / name).write_text(text)
    return tmp


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_skip_fails_the_command_where_none_is_allowed(suite: Path, workers: str) -> None:
    r = _run(suite, workers, "1")
    out = r.stdout + r.stderr
    assert r.returncode == pytest.ExitCode.TESTS_FAILED, out
    assert "SURGECAST_NO_SKIP=1: 2 skipped" in out, out
    assert "test_skips.py::test_needs_a_tool: needs the frobnicator" in out, out
    assert "no_such_module_anywhere" in out, out


@pytest.mark.parametrize("workers", ["0", "2"])
def test_without_the_variable_the_same_skips_pass(suite: Path, workers: str) -> None:
    for value in (None, "0"):
        r = _run(suite, workers, value)
        out = r.stdout + r.stderr
        assert r.returncode == pytest.ExitCode.OK, out
        assert "1 passed, 2 skipped" in out and "none may be here" not in out, out
