"""Hypothesis fuzzing of every file reader in analysis/
and reports/ (issue 6, "bad input everywhere").

Property: a reader given any bytes either returns a well-formed result or raises a
SurgecastError whose message is one line naming the file (and the line, column or
key where one applies); never another exception. Two kinds of input:

* arbitrary bytes and text (non-UTF-8, NUL, BOM, CRLF, quoted newlines, huge numbers,
  NaN/inf, empty, header-only, missing and extra columns);
* the fixtures' valid files with fields mutated (wrong types, negative or non-finite
  numbers, missing keys, nested wrong types).

A few subprocess runs check the command line: exit 2, one line on stderr, nothing
half-written. Set SURGECAST_FUZZ_SCALE=20 to fuzz longer locally.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.probe import PROBE_COLUMNS, capacity_from_probe, read_probe_csv
from analysis.usl import fit_usl, read_load_throughput
from floor.errors import SurgecastError
from reports import charts
from reports.build import _params, _thresholds, _usl_rows, _what_if
from reports.figures import key_figures
from reports.i18n import Translator
from reports.load import RunData, load_run, read_csv, read_json
from reports.tables import error_rows, latency_rows
from reports.warnings import find_warnings

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "tests" / "fixtures" / "runs"
SCALE = max(1, int(os.environ.get("SURGECAST_FUZZ_SCALE", "1")))
TR = Translator("en")


def fuzz(n: int) -> settings:
    """Hypothesis settings for one fuzz test: `n` examples, no deadline."""
    return settings(
        max_examples=n * SCALE,
        deadline=None,
        derandomize=SCALE == 1,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A fresh directory per example (Hypothesis reuses function-scoped fixtures)."""
    d = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def clean(fn: Callable[..., Any], path: Path, *args: Any) -> Any:
    """Call fn(*args); a SurgecastError must be one line
    naming `path`; anything else fails the test."""
    try:
        return fn(*args)
    except SurgecastError as e:
        msg = str(e)
        assert msg and "\n" not in msg and "\r" not in msg, repr(msg)
        assert path.name in msg, f"{path.name} not named in {msg!r}"
        assert e.exit_code == 2
        return None


