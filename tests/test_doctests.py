"""Every usage example in a docstring runs and prints what it says.

The doctests run in a subprocess: some modules import Locust, which patches the
standard library with gevent, and that must not leak into this test process.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(180)
def test_docstring_examples_pass() -> None:
    proc = subprocess.run(
        # -n 0: one process (the suite's addopts ask for xdist workers; nested, they
        # collect the modules differently and crash)
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "--doctest-modules",
         "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning",
         "floor", "analysis", "reports", "testbed", "surgecast", "scenarios"],
        cwd=ROOT, capture_output=True, text=True, timeout=170)
    tail = proc.stdout[-3000:]
    assert proc.returncode == 0, tail
    passed = int(re.search(r"(\d+) passed", tail).group(1))  # type: ignore[union-attr]
    assert passed >= 150, tail  # the examples exist: a module losing its examples shows here
