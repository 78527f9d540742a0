"""The command table, the one-line error contract and atomic writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from floor import atomic
from floor.errors import (
    EXIT_INTEGRITY,
    EXIT_THRESHOLD,
    EXIT_USAGE,
    FieldError,
    IntegrityError,
    ProfileError,
    SurgecastError,
    ThresholdFailed,
)
from surgecast.cli import COMMANDS, main


def test_top_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name} " in out


def test_no_arguments_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_USAGE


def test_unknown_command_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rehears"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("UsageError: unknown command 'rehears'")
    assert "rehearse" in err


def test_every_command_builds_its_parser_without_importing_locust() -> None:
    """`surgecast X --help` must not import Locust: it patches the standard library with gevent."""
    code = ("import sys; from surgecast.cli import COMMANDS, build_parser\n"
            "progs = [build_parser(n).prog for n in COMMANDS]\n"
            "print(len(progs), 'gevent' in sys.modules, 'locust' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(len(COMMANDS)), "False", "False"]


def test_argparse_errors_are_one_line_via_real_process() -> None:
    proc = subprocess.run([sys.executable, "-m", "surgecast", "profile", "show"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("UsageError: surgecast profile")
    assert "Traceback" not in proc.stderr


def test_profile_error_names_field_value_and_fix() -> None:
    e = ProfileError(
        "calendar.deadline", "2024-13-01", "write a date-time like 2024-09-06T23:59:00"
    )
    assert str(e) == "calendar.deadline = '2024-13-01': write a date-time like 2024-09-06T23:59:00"
    assert isinstance(e, FieldError) and e.exit_code == EXIT_USAGE


@pytest.mark.parametrize(
    ("cls", "code"), [(ThresholdFailed, EXIT_THRESHOLD), (IntegrityError, EXIT_INTEGRITY)]
)
def test_exit_codes_carry_the_outcome(cls: type[SurgecastError], code: int) -> None:
    assert cls("x").exit_code == code


def test_atomic_write_replaces_whole_or_leaves_old(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    atomic.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic.atomic_open(target) as f:
        f.write('{"v": 2, "half')
        raise RuntimeError("crash mid-write")
    assert target.read_text() == '{\n  "v": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"], "temporary file left behind"


def test_atomic_csv_round_trip(tmp_path: Path) -> None:
    import csv

    atomic.write_csv(tmp_path / "t.csv", ["a", "b"], [[1, "x,y"], [2, ""]])
    with open(tmp_path / "t.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [["a", "b"], ["1", "x,y"], ["2", ""]]


def test_doctests_of_core_modules() -> None:
    import doctest

    import floor.atomic
    import floor.errors

    for mod in (floor.errors, floor.atomic):
        result = doctest.testmod(mod)
        assert result.attempted > 0 and result.failed == 0, mod.__name__
