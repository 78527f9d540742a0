"""Terminal output (surgecast.console): bars with an ETA, draining said in words, completed
apart from abandoned, the summary as tables not Markdown, --quiet and --json for scripts."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest

from floor.children import child_env, python_module
from surgecast.cli import main
from surgecast.console import (
    RehearsalProgress,
    parse_progress,
    plan_digest,
    print_renderable,
    summary,
)

LINE = (
    "[surgecast] t=  {t}s/45s{drain}  arrivals 40/40  dropped 0  in journey 6  "
    "done 30 (completed 25, abandoned 5, failed 0)  issuer queue 3"
)


def test_plain_progress_says_draining_and_separates_completed_from_abandoned() -> None:
    out = io.StringIO()
    bar = RehearsalProgress(45, stream=out)
    bar.feed(LINE.format(t=50, drain=" (arrivals over; draining)"))
    bar.feed("[surgecast] threshold errors<1% breached: stopping the run")
    bar.close()
    text = out.getvalue()
    assert "draining" in text and "completed 25, abandoned 5" in text and "threshold" in text
    assert parse_progress(LINE.format(t=50, drain=""))["abandoned"] == 5


def test_live_bar_on_a_terminal_shows_eta_and_draining(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # Rich treats the stream as a terminal
    out = io.StringIO()
    bar = RehearsalProgress(45, stream=out)
    assert bar.live
    bar.feed(LINE.format(t=20, drain=""))
    bar.progress.refresh()
    assert "ETA" in out.getvalue() and "t=20/45 s" in out.getvalue()
    bar.feed(LINE.format(t=52, drain=" (arrivals over; draining)"))
    bar.close()
    text = out.getvalue()
    assert (
        "draining, 6 in journey" in text and "t=52s/45s" not in text
    )  # the raw line is not printed


def test_summary_is_rendered_not_raw_markdown() -> None:
    md = (
        "**Verdict:** Not served in time.\n\n- Peak backlog: 133,924 applicants\n\n"
        "| Stage | From |\n|---|---|\n| Hold | 3 Sep 08:00 WIB |\n"
    )
    out = io.StringIO()
    summary(md, stream=out)
    text = out.getvalue()
    assert "Verdict:" in text and "Hold" in text
    assert "**" not in text and "|---|" not in text and "| Stage |" not in text


def test_plan_json_and_its_digest_in_a_few_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "plan",
                "--profile",
                "casn2024",
                "--stamps-per-second",
                "12",
                "--no-bands",
                "--out",
                str(tmp_path / "p"),
                "--json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["result"] == json.loads((tmp_path / "p" / "plan.json").read_text())
    out = io.StringIO()
    print_renderable(plan_digest(doc["result"]), stream=out)
    text = out.getvalue()
    assert len(text.strip().splitlines()) <= 10 and "doing nothing" in text
    assert f"{doc['result']['baseline']['served']:,}" in text


def test_json_prints_one_document_and_quiet_prints_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["forecast", "--profile", "casn2024", "--out", str(tmp_path / "f"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)  # the whole of stdout is one JSON document
    assert (
        doc["command"] == "forecast"
        and doc["exit_code"] == 0
        and "served" in json.dumps(doc["result"])
    )
    assert main(["forecast", "--profile", "casn2024", "--out", str(tmp_path / "g"), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["plan", "--json", "--profile", "casn2024"]) == 2
    cap = capsys.readouterr()
    assert json.loads(cap.out)["exit_code"] == 2 and "UsageError" in cap.err


def test_every_scripted_command_has_quiet_and_json() -> None:
    from surgecast.cli import SCRIPTED, build_parser

    for name in SCRIPTED:
        flags = {o for a in build_parser(name)._actions for o in a.option_strings}
        assert {"--quiet", "--json"} <= flags, name


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_rehearsal_on_a_real_terminal_draws_a_bar_from_a_shadowing_cwd(tmp_path: Path) -> None:
    """One real rehearsal for two promises: the bar on a terminal, and children that start
    whatever the cwd holds (folders named surgecast, locust and scenarios that fail on
    import; tests/test_term_start.py)."""
    here = tmp_path / "here"
    for name in ("surgecast", "locust", "scenarios"):
        (here / name).mkdir(parents=True)
        (here / name / "__init__.py").write_text(
            f"raise ImportError('the {name} folder in the cwd was imported')\n"
        )
    master, slave = pty.openpty()
    env = child_env(None)
    env.update(COLUMNS="160", TERM="xterm")
    proc = subprocess.Popen(
        [
            *python_module("surgecast"),
            "rehearse",
            "--arrival-rate",
            "3",
            "--duration",
            "6",
            "--testbed-set",
            "issuer.service.mean=0.02",
            "--out",
            str(tmp_path / "r"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=here,
    )
    os.close(slave)
    chunks: list[bytes] = []
    end = time.monotonic() + 110
    while time.monotonic() < end:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(10)
    os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode in (0, 1), text[-2000:]
    assert "rehearsal" in text and "ETA" in text and "completed" in text
    assert "━" in text  # Rich's bar
    assert "folder in the cwd was imported" not in text
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["completed"] > 0
