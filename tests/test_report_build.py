"""The report built from each fixture run directory: sections, charts, absent parts explained."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from reports.build import build_report
from surgecast.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "runs"
CHARTS = ("demand", "backlog", "arrivals", "latency", "throughput", "usl", "gates")
# kind -> (charts drawn, sections with data, parts explained as absent)
EXPECT = {
    "rehearsal": (
        {"demand", "backlog", "arrivals", "latency", "throughput"},
        {"latency-table", "error-table", "thresholds", "parameters"},
        {"stages", "chart-usl", "chart-gates", "usl-table", "kind-probe", "kind-plan"},
    ),
    "probe": (
        {"usl"},
        {"usl-table", "parameters"},
        {
            "stages",
            "chart-demand",
            "chart-backlog",
            "chart-arrivals",
            "chart-latency",
            "chart-throughput",
            "chart-gates",
            "latency-table",
            "error-table",
            "thresholds",
            "kind-rehearsal",
            "kind-plan",
        },
    ),
    "plan": (
        {"demand", "backlog", "gates"},
        set(),
        {
            "chart-arrivals",
            "chart-latency",
            "chart-throughput",
            "chart-usl",
            "latency-table",
            "error-table",
            "thresholds",
            "usl-table",
            "kind-rehearsal",
            "kind-probe",
        },
    ),
    "full": (
        set(CHARTS),
        {"latency-table", "error-table", "thresholds", "usl-table", "parameters"},
        set(),
    ),
}


@pytest.fixture
def run_copy(tmp_path: Path):
    def copy(kind: str) -> Path:
        dst = tmp_path / kind
        shutil.copytree(FIXTURES / kind, dst, ignore=shutil.ignore_patterns("report.*"))
        return dst

    return copy


@pytest.mark.parametrize("kind", list(EXPECT))
def test_each_kind_has_its_sections_and_explains_the_rest(kind: str, run_copy) -> None:
    d = run_copy(kind)
    result = build_report(d)
    html = (d / "report.html").read_text(encoding="utf-8")
    assert result.paths == [d / "report.html"]
    drawn, sections, absent = EXPECT[kind]
    for name in CHARTS:
        has_svg = re.search(rf'<figure id="chart-{name}"><svg', html) is not None
        assert has_svg == (name in drawn), f"{kind}: chart {name} drawn={has_svg}"
    for name in sections:
        assert f'id="{name}"' in html
        assert f'data-absent="{name}"' not in html
    found_absent = set(re.findall(r'data-absent="([^"]+)"', html))
    assert found_absent == absent, f"{kind}: absent parts {found_absent ^ absent}"
    assert 'id="verdict"' in html and "Verdict" in html
    # every drawn chart has axis labels with units and a title
    for name in drawn:
        svg = html.split(f'<figure id="chart-{name}">', 1)[1].split("</figure>", 1)[0]
        assert "<text" in svg


def test_full_report_first_screen(run_copy) -> None:
    d = run_copy("full")
    result = build_report(d)
    html = (d / "report.html").read_text(encoding="utf-8")
    first = html.split('id="charts"', 1)[0]
    assert 'class="verdict bad"' in first
    assert (
        "Not served in time: the backlog clears 11 hours after the deadline (10 Sep 23:59 WIB)"
        in first
    )
    for key in ("peak_demand", "peak_backlog", "longest_wait", "lost"):
        assert f'id="fig-{key}"' in first
    assert "No quota lost or duplicated." in first
    assert (
        "extend the deadline by 11 hours" in first and "raise capacity to 110 e-Meterai/s" in first
    )
    assert first.count("<tr data-stage=") == 5  # five stages
    assert 'id="chart-gates"' in first
    assert "**Verdict:** Not served in time" in result.summary_markdown
    assert "| reopen new registrations |" in result.summary_markdown


def test_units_on_every_axis(run_copy) -> None:
    d = run_copy("full")
    build_report(d)
    html = (d / "report.html").read_text(encoding="utf-8")
    for unit in (
        "applicants per second",
        "backlog (applicants)",
        "wait (hours)",
        "arrivals per wall second",
        "requests per wall second",
        "errors per wall second",
        "concurrent users (N)",
        "e-Meterai per second",
        "calendar time (WIB, UTC+7)",
    ):
        assert unit in html, unit


def test_self_contained_no_network(run_copy) -> None:
    d = run_copy("full")
    build_report(d)
    html = (d / "report.html").read_text(encoding="utf-8")
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "@import" not in html and "url(http" not in html and "<script" not in html
    assert "<link" not in html


def test_warnings_with_remedies(run_copy) -> None:
    import json

    d = run_copy("full")
    (d / "manifest.json").unlink()  # the files are edited below, which the manifest would refuse
    s = json.loads((d / "summary.json").read_text())
    s["generator_cpu_percent_max"] = 96.0
    (d / "summary.json").write_text(json.dumps(s))
    r = json.loads((d / "reconciliation.json").read_text())
    r.update(ok=False, lost_quota=3)
    (d / "reconciliation.json").write_text(json.dumps(r))
    c = json.loads((d / "capacity.json").read_text())
    c["usl"]["stamps"]["peak_load"] = 200.0
    (d / "capacity.json").write_text(json.dumps(c))
    build_report(d)
    html = (d / "report.html").read_text(encoding="utf-8")
    keys = re.findall(r'data-warning="([^"]+)"', html)
    assert keys[:2] == ["reconciliation", "generator_cpu"]  # the severe ones first
    assert {"dropped", "usl_extrapolated", "thin_percentiles"} <= set(keys)
    assert "3 e-Meterai paid for were not credited" in html
    assert html.count("Remedy") >= 5


def test_served_verdict_is_green(run_copy) -> None:
    import json

    d = run_copy("plan")
    (d / "manifest.json").unlink()  # the files are edited below, which the manifest would refuse
    p = json.loads((d / "plan.json").read_text())
    p["verdict"] = {"served_by_deadline": True, "margin_hours": 6.0, "lost_applicants": 0}
    (d / "plan.json").write_text(json.dumps(p))
    result = build_report(d)
    html = (d / "report.html").read_text(encoding="utf-8")
    assert 'class="verdict ok"' in html
    assert "with 6 hours to spare" in html
    assert result.verdict_level == "ok"


def test_cli_prints_markdown_summary(run_copy, capsys: pytest.CaptureFixture[str]) -> None:
    d = run_copy("plan")
    assert (
        main(["report", str(d)]) == 1
    )  # the plan misses its deadline: a red verdict exits 1, like plan and demo
    out = capsys.readouterr().out
    assert out.startswith("**Verdict:**")
    assert "| Stage | From | To | Gates | Admission rate |" in out
    assert str(d / "report.html") in out
