"""The planner's first screen in real headless Chromium, in both languages: the verdict on p5
with the target and a dated extension, plan against doing nothing as three numbers, the
timetable, the waiting rooms, the stages drawn zoomed, stage names and reasons translated."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from analysis.stages import STAGES
from reports.build import build_report
from reports.charts import reopening_window
from reports.pdf import CHROMIUM_NAMES, run_chromium
from surgecast.cli import main

pytestmark = pytest.mark.skipif(not any(shutil.which(n) for n in CHROMIUM_NAMES),
                                reason="chromium not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def plan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("reportplan") / "p"
    with contextlib.redirect_stdout(io.StringIO()):
        assert (
            main(["plan", "--profile", "casn2024", "--stamps-per-second", "10", "--out", str(d)])
            == 0
        )
    return d


def _dom(d: Path, lang: str) -> str:
    build_report(d, lang=lang)
    proc = run_chromium(["--dump-dom", (d / "report.html").as_uri()])
    return proc.stdout.decode("utf-8")


def _text(dom: str) -> str:
    dom = re.sub(r"<style.*?</style>", " ", dom, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", dom).split())


def test_first_screen_in_english(plan_dir: Path) -> None:
    plan = json.loads((plan_dir / "plan.json").read_text())
    dom = _dom(plan_dir, "en")
    text = _text(dom)
    verdict = _text(dom[dom.index('id="verdict"') : dom.index("</div>", dom.index('id="verdict"'))])
    assert "85.0%" in verdict and "p5" in verdict  # the target stated, p5 used
    if plan["required_extension_days"]:
        day = datetime.fromisoformat(plan["extended_close"])
        assert f"{day.day} Sep" in verdict and str(plan["required_extension_days"]) in verdict
    table = _text(
        dom[dom.index('id="outcomes"') : dom.index("</table>", dom.index('id="outcomes"'))]
    )
    for key in ("served", "waiting", "lost"):
        assert f"{plan['outcome'][key]:,}" in table and f"{plan['baseline'][key]:,}" in table
    assert "Doing nothing" in table
    timetable = dom[
        dom.index('id="timetable"') : dom.index("</table>", dom.index('id="timetable"'))
    ]
    assert timetable.count("<tr") >= 12 + 2
    assert "Waiting-room settings" in text and "Cloudflare" in text and "Queue-it" in text
    assert 'id="chart-reopening"' in dom
    assert "rests on an assumption" in text
    for s in STAGES:
        if any(st["id"] == s.id for st in plan["stages"]):
            assert s.name["en"] in text


def test_first_screen_in_bahasa_indonesia(plan_dir: Path) -> None:
    plan = json.loads((plan_dir / "plan.json").read_text())
    dom = _dom(plan_dir, "id")
    text = _text(dom)
    assert '<html lang="id">' in dom
    assert "Target TIDAK tercapai" in text or "Target tercapai" in text
    assert (
        "Tanpa pengaturan" in text
        and "Jadwal pemulihan per jam" in text
        and "Pengaturan ruang tunggu" in text
    )
    for st in plan["stages"]:
        spec = next(s for s in STAGES if s.id == st["id"])
        assert spec.name["id"] in text and spec.why["id"] in text
        assert (
            st["name"] not in text and st["why"] not in text
        )  # the English from plan.json does not leak
    assert "pembatasan mengorbankan" in text or "lebih banyak" in text
    assert "bergantung pada asumsi" in text  # the plan's warning, translated
    assert "rests on an assumption" not in text


def test_a_twelve_hour_reopening_is_visible() -> None:
    a = datetime(2024, 9, 5, 20)
    from datetime import timedelta

    b, e = reopening_window(a, [a, a + timedelta(hours=6), a + timedelta(hours=12)])
    assert timedelta(hours=12) / (e - b) >= 1 / 3  # at least a third of the chart's width
    b, e = reopening_window(a, [a, a + timedelta(days=3)])
    assert e - b >= timedelta(days=3)  # a long reopening is not cut off
