"""Both languages: the same keys, Indonesian number
formats, no English leaking into the id report."""

from __future__ import annotations

import html as htmlmod
import json
import re
import shutil
from pathlib import Path

from reports.build import build_report
from reports.i18n import TRANSLATIONS_DIR, Translator

FIXTURES = Path(__file__).parent / "fixtures" / "runs"


def _table(lang: str) -> dict[str, str]:
    return json.loads((TRANSLATIONS_DIR / f"{lang}.json").read_text(encoding="utf-8"))


def test_translation_tables_have_the_same_keys_and_fields() -> None:
    en, id_ = _table("en"), _table("id")
    assert set(en) == set(id_)
    for key in (k for k in en if not k.startswith("_")):
        assert set(re.findall(r"\{(\w+)\}", en[key])) == set(re.findall(r"\{(\w+)\}", id_[key])), (
            key
        )


def test_number_formats() -> None:
    en, id_ = Translator("en"), Translator("id")
    assert en.num(1234567.5, 1) == "1,234,567.5"
    assert id_.num(1234567.5, 1) == "1.234.567,5"
    assert id_.pct(0.162, 1) == "16,2%"
    assert id_.hours(10.5) == "10,5 jam"


def visible_text(html: str) -> str:
    """Text a reader sees: markup stripped, chart <text> kept, style removed."""
    html = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    html = re.sub(r"<title>.*?</title>", " ", html, flags=re.S)
    return htmlmod.unescape(re.sub(r"<[^>]+>", " ", html))


def test_id_report_has_no_english_from_the_table(tmp_path: Path) -> None:
    d = tmp_path / "full"
    shutil.copytree(FIXTURES / "full", d, ignore=shutil.ignore_patterns("report.*"))
    build_report(d, lang="id")
    html = (d / "report.html").read_text(encoding="utf-8")
    assert '<html lang="id">' in html
    text = visible_text(html)
    # Data from the run files stay as written (stage names
    # and reasons, the profile's title): not the table's.
    plan = json.loads((d / "plan.json").read_text(encoding="utf-8"))
    for data in [s[k] for s in plan["stages"] for k in ("name", "why")] + [
        "CASN 2024 registration and the e-Meterai outage"
    ]:
        text = text.replace(data, " ")
    text = " ".join(text.split())
    en, id_ = _table("en"), _table("id")
    leaks = []
    for key, value in en.items():
        if key.startswith("_") or value == id_[key]:
            continue
        for fragment in re.split(r"\{\w+\}", value):
            fragment = " ".join(fragment.split()).strip(" .,:;()")
            if len(fragment) >= 10 and fragment not in id_[key] and fragment in text:
                leaks.append((key, fragment))
    assert not leaks
    # Indonesian text and number formats in the page and in the charts
    assert "Tidak terlayani tepat waktu" in text
    assert "11 jam" in text and "40.968 pelamar" in text
    # chart labels (SVG text)
    assert "pelamar per detik" in text and "waktu kalender (WIB, UTC+7)" in text


def test_english_is_default_and_has_english_charts(tmp_path: Path) -> None:
    d = tmp_path / "plan"
    shutil.copytree(FIXTURES / "plan", d, ignore=shutil.ignore_patterns("report.*"))
    build_report(d)
    text = visible_text((d / "report.html").read_text(encoding="utf-8"))
    assert "applicants per second" in text and "pelamar" not in text
