"""Bad inputs on every analysis command: one line naming the flag, exit 2, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from surgecast.cli import main

OUTAGE = "2024-09-03T08:00/2024-09-05T20:00"


def test_queue_json_erlang_c_and_a(capsys) -> None:
    assert (
        main(["queue", "--arrival-rate", "10", "--service-rate", "1", "--servers", "12", "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert round(out["p_wait"], 4) == 0.4494 and {
        "p_wait",
        "mean_wait",
        "mean_queue",
        "utilisation",
    } <= set(out)
    assert (
        main(
            [
                "queue",
                "--arrival-rate",
                "30",
                "--service-rate",
                "1",
                "--servers",
                "20",
                "--patience",
                "60",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert 0 < out["p_abandon"] < 1 and out["utilisation"] <= 1  # overload is fine with patience
    assert main(["queue", "--arrival-rate", "30", "--service-rate", "1", "--servers", "20"]) == 0
    assert "unbounded" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (
            ["queue", "--arrival-rate", "x", "--service-rate", "1", "--servers", "2"],
            "--arrival-rate",
        ),
        (
            ["queue", "--arrival-rate", "-1", "--service-rate", "1", "--servers", "2"],
            "--arrival-rate",
        ),
        (
            ["queue", "--arrival-rate", "1", "--service-rate", "0", "--servers", "2"],
            "--service-rate",
        ),
        (["queue", "--arrival-rate", "1", "--service-rate", "1", "--servers", "0"], "--servers"),
        (["queue", "--arrival-rate", "1", "--service-rate", "1", "--servers", "2.5"], "--servers"),
        (
            [
                "queue",
                "--arrival-rate",
                "1",
                "--service-rate",
                "1",
                "--servers",
                "2",
                "--patience",
                "0",
            ],
            "--patience",
        ),
        (
            ["queue", "--arrival-rate", "1", "--service-rate", "nan", "--servers", "2"],
            "--service-rate",
        ),
        (["queue", "--service-rate", "1", "--servers", "2"], "--arrival-rate"),
        (
            ["plan", "--profile", "casn2024", "--stamps-per-second", "0", "--out", "{tmp}"],
            "--stamps-per-second",
        ),
        (
            ["plan", "--profile", "casn2024", "--stamps-per-second", "abc", "--out", "{tmp}"],
            "--stamps-per-second",
        ),
        (
            ["plan", "--profile", "casn2024", "--outage", "2024-09-03T08:00", "--out", "{tmp}"],
            "--outage",
        ),
        (
            [
                "plan",
                "--profile",
                "casn2024",
                "--outage",
                "2024-09-05T08:00/2024-09-03T08:00",
                "--out",
                "{tmp}",
            ],
            "--outage",
        ),
        (
            [
                "plan",
                "--profile",
                "casn2024",
                "--outage",
                "2024-13-03T08:00/2024-09-05T20:00",
                "--out",
                "{tmp}",
            ],
            "--outage",
        ),
        (
            [
                "plan",
                "--profile",
                "casn2024",
                "--outage",
                "2025-01-01T00:00/2025-01-02T00:00",
                "--out",
                "{tmp}",
            ],
            "--outage",
        ),
        (
            [
                "plan",
                "--profile",
                "casn2024",
                "--outage",
                OUTAGE,
                "--reopen-at",
                "2024-09-04T00:00",
                "--out",
                "{tmp}",
            ],
            "--reopen-at",
        ),
        (
            [
                "plan",
                "--profile",
                "casn2024",
                "--outage",
                OUTAGE,
                "--reopen-at",
                "tomorrow",
                "--out",
                "{tmp}",
            ],
            "--reopen-at",
        ),
        (
            ["plan", "--profile", "steady", "--reopen-at", "2024-08-02T00:00", "--out", "{tmp}"],
            "--reopen-at",
        ),
        (
            ["plan", "--profile", "casn2024", "--max-utilisation", "1.5", "--out", "{tmp}"],
            "--max-utilisation",
        ),
        (
            ["plan", "--profile", "casn2024", "--max-utilisation", "0", "--out", "{tmp}"],
            "--max-utilisation",
        ),
        (["plan", "--profile", "casn2024", "--max-wait", "soon", "--out", "{tmp}"], "--max-wait"),
        (["plan", "--profile", "casn2024", "--max-wait", "0m", "--out", "{tmp}"], "--max-wait"),
        (["plan", "--profile", "nosuch", "--out", "{tmp}"], "--profile"),
        (["plan", "--profile", "casn2024"], "--out"),
        (
            ["plan", "--profile", "casn2024", "--capacity", "{tmp}/missing.json", "--out", "{tmp}"],
            "--capacity",
        ),
        (
            [
                "plan",
                "--profile",
                "casn2024",
                "--capacity",
                "c.json",
                "--stamps-per-second",
                "3",
                "--out",
                "{tmp}",
            ],
            "--stamps-per-second",
        ),
    ],
)
def test_bad_inputs_one_line_naming_the_flag(argv, flag, tmp_path, capsys) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert flag in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_capacity_json(tmp_path, capsys) -> None:
    for text in ("{not json", json.dumps({"stamps_per_second": None}), json.dumps([1, 2])):
        p = tmp_path / "capacity.json"
        p.write_text(text)
        assert (
            main(
                ["plan", "--profile", "steady", "--capacity", str(p), "--out", str(tmp_path / "o")]
            )
            == 2
        )
        err = capsys.readouterr().err
        assert "--capacity" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_real_command_line_process(tmp_path) -> None:
    """The installed `surgecast` entry point, as a user runs it."""
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "surgecast",
            "queue",
            "--arrival-rate",
            "1",
            "--service-rate",
            "1",
            "--servers",
            "-3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        bad.returncode == 2
        and bad.stderr.startswith("FieldError: --servers")
        and bad.stderr.count("\n") == 1
    )
    (tmp_path / "u.csv").write_text("load,throughput\n1,1\n2,2\n")
    bad = subprocess.run(
        [sys.executable, "-m", "surgecast", "usl", str(tmp_path / "u.csv")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "InputFileError" in bad.stderr and "Traceback" not in bad.stderr
