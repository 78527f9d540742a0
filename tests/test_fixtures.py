"""The committed fixture run directories are what tests/fixtures/make_fixtures.py writes now.

The generator drives the run directory's own writers (floor.rundir.writers), so a change to a
writer, the schema or the casn2024 profile changes the files it makes. Committed fixtures that
were not regenerated would test the report against files no writer makes any more: this
regenerates them into a temporary folder (about 15 s) and compares them byte for byte.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
RUNS = FIXTURES / "runs"


def _generator():
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith("report.")}


def drift(committed: Path, fresh: Path) -> list[str]:
    """The files that differ between two fixture folders: missing, extra or with other bytes."""
    a, b = _files(committed), _files(fresh)
    out = [f"{name}: not written by make_fixtures.py" for name in sorted(a.keys() - b.keys())]
    out += [
        f"{name}: written by make_fixtures.py, not committed"
        for name in sorted(b.keys() - a.keys())
    ]
    out += [
        f"{name}: differs from what make_fixtures.py writes"
        for name in sorted(a.keys() & b.keys())
        if a[name] != b[name]
    ]
    return out


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("fixtures") / "runs"
    _generator().main(runs)
    return runs


def test_committed_fixtures_are_what_the_generator_writes(fresh: Path) -> None:
    gen = _generator()
    committed = {p.name for p in RUNS.iterdir() if p.is_dir()}
    assert committed == set(gen.KINDS)
    assert drift(RUNS, fresh) == [], (
        "run `python3 tests/fixtures/make_fixtures.py` and commit the fixtures"
    )


@pytest.mark.parametrize("edit", ["figure", "extra_file", "deleted_file"])
def test_a_hand_edited_fixture_is_caught(fresh: Path, tmp_path: Path, edit: str) -> None:
    copy = tmp_path / "runs"
    shutil.copytree(RUNS, copy)
    if edit == "figure":  # one figure of plan.json changed by hand
        p = copy / "plan" / "plan.json"
        text = p.read_text(encoding="utf-8")
        assert '"margin_hours": -11.0' in text
        p.write_text(
            text.replace('"margin_hours": -11.0', '"margin_hours": -10.5'), encoding="utf-8"
        )
        want = "plan/plan.json: differs"
    elif edit == "extra_file":  # a file no writer makes
        (copy / "probe" / "run.json").write_text('{"kind": "probe"}', encoding="utf-8")
        want = "probe/run.json: not written"
    else:
        (copy / "full" / "manifest.json").unlink()
        want = "full/manifest.json: written by make_fixtures.py, not committed"
    found = drift(copy, fresh)
    assert len(found) == 1 and found[0].startswith(want), found