def finite_or_none(obj: Any, where: str = "") -> None:
    """Every float in a JSON-ready value is finite (capacity.json must stay strict JSON)."""
    if isinstance(obj, float):
        assert math.isfinite(obj), f"{where} = {obj}"
    elif isinstance(obj, dict):
        for k, v in obj.items():
            finite_or_none(v, f"{where}.{k}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            finite_or_none(v, f"{where}[{i}]")


# ---------------------------------------------------------------- strategies
NASTY_CELLS = [
    "",
    " ",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "1e309",
    "-1e309",
    "1e308",
    "-1",
    "0",
    "-0",
    "0.0",
    "1e-320",
    "abc",
    "1_000",
    " 7 ",
    "+3",
    "0x10",
    "True",
    "None",
    "null",
    "\x00",
    "\ufeff1",
    "9" * 400,
    "1" * 5000,
    "2024-09-03T08:00:00+07:00",
    "2024-09-03T08:00:00",
    "0001-01-01T00:00:00+07:00",
    "9999-12-31T23:59:59-07:00",
    "2024-09-03T08:00:00Z",
    "a\nb",
    'x"y',
    "é",
    "completed",
    "stamps",
    "journey",
    "register",
    "open",
    "dropped",
]
cells = st.one_of(
    st.sampled_from(NASTY_CELLS),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)


def _csv_text(rows: list[list[str]], eol: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=eol).writerows(rows)
    return buf.getvalue()


@st.composite
def raw_bytes(draw: st.DrawFn) -> bytes:
    """Anything: random bytes, random text, NUL, BOM, CRLF, non-UTF-8."""
    kind = draw(st.sampled_from(["bytes", "text", "latin1", "empty", "nul", "json"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "text":
        return draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    if kind == "latin1":
        return "concurrency,step\né,ü\xff\n".encode("latin-1") + draw(st.binary(max_size=20))
    if kind == "empty":
        return draw(st.sampled_from([b"", b"\n", b"\r\n", b"\xef\xbb\xbf", b" ", b"\x00"]))
    if kind == "nul":
        return b"a,b\x00,c\n\x00\x00\n" + draw(st.binary(max_size=20))
    return draw(
        st.sampled_from(
            [
                b"{",
                b"[]",
                b"null",
                b"1e999",
                b"NaN",
                b'"x"',
                b"{}",
                b'{"a": NaN}',
                b"[" * 5000,
                b'{"a":' * 3000,
            ]
        )
    )


@st.composite
def csv_bytes(draw: st.DrawFn, valid: bytes) -> bytes:
    """A valid CSV with its header and cells mutated:
    dropped/extra/renamed columns, nasty cells, odd endings."""
    rows = list(csv.reader(io.StringIO(valid.decode("utf-8"))))
    header, body = rows[0], rows[1 : draw(st.integers(1, 6))]
    op = draw(
        st.sampled_from(
            [
                "cells",
                "cells",
                "cells",
                "drop_col",
                "extra_col",
                "header_only",
                "ragged",
                "dup_col",
                "blank_lines",
            ]
        )
    )
    if op == "drop_col" and header:
        i = draw(st.integers(0, len(header) - 1))
        header = header[:i] + header[i + 1 :]
        body = [r[:i] + r[i + 1 :] for r in body]
    elif op == "extra_col":
        header = [*header, draw(st.sampled_from(["extra", "", "step", "a\nb"]))]
        body = [[*r, draw(cells)] for r in body]
    elif op == "header_only":
        body = []
    elif op == "ragged" and body:
        body[-1] = body[-1][: draw(st.integers(0, len(body[-1])))] + draw(
            st.lists(cells, max_size=2)
        )
    elif op == "dup_col" and header:
        header = [*header, header[0]]
        body = [[*r, draw(cells)] for r in body]
    elif op == "blank_lines":
        body = [*body, [], [""], body[0] if body else []]
    for _ in range(draw(st.integers(1, 4)) if body else 0):
        r = draw(st.integers(0, len(body) - 1))
        if body[r]:
            body[r][draw(st.integers(0, len(body[r]) - 1))] = draw(cells)
    text = _csv_text([header, *body], draw(st.sampled_from(["\n", "\r\n", "\r"])))
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data


NASTY_JSON = [
    None,
    True,
    False,
    0,
    -1,
    -1e308,
    1e308,
    2**70,
    float("nan"),
    float("inf"),
    -float("inf"),
    "",
    "x",
    "2024-13-01",
    "2024-09-03T08:00:00",
    "0001-01-01T00:00:00+14:00",
    "a\nb",
    [],
    [None],
    {},
    {"a": 1},
    [[[]]],
    {"": {}},
]


@st.composite
def json_bytes(draw: st.DrawFn, valid: bytes) -> bytes:
    """A valid JSON document with 1..3 fields replaced
    by a wrong type, a nasty number, or deleted."""
    obj = json.loads(valid)
    for _ in range(draw(st.integers(1, 3))):
        obj = _mutate(draw, obj, 0)
    text = json.dumps(obj, allow_nan=True)
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode("utf-8")


def _mutate(draw: st.DrawFn, obj: Any, depth: int) -> Any:
    if isinstance(obj, dict | list) and obj and draw(st.integers(0, 3)) > 0:
        if isinstance(obj, dict):
            k = draw(st.sampled_from(sorted(obj)))
            if draw(st.integers(0, 4)) == 0:
                return {kk: v for kk, v in obj.items() if kk != k}
            return {**obj, k: _mutate(draw, obj[k], depth + 1)}
        i = draw(st.integers(0, len(obj) - 1))
        return [*obj[:i], _mutate(draw, obj[i], depth + 1), *obj[i + 1 :]]
    return draw(st.sampled_from(NASTY_JSON))


def any_file(valid: bytes, kind: str) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, or the valid file mutated (weighted towards structure-aware mutation)."""
    structured = csv_bytes(valid) if kind == "csv" else json_bytes(valid)
    return st.one_of(raw_bytes(), structured, structured)


# ---------------------------------------------------------------- analysis/usl.py
USL_VALID = b"load,throughput\n1,10\n2,19\n4,35\n8,55\n16,60\n"


@fuzz(150)
@given(any_file(USL_VALID, "csv"))
def test_usl_csv_reader_and_fit(data: bytes) -> None:
    """read_load_throughput then fit_usl (what `surgecast usl FILE` does)."""
    from surgecast.commands.usl import fit_file

    with scratch() as d:
        p = d / "levels.csv"
        p.write_bytes(data)
        got = clean(read_load_throughput, p, p)
        if got is not None:
            load, x = got
            assert load.shape == x.shape and load.ndim == 1 and len(load) >= 4
            assert (
                np.all(np.isfinite(load))
                and np.all(load > 0)
                and np.all(np.isfinite(x))
                and np.all(x > 0)
            )
        fit = clean(fit_file, p, p)
        if fit is not None:
            finite_or_none(fit.as_dict(), "fit")
            assert fit.describe()


@fuzz(60)
@given(
    st.lists(st.tuples(st.floats(1e-300, 1e300), st.floats(1e-300, 1e300)), min_size=4, max_size=8)
)
def test_fit_usl_extreme_values(points: list[tuple[float, float]]) -> None:
    """Valid-looking but extreme numbers: a fit or an InputFileError, never a scipy/numpy error."""
    try:
        fit = fit_usl([n for n, _ in points], [x for _, x in points])
    except SurgecastError as e:
        assert "\n" not in str(e)
        return
    finite_or_none(fit.as_dict(), "fit")


# ---------------------------------------------------------------- analysis/probe.py
PROBE_VALID = (RUNS / "probe" / "probe.csv").read_bytes()


@fuzz(120)
@given(any_file(PROBE_VALID, "csv"), st.sampled_from([0.0, 0.01, 0.5]))
def test_probe_csv_to_capacity(data: bytes, max_error_ratio: float) -> None:
    """read_probe_csv then capacity_from_probe: rows with
    the columns' types, a strict-JSON capacity dict."""
    with scratch() as d:
        p = d / "probe.csv"
        p.write_bytes(data)
        rows = clean(read_probe_csv, p, p)
        if rows is None:
            return
        for r in rows:
            assert (
                set(PROBE_COLUMNS) <= set(r)
                and isinstance(r["concurrency"], int)
                and r["concurrency"] >= 1
            )
            assert isinstance(r["step"], str) and r["step"]
        cap = clean(
            lambda: capacity_from_probe(rows, max_error_ratio=max_error_ratio, measured_at="x"), p
        )
        if cap is not None:
            finite_or_none(cap, "capacity")
            json.dumps(cap, allow_nan=False)


@fuzz(40)
@given(st.lists(st.dictionaries(st.sampled_from(PROBE_COLUMNS), cells, min_size=8), max_size=5))
def test_capacity_from_raw_rows(rows: list[dict[str, str]]) -> None:
    """Rows given as strings (the documented input): capacity or InputFileError naming the row."""
    try:
        cap = capacity_from_probe(rows, measured_at="x")
    except SurgecastError as e:
        assert "\n" not in str(e) and "row " in str(e)
        return
    finite_or_none(cap, "capacity")


# ---------------------------------------------------------------- surgecast plan --capacity
CAPACITY_VALID = (RUNS / "probe" / "capacity.json").read_bytes()


@fuzz(100)
@given(any_file(CAPACITY_VALID, "json"))
def test_plan_capacity_reader(data: bytes) -> None:
    """The planner's capacity.json reader: a finite
    rate > 0 or an InputFileError naming the file."""
    from surgecast.commands.plan import _capacity_file

    with scratch() as d:
        p = d / "capacity.json"
        p.write_bytes(data)
        v = clean(_capacity_file, p, str(p))
        if v is not None:
            assert isinstance(v, float) and math.isfinite(v) and v > 0


# ---------------------------------------------------------------- reports/load.py
RUN_FILES = {  # file -> the fixture directory it comes from
    "run.json": "full",
    "summary.json": "full",
    "arrivals.csv": "full",
    "queue.csv": "full",
    "latency_history.csv": "full",
    "reconciliation.json": "full",
    "audit.json": "full",
    "locust_failures.csv": "full",
    "probe.csv": "probe",
    "capacity.json": "probe",
    "plan.json": "plan",
    "timeline.csv": "plan",
    "gate_schedule.json": "plan",
}
# What else a directory needs for the file's charts to draw (kept small: charts are slow).
COMPANIONS = {
    "probe.csv": ("capacity.json",),
    "capacity.json": ("probe.csv",),
    "gate_schedule.json": (),
    "plan.json": (),
    "timeline.csv": (),
}
CHARTS_OF = {
    "timeline.csv": ("demand", "backlog"),
    "queue.csv": ("backlog",),
    "arrivals.csv": ("arrivals",),
    "latency_history.csv": ("latency", "throughput"),
    "capacity.json": ("usl",),
    "probe.csv": ("usl",),
    "plan.json": ("gates",),
    "gate_schedule.json": ("gates",),
    "run.json": ("backlog",),
}
CHART_FNS = {c.name: c.draw for c in charts.ALL_CHARTS}


# A companion run.json (a probe writes none): the rehearsal's, without its run id, so the fuzzed
# file's own run id never clashes with it (the manifest check is tested in test_run_ids.py).
RUN_JSON = json.dumps(
    {k: v for k, v in json.loads((RUNS / "full" / "run.json").read_text()).items() if k != "run_id"}
).encode()


def _valid(name: str) -> bytes:
    data = (RUNS / RUN_FILES[name] / name).read_bytes()
    if name.endswith(".csv"):  # keep the CSVs short: a few rows carry every shape
        data = b"\n".join(data.splitlines()[:12]) + b"\n"
    return data


def consume(run: RunData, charts_too: tuple[str, ...] = ()) -> None:
    """Everything the report derives from a loaded directory (the 'well-formed' check)."""
    key_figures(run, TR)
    find_warnings(run, TR)
    latency_rows(run, TR)
    error_rows(run, TR)
    _params(run, TR)
    _thresholds(run, TR)
    _usl_rows(run, TR)
    _what_if(run, TR)
    _ = run.kinds, run.tz
    for name in charts_too:
        CHART_FNS[name](run, TR)


def _run_file_test(name: str, n: int, with_charts: bool) -> Callable[..., None]:
    kind = "csv" if name.endswith(".csv") else "json"

    @fuzz(n)
    @given(any_file(_valid(name), kind))
    def test(data: bytes) -> None:
        with scratch() as d:
            for other in COMPANIONS.get(name, ()):
                (d / other).write_bytes(_valid(other))
            if (
                name == "run.json"
            ):  # run.json alone says nothing to draw; give the backlog chart a queue
                (d / "queue.csv").write_bytes(_valid("queue.csv"))
            else:
                # a directory with a header-only CSV alone is "not a run directory", which
                # names no file
                (d / "run.json").write_bytes(RUN_JSON)
            p = d / name
            p.write_bytes(data)
            run = clean(load_run, p, d)
            if run is not None:
                consume(run, CHARTS_OF.get(name, ()) if with_charts else ())

    test.__name__ = f"test_load_run_{name.replace('.', '_')}"
    return test


# JSON and CSV files of a run directory: many examples through the loader and the figures ...
for _name in RUN_FILES:
    globals()[f"test_load_{_name.replace('.', '_')}"] = _run_file_test(_name, 60, with_charts=False)
# ... and fewer through the charts too (matplotlib is ~0.1 s a chart).
for _name in CHARTS_OF:
    globals()[f"test_charts_{_name.replace('.', '_')}"] = _run_file_test(_name, 8, with_charts=True)


@fuzz(60)
@given(raw_bytes())
def test_read_json_and_read_csv_any_bytes(data: bytes) -> None:
    """The two generic readers of reports/load.py on anything."""
    with scratch() as d:
        p = d / "x.json"
        p.write_bytes(data)
        clean(read_json, p, p)
        q = d / "x.csv"
        q.write_bytes(data)
        s = clean(lambda: read_csv(q, numbers=("a",), times=("b",), texts=("c",)), q)
        if s is not None:
            assert len(s["a"]) == len(s["b"]) == len(s["c"])


HDR_VALID = (RUNS / "full" / "latency" / "stamp.service.hdr").read_bytes()


@fuzz(40)
@given(
    st.one_of(
        raw_bytes(),
        st.binary(max_size=40).map(lambda b: HDR_VALID[:20] + b),
        st.integers(0, len(HDR_VALID)).map(lambda i: HDR_VALID[:i]),
        st.tuples(st.integers(0, len(HDR_VALID) - 1), st.integers(0, 255)).map(
            lambda t: HDR_VALID[: t[0]] + bytes([t[1]]) + HDR_VALID[t[0] + 1 :]
        ),
    )
)
def test_load_run_hdr(data: bytes) -> None:
    """latency/*.hdr: a decodable histogram or an InputFileError naming the .hdr file."""
    with scratch() as d:
        (d / "latency").mkdir()
        p = d / "latency" / "stamp.service.hdr"
        p.write_bytes(data)
        run = clean(load_run, p, d)
        if run is not None:
            consume(run)


@fuzz(25)
@given(raw_bytes())
def test_load_run_profile_toml(data: bytes) -> None:
    """profile.toml beside a plan: a profile or an InputFileError naming profile.toml."""
    with scratch() as d:
        (d / "plan.json").write_bytes(_valid("plan.json"))
        p = d / "profile.toml"
        p.write_bytes(data)
        run = clean(load_run, p, d)
        if run is not None:
            consume(run)


# ---------------------------------------------------------------- the command line
def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "surgecast", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def _one_line_error(r: subprocess.CompletedProcess[str], name: str, *expect: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and r.stderr.endswith("\n"), r.stderr
    assert lines[0].split(":", 1)[0] in ("InputFileError", "FieldError", "UsageError"), lines[0]
    for e in (name, *expect):
        assert e in lines[0], lines[0]


def _no_temporaries(d: Path) -> None:
    assert not [p for p in d.rglob(".*.tmp")], list(d.rglob(".*"))


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (b"load,throughput\n1,10\n2,\xff\n", "not UTF-8"),
        (b"load,throughput\n1,10\n2,19\n4,1e999\n8,55\n", "line 4, column throughput"),
        (b'"lo\nad",throughput\n1,2\n', "no column 'load'"),
        (b"load,throughput\n1,1e300\n2,1e300\n4,1e300\n8,1e300\n", ""),
    ],
)
def test_cli_usl_bad_file(tmp_path: Path, content: bytes, expect: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_bytes(content)
    r = _cli("usl", str(p), cwd=tmp_path)
    if r.returncode == 0:  # extreme but valid: a fit, printed
        assert "USL fit" in r.stdout
        return
    _one_line_error(r, "bad.csv", expect)


def test_cli_report_corrupted_directory_keeps_old_report(tmp_path: Path) -> None:
    d = tmp_path / "run"
    shutil.copytree(RUNS / "probe", d, ignore=shutil.ignore_patterns("report.*", "manifest.json"))
    old = b"<!DOCTYPE html><p>an older report</p>\n"
    (d / "report.html").write_bytes(old)
    (d / "capacity.json").write_bytes(
        b'{"stamps_per_second": 12, "usl": {"stamps": {"alpha": "x"}}}'
    )
    before = sorted(p.name for p in d.iterdir())
    r = _cli("report", str(d), cwd=tmp_path)
    _one_line_error(r, "capacity.json", "usl.stamps.alpha")
    assert (d / "report.html").read_bytes() == old
    assert sorted(p.name for p in d.iterdir()) == before
    _no_temporaries(d)


def test_cli_report_binary_garbage_writes_nothing(tmp_path: Path) -> None:
    d = tmp_path / "run"
    shutil.copytree(RUNS / "plan", d, ignore=shutil.ignore_patterns("report.*", "manifest.json"))
    (d / "timeline.csv").write_bytes(b"calendar_at,demand_per_s\n\x00\xff\xfe garbage\r\n")
    r = _cli("report", str(d), cwd=tmp_path)
    _one_line_error(r, "timeline.csv")
    assert not (d / "report.html").exists() and not (d / "report.pdf").exists()
    _no_temporaries(d)


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (b'{"stamps_per_second": ', "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"stamps_per_second": NaN}', "stamps_per_second"),
        (b"[1, 2]", "stamps_per_second"),
    ],
)
def test_cli_plan_broken_capacity_writes_nothing(
    tmp_path: Path, content: bytes, expect: str
) -> None:
    cap = tmp_path / "broken.json"
    cap.write_bytes(content)
    out = tmp_path / "plan"
    r = _cli(
        "plan", "--profile", "casn2024", "--capacity", str(cap), "--out", str(out), cwd=tmp_path
    )
    _one_line_error(r, "broken.json", expect)
    assert not out.exists() or not any(out.iterdir())
    _no_temporaries(tmp_path)
