"""Start-up independent of the working directory, and "did you mean" for commands and flags.

A folder named `surgecast` (or `locust`) where the user stands used to shadow the real packages in
every child started as `python -m surgecast` / `python -m locust`; children now start with
`python -P -m` and the code root first on PYTHONPATH (floor.children.python_module).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from floor.children import CODE_ROOT, child_env, python_module
from surgecast.cli import main
from testbed.process import TestbedServer


@pytest.fixture()
def shadowing_cwd(tmp_path: Path) -> Path:
    """A working directory holding folders `surgecast`,
    `locust` and `scenarios` that fail on import."""
    d = tmp_path / "here"
    for name in ("surgecast", "locust", "scenarios"):
        (d / name).mkdir(parents=True)
        (d / name / "__init__.py").write_text(
            f"raise ImportError('the {name} folder in the cwd was imported')\n"
        )
    return d


def test_the_trap_is_real_and_python_module_avoids_it(shadowing_cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    old = subprocess.run(
        [sys.executable, "-m", "surgecast", "--version"],
        cwd=shadowing_cwd,
        env=child_env(None, base=env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        old.returncode != 0 and "folder in the cwd was imported" in old.stderr
    )  # the old start fails here
    new = subprocess.run(
        [*python_module("surgecast"), "--version"],
        cwd=shadowing_cwd,
        env=child_env(None, base=env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert new.returncode == 0, new.stderr
    assert new.stdout.startswith("surgecast ")
    assert child_env(None, base={"PYTHONPATH": "/x"})["PYTHONPATH"] == os.pathsep.join(
        [CODE_ROOT, "/x"]
    )


def test_the_embedded_testbed_starts_from_a_shadowing_cwd(
    shadowing_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(shadowing_cwd)
    with TestbedServer(port=0) as tb:
        assert tb.url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["forcast"], "did you mean forecast?"),
        (["demo", "--durtion", "5"], "did you mean --duration?"),
        (["plan", "--profile", "casn2024", "--otu", "x"], "did you mean --out?"),
        (["forecast", "--profle=casn2024", "--out", "x"], "did you mean --profile?"),
    ],
)
def test_did_you_mean_for_commands_and_flags(
    argv: list[str], hint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert hint in err and err.count("\n") == 1, err


def test_no_suggestion_for_a_far_typo_or_a_valid_abbreviation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--zzzzzz"]) == 2
    assert "did you mean" not in capsys.readouterr().err
    assert (
        main(["queue", "--arrival", "2", "--service-rate", "1", "--servers", "3", "--bogus-flag-x"])
        == 2
    )
    assert (
        "did you mean --arrival-rate" not in capsys.readouterr().err
    )  # --arrival is a valid abbreviation


@pytest.mark.timeout(120)
def test_tool_locust_in_pyproject_sets_our_options(shadowing_cwd: Path) -> None:
    """Locust reads [tool.locust] from pyproject.toml in the cwd, our custom options
    included; the cwd also holds decoy `surgecast`/`locust`/`scenarios` folders, which
    Locust puts first on sys.path."""
    tmp_path = shadowing_cwd
    import tomllib

    root = Path(CODE_ROOT)
    ours = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["locust"]
    assert ours["locustfile"] == "locustfile.py" and ours["web-host"] == "127.0.0.1"
    (tmp_path / "pyproject.toml").write_text(
        "[tool.locust]\n"
        f"locustfile = {json.dumps(str(root / 'locustfile.py'))}\n"
        'headless = true\nonly-summary = true\nloglevel = "WARNING"\n'
        'arrival-rate = 3\nduration = "3"\nseed = 7\nout = "run"\n'
    )
    r = subprocess.run(
        [*python_module("locust")],
        cwd=tmp_path,
        env=child_env(None),
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert r.returncode in (0, 1), r.stdout[-2000:] + r.stderr[-2000:]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (run["arrival_rate"], run["duration_s"], run["seed"]) == (3.0, 3.0, 7)
