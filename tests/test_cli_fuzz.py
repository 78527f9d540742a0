"""Hypothesis over the command-line grammar of every subcommand: whatever the flags and values,
`surgecast.cli.main` answers with an exit code in {0, 1, 2, 3} and at most one line on stderr,
never a traceback.

Calls are in-process for speed. Where a call would start real work (a testbed, a Locust
process, a plan computation, a report), the entry point is replaced by a sentinel that ends
the call: reaching it means every flag was accepted. Hosts are only loopback (a closed port)
or malformed, and --allow-remote is never generated, so no traffic leaves the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import types
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surgecast.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]


class Reached(BaseException):
    """Validation passed and real work would start here."""


def _sentinel(*_a: object, **_k: object) -> None:
    raise Reached


def _files(tmp: Path) -> list[str]:
    (tmp / "deep.toml").write_text("a = " + "[" * 3000 + "]" * 3000 + "\n")
    (tmp / "deep.json").write_text("[" * 3000 + "]" * 3000)
    (tmp / "text.txt").write_text("just words\n")
    (tmp / "empty").write_text("")
    (tmp / "bad.toml").write_text("[calendar\nx = = 1\n")
    (tmp / "gates_inf.json").write_text(
        '[{"at": "2024-09-06T02:00:00+07:00", "gate": "ordering", "mode": "rate", '
        '"rate_per_s": 1e400, "burst": 40}]'
    )
    (tmp / "gates_tiny.json").write_text(
        '[{"at": "2024-09-06T02:00:00+07:00", "gate": "ordering", "mode": "rate", '
        '"rate_per_s": 5e-324}]'
    )
    (tmp / "usl.csv").write_text("load,throughput\n1,1\n2,1.9\n4,3.5\n8,5\n")
    (tmp / "adir").mkdir(exist_ok=True)
    return [
        str(tmp / n)
        for n in (
            "deep.toml",
            "deep.json",
            "text.txt",
            "empty",
            "bad.toml",
            "gates_inf.json",
            "gates_tiny.json",
            "usl.csv",
            "adir",
            "missing.file",
        )
    ] + [
        "/proc/x",
        "/proc/self/status",
        "/dev/null",
        str(ROOT / "tests" / "fixtures" / "runs"),
        str(ROOT / "scenarios" / "profiles" / "steady.toml"),
        "casn2024",
        "steady",
        "no-such-profile",
    ]


NUMBERS = [
    "0",
    "-1",
    "1",
    "2.5",
    "1e400",
    "-1e400",
    "5e-324",
    "nan",
    "inf",
    "-inf",
    "99999",
    "65536",
    "18446744073709551617",
    "0x10",
    "1_000",
    "",
    " ",
    "1e308",
    "3600",
    "600",
]
HOSTS = [
    "http://[::1",
    "http://[::1]:99999",
    "http://127.0.0.1:99999",
    "http://127.0.0.1:1",
    "http://[::1]:1",
    "ftp://127.0.0.1",
    "http://",
    "127.0.0.1:1",
    "http://127.0.0.1:-5",
    "http://user:pw@127.0.0.1:1",
    "http://127.0.0.1:1/?q=1",
    "http://localhost:0",
    "http://127.0.0.1:1#f",
    "http://%31%32%37.0.0.1:1",
]
WORDS = [
    "",
    "-",
    "--",
    "-x",
    "--nope",
    "\u00e9\u00e8",
    "a\nb",
    "x" * 300,
    "stamp.p95<2s",
    "errors<1%:abort",
    "stamp.p95<1e400s",
    "dropped<nan%",
    "2024-09-02T00:00/2024-09-07T00:00",
    "2024-13-01T00:00/2024-01-01",
    "9999-12-31T00:00/0001-01-01T00:00",
    "issuer.workers=1e400",
    "issuer.workers=[[[[1]]]]",
    "a.b.c",
    "issuer.service.mean=5e-324",
    "1h30m",
    "5m",
    "90s",
    "10",
    "-5s",
    "1e400s",
    "en",
    "id",
    "kill-testbed",
    "show",
    "list",
    "check",
    "exponential:0.25",
    "lognormal:nan:1",
    "shed",
    "unbounded",
]
# never generated: --allow-remote (it would let a non-loopback host through)
FORBIDDEN = {"--allow-remote", "-h", "--help"}


def _flags(name: str) -> tuple[list[tuple[str, bool]], list[argparse.Action]]:
    parser = build_parser(name)
    flags, positionals = [], []
    for a in parser._actions:
        if not a.option_strings:
            if not isinstance(a, argparse._SubParsersAction):
                positionals.append(a)
            continue
        opt = a.option_strings[-1]
        if opt in FORBIDDEN:
            continue
        flags.append((opt, a.nargs != 0))
    return flags, positionals


GRAMMAR = {name: _flags(name) for name in COMMANDS}


@st.composite
def command_lines(draw: st.DrawFn, files: list[str]) -> list[str]:
    name = draw(st.sampled_from(sorted(COMMANDS)))
    flags, positionals = GRAMMAR[name]
    values = st.one_of(
        st.sampled_from(NUMBERS),
        st.sampled_from(HOSTS),
        st.sampled_from(WORDS),
        st.sampled_from(files),
        st.text(max_size=12),
    )
    argv = [name]
    if name == "profile":
        argv.append(draw(st.sampled_from(["show", "list", "check", "bogus"])))
    for _ in positionals if name != "profile" else [1]:
        if draw(st.booleans()):
            argv.append(draw(values))
    for opt, takes in draw(st.lists(st.sampled_from(flags), max_size=6)) if flags else []:
        argv.append(opt)
        if takes and draw(st.integers(0, 9)) > 0:
            argv.append(draw(values))
    if draw(st.integers(0, 9)) == 0:
        argv.insert(draw(st.integers(1, len(argv))), draw(values))
    if (
        "--host" in argv
    ):  # the value after --host is one of ours (loopback or malformed), never remote
        i = argv.index("--host")
        if i + 1 >= len(argv) or argv[i + 1] not in HOSTS:
            argv.insert(i + 1, draw(st.sampled_from(HOSTS)))
    if "--master-host" in argv:
        i = argv.index("--master-host")
        argv.insert(i + 1, "127.0.0.1")
    return argv


def _answer(argv: list[str]) -> tuple[int | str, str, str, list[str]]:
    """`main(argv)` in-process: (exit code or "reached", stderr, stdout, stderr's lines that
    are not progress)."""
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code: int | str = main(argv)
    except Reached:
        code = "reached"
    text = err.getvalue()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("[surgecast]")]
    return code, text, out.getvalue(), lines


def _patches() -> list:
    """Every entry point of real work replaced by the sentinel."""
    return [
        mock.patch("testbed.process.TestbedServer.start", _sentinel),
        mock.patch("testbed.server.serve", _sentinel),
        mock.patch("subprocess.Popen", _sentinel),
        mock.patch("subprocess.run", _sentinel),
        mock.patch("subprocess.call", _sentinel),
        mock.patch("scenarios.distributed_cli.wait_for_master", _sentinel),
        mock.patch("analysis.planner.make_plan", _sentinel),
        mock.patch("reports.build.build_report", _sentinel),
        mock.patch.dict(sys.modules, {"scenarios.probe": _fake_probe_module()}),
    ]


def _fake_probe_module() -> types.ModuleType:
    m = types.ModuleType("scenarios.probe")

    def getattr_(name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        raise Reached

    m.__getattr__ = getattr_  # type: ignore[attr-defined]
    return m


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return _files(tmp_path_factory.mktemp("fuzz-files"))


@pytest.mark.timeout(600)
def test_every_command_line_answers_one_line_and_a_contract_exit_code(
    files: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # default run directories land here
    monkeypatch.delenv("SURGECAST_ADMIN_TOKEN", raising=False)
    patches = _patches()
    seen: list[tuple[list[str], int | str]] = []

    @settings(
        max_examples=400,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(argv=command_lines(files))
    def one(argv: list[str]) -> None:
        code, text, printed, lines = _answer(argv)
        seen.append((argv, code))
        assert "Traceback" not in text + printed, (argv, text[-2000:])
        assert code == "reached" or code in (0, 1, 2, 3), (argv, code, text[-500:])
        assert len(lines) <= 1, (argv, lines[:5])

    with contextlib.ExitStack() as stack:
        for p in patches:
            stack.enter_context(p)
        one()
    assert "locust" not in sys.modules  # nothing gevent-patched this test process
    codes = {c for _, c in seen}
    assert 2 in codes and len(seen) >= 100, codes  # the grammar reaches refusals ...
    assert codes - {2}, codes  # ... and calls that pass validation


# the malformed calls that gave a traceback before (issue 11), each now one line and exit 2
NAMED = [
    (["rehearse", "--host", "http://[::1", "--arrival-rate", "1", "--out", "o"], "--host"),
    (
        ["rehearse", "--host", "http://127.0.0.1:99999", "--arrival-rate", "1", "--out", "o"],
        "--host",
    ),
    (["probe", "--host", "http://127.0.0.1:99999", "--out", "o"], "--host"),
    (
        [
            "rehearse",
            "--profile",
            "casn2024",
            "--gates",
            "{gates_inf.json}",
            "--scale",
            "0.001",
            "--out",
            "o",
        ],
        "rate_per_s",
    ),
    (
        [
            "rehearse",
            "--profile",
            "casn2024",
            "--gates",
            "{gates_tiny.json}",
            "--scale",
            "0.001",
            "--out",
            "o",
        ],
        "rate_per_s",
    ),
    (["profile", "check", "{deep.toml}"], "nested too deeply"),
    (["testbed", "--config", "{deep.toml}", "--port", "0"], "nested too deeply"),
    (["rehearse", "--arrival-rate", "1", "--out", "/proc/x"], "--out"),
    (["probe", "--out", "/proc/x"], "--out"),
    (["plan", "--profile", "casn2024", "--stamps-per-second", "10", "--out", "/proc/x"], "--out"),
    # plan and forecast share the flag and say the same thing of the same mistake
    *[
        (
            [cmd, "--profile", "casn2024", "--stamps-per-second", bad, "--out", "o"],
            f"--stamps-per-second = '{bad}': give a capacity > 0 stamps per second",
        )
        for cmd in ("plan", "forecast")
        for bad in ("abc", "0", "nan")
    ],
    (["testbed", "--db", "{text.txt}", "--port", "0"], "not an SQLite database"),
]


@pytest.mark.parametrize(("argv", "word"), NAMED)
def test_named_bad_inputs_are_one_line_exit_2(
    argv: list[str],
    word: str,
    files: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    by_name = {Path(f).name: f for f in files}
    argv = [by_name[a[1:-1]] if a.startswith("{") else a for a in argv]
    with (
        mock.patch("testbed.process.TestbedServer.start", _sentinel),
        mock.patch("testbed.server.serve", _sentinel),
        mock.patch("subprocess.Popen", _sentinel),
        mock.patch.dict(sys.modules, {"scenarios.probe": _fake_probe_module()}),
    ):
        code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "Traceback" not in err, (code, err)
    assert word in err, err
    assert "locust" not in sys.modules  # nothing gevent-patched this test process


def test_a_nul_byte_in_any_value_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    """Every command, every flag that takes a value and the first positional, given "\\x00"
    (no file can have that name; Python's open() raises ValueError, not OSError). Hypothesis
    found `testbed --config "\\x00"` once; this sweep covers the rest."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SURGECAST_ADMIN_TOKEN", raising=False)
    calls = []
    for name in sorted(COMMANDS):
        flags, positionals = GRAMMAR[name]
        head = [name, "show"] if name == "profile" else [name]
        calls += [[*head, opt, "\x00"] for opt, takes in flags if takes]
        if positionals:
            calls.append([*head, "\x00"])
    bad = []
    with contextlib.ExitStack() as stack:
        for p in _patches():
            stack.enter_context(p)
        for argv in calls:
            try:
                code, text, _printed, lines = _answer(argv)
            except Exception as e:  # noqa: BLE001 - the defect this test looks for
                code, text, lines = f"{type(e).__name__}: {e}", "", []
            if (
                "Traceback" in text
                or not (code == "reached" or code in (0, 1, 2, 3))
                or len(lines) > 1
            ):
                bad.append((argv, code, lines[:2]))
    assert len(calls) > 50 and not bad, bad
