"""Bad, missing and malformed inputs: one line, exit 2, nothing half-written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from surgecast.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "runs"


def _copy(tmp_path: Path, kind: str = "full") -> Path:
    """A copy without manifest.json: the tests edit its files by hand, which the manifest would
    refuse."""
    d = tmp_path / kind
    shutil.copytree(FIXTURES / kind, d, ignore=shutil.ignore_patterns("report.*", "manifest.json"))
    return d


def _fails(args: list[str], capsys: pytest.CaptureFixture[str], *expect: str) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for e in expect:
        assert e in err, err
    return err


def test_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fails(["report", str(tmp_path / "nope")], capsys, "InputFileError:", "no such directory")


def test_empty_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fails(["report", str(tmp_path)], capsys, "holds none of the run files")
    assert not (tmp_path / "report.html").exists()


def test_bad_language(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fails(["report", str(_copy(tmp_path)), "--lang", "fr"], capsys, "UsageError:", "--lang")


@pytest.mark.parametrize(
    ("file", "mutate", "expect"),
    [
        (
            "plan.json",
            lambda t: t.replace('"verdict"', '"verdikt"'),
            "key verdict.served_by_deadline is missing",
        ),
        ("plan.json", lambda t: t[:-20], "not valid JSON"),
        (
            "plan.json",
            lambda t: t.replace('"served_by_deadline": false', '"served_by_deadline": "no"'),
            "served_by_deadline = 'no' is not a bool",
        ),
        (
            "capacity.json",
            lambda t: t.replace('"alpha"', '"alfa"', 1),
            "key usl.stamps.alpha is missing",
        ),
        (
            "queue.csv",
            lambda t: "\n".join(x + (",9" if i == 3 else "") for i, x in enumerate(t.split("\n"))),
            "line 4: 15 fields, the header has 14",
        ),
        (
            "timeline.csv",
            lambda t: t.replace("demand_per_s", "demand"),
            "column demand_per_s is missing",
        ),
        (
            "arrivals.csv",
            lambda t: t.replace("completed", "complete", 1),
            "column outcome = 'complete'",
        ),
        (
            "latency_history.csv",
            lambda t: t.replace(",register,", ",register,abc", 1),
            "line 2: column count = 'abc",
        ),
        ("gate_schedule.json", lambda t: t.replace('"closed"', '"shut"', 1), "mode = 'shut'"),
        (
            "summary.json",
            lambda t: t.replace('"scheduled"', '"planned"', 1),
            "key scheduled is missing",
        ),
    ],
)
def test_malformed_file_names_file_and_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str, mutate, expect: str
) -> None:
    d = _copy(tmp_path)
    p = d / file
    p.write_text(mutate(p.read_text(encoding="utf-8")), encoding="utf-8")
    err = _fails(["report", str(d)], capsys, "InputFileError:", file, expect)
    assert "queue.csv" not in err or file == "queue.csv"
    assert not (d / "report.html").exists()
    assert not list(d.glob(".report.html.*"))  # no temporary left behind


def test_bad_histogram(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _copy(tmp_path, "rehearsal")
    (d / "latency" / "stamp.service.hdr").write_text("not base64 at all\n")
    _fails(["report", str(d)], capsys, "stamp.service.hdr", "not a base64 HDR histogram")
    assert not (d / "report.html").exists()


def test_old_report_survives_a_failed_rebuild(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = _copy(tmp_path, "plan")
    assert main(["report", str(d)]) == 1  # written; the plan's verdict is red
    before = (d / "report.html").read_bytes()
    (d / "plan.json").write_text("{")
    _fails(["report", str(d)], capsys, "plan.json")
    assert (d / "report.html").read_bytes() == before


def test_any_subset_of_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _copy(tmp_path)
    for name in (
        "timeline.csv",
        "queue.csv",
        "latency",
        "probe.csv",
        "reconciliation.json",
        "profile.toml",
    ):
        p = d / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    assert main(["report", str(d)]) == 1  # written; the full fixture's plan verdict is red
    html = (d / "report.html").read_text(encoding="utf-8")
    assert "not checked: this directory has no reconciliation.json" in html
    assert 'data-absent="latency-table"' in html
    assert "timeline.csv" in html.split("Missing", 1)[1]


def test_pdf_without_chromium_still_writes_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    d = _copy(tmp_path, "probe")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("SURGECAST_CHROMIUM", raising=False)
    assert main(["report", str(d), "--pdf"]) == 2
    cap = capsys.readouterr()
    assert cap.err.count("\n") == 1
    assert cap.err.startswith("ChromiumMissing:") and "apt-get install chromium" in cap.err
    assert (d / "report.html").is_file() and not (d / "report.pdf").exists()
    assert cap.out.startswith("**Verdict:**")


def test_reconciliation_failure_in_words(tmp_path: Path) -> None:
    from reports.build import build_report

    d = _copy(tmp_path, "rehearsal")
    r = json.loads((d / "reconciliation.json").read_text())
    r.update(ok=False, lost_quota=3, duplicated_quota=1)
    (d / "reconciliation.json").write_text(json.dumps(r))
    build_report(d)
    html = (d / "report.html").read_text(encoding="utf-8")
    assert (
        "3 e-Meterai paid for were not credited; 1 e-Meterai were credited beyond what was paid for"
        in html
    )


def test_unfinished_stamps_alone_are_not_a_failure(tmp_path: Path) -> None:
    from reports.build import build_report

    d = _copy(tmp_path, "rehearsal")
    r = json.loads((d / "reconciliation.json").read_text())
    r.update(ok=True, unfinished_stamps=2)
    (d / "reconciliation.json").write_text(json.dumps(r))
    build_report(d)
    html = (d / "report.html").read_text(encoding="utf-8")
    assert 'id="integrity" class="callout ok"' in html
    assert "No quota lost or duplicated. 2 e-Meterai were paid and still being issued" in html
    assert 'data-warning="reconciliation"' not in html
