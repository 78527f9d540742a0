"""The floors hold: the import contracts of pyproject's [tool.importlinter] pass on this tree, and a
deliberately planted violating import of each kind turns them red (on a copy of the tree).

The contracts (docs/architecture.md): layers point down (surgecast > reports > analysis >
scenarios | testbed > floor); only scenarios/ imports locust or gevent; scenarios/ never imports
testbed/; the floor imports nothing of the project; nothing imports surgecast/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("floor", "testbed", "scenarios", "analysis", "reports", "surgecast")
LINT = ("import sys; from importlinter.cli import lint_imports_command; "
        "sys.argv = ['lint-imports', '--no-cache']; lint_imports_command()")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on ``tree`` (its pyproject.toml, its packages first on the path)."""
    return subprocess.run(
        [sys.executable, "-c", LINT],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project's Python packages and pyproject.toml."""
    out = tmp_path_factory.mktemp("tree")
    for name in PACKAGES:
        shutil.copytree(
            ROOT / name, out / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    shutil.copy(ROOT / "pyproject.toml", out / "pyproject.toml")
    return out


def test_the_contracts_hold_on_this_tree(tree: Path) -> None:
    r = _lint(tree)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "Contracts: 5 kept, 0 broken." in r.stdout, r.stdout[-3000:]


PLANTED = [
    ("floor/errors.py", "import surgecast.cli", "The floor imports nothing of the project"),
    ("reports/i18n.py", "import surgecast.cli", "Layers point down"),
    ("scenarios/curve.py", "from surgecast.commands import demo", "Nothing imports surgecast/"),
    ("analysis/usl.py", "import reports.build", "Layers point down"),
    ("testbed/ledger.py", "import scenarios.seeding", "Layers point down"),
    ("scenarios/seeding.py", "import testbed.nik", "scenarios/ never imports testbed/"),
    ("testbed/nik.py", "import gevent", "Only scenarios/"),
    ("analysis/queueing.py", "from locust import events", "Only scenarios/"),
]


@pytest.mark.parametrize(
    ("path", "line", "contract"), PLANTED, ids=[p[0] + ":" + p[1] for p in PLANTED]
)
def test_a_planted_violation_turns_the_contracts_red(
    tree: Path, path: str, line: str, contract: str
) -> None:
    target = tree / path
    original = target.read_text(encoding="utf-8")
    try:
        target.write_text(
            original + f"\n\ndef _planted() -> None:\n    {line}  # noqa\n", encoding="utf-8"
        )
        r = _lint(tree)
    finally:
        target.write_text(original, encoding="utf-8")
    assert r.returncode != 0, r.stdout[-3000:]
    broken = [ln for ln in r.stdout.splitlines() if ln.endswith(" BROKEN")]
    assert any(ln.startswith(contract) for ln in broken), r.stdout[-3000:]
