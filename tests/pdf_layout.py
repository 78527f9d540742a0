"""Where a printed report's headings sit, from its PDF:
pdftoppm renders the pages, pdftotext finds the headings.

    pages = page_fill(Path("report.pdf"))  # per page: the share of its height that holds ink
    spots = heading_spots(Path("report.pdf"), ["Warnings", ...])
    layout_problems(pages, spots)  # [] when no heading is orphaned and no page is half empty

Both tools come from poppler-utils (apt-get install poppler-utils; .ci/run installs it).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import numpy as np
from PIL import Image

DPI = 30
ORPHAN_ROOM = (
    0.02  # a heading needs at least a line (2% of the page height) of ink below it on its page
)
LEAST_FILL = 0.5  # every page but the last has ink down to at least half its height


@dataclass(frozen=True)
class Spot:
    """One heading on the printed page: its text, page
    (1-based) and bottom as a share of the page height."""

    text: str
    page: int
    bottom: float


def page_fill(pdf: Path) -> list[tuple[float, list[float]]]:
    """Per page (rendered with pdftoppm): (lowest ink row
    as a share of the height, every inked row's share)."""
    with tempfile.TemporaryDirectory(prefix="pdf-pages-") as tmp:
        subprocess.run(
            ["pdftoppm", "-r", str(DPI), "-gray", str(pdf), f"{tmp}/p"], check=True, timeout=60
        )
        out = []
        for f in sorted(Path(tmp).glob("p-*.pgm")):
            img = np.asarray(Image.open(f).convert("L"), dtype=int)
            rows = np.flatnonzero((img < 200).any(axis=1))
            h = img.shape[0]
            out.append(((rows.max() + 1) / h if rows.size else 0.0, [r / h for r in rows]))
        return out


def heading_texts(html: str) -> list[str]:
    """The h2 and h3 headings of a report, as text."""
    return [
        re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", m))).strip()
        for m in re.findall(r"<h[23][^>]*>(.*?)</h[23]>", html, re.S)
    ]


def heading_spots(pdf: Path, headings: list[str]) -> list[Spot]:
    """Each heading's page and bottom, from pdftotext
    -bbox-layout (a line whose words are the heading)."""
    xml = subprocess.run(
        ["pdftotext", "-bbox-layout", str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    wanted = {h: h for h in headings}
    spots = []
    for n, page in enumerate(re.findall(r"<page [^>]*>(.*?)</page>", xml, re.S), start=1):
        height = float(re.search(r'height="([\d.]+)"', xml.split("<page ")[n]).group(1))
        for line in re.findall(r"<line [^>]*>(.*?)</line>", page, re.S):
            words = re.findall(r'<word [^>]*yMax="([\d.]+)"[^>]*>(.*?)</word>', line)
            text = " ".join(unescape(w) for _y, w in words)
            if text in wanted:
                spots.append(
                    Spot(text=text, page=n, bottom=max(float(y) for y, _w in words) / height)
                )
    return spots


def layout_problems(pages: list[tuple[float, list[float]]], spots: list[Spot]) -> list[str]:
    """Orphaned headings (too little ink after them on their
    page) and pages that end before half their height."""
    problems = []
    for s in spots:
        _last, rows = pages[s.page - 1]
        below = [r for r in rows if r > s.bottom + 0.005]
        if not below or max(below) - s.bottom < ORPHAN_ROOM:
            problems.append(
                f"heading {s.text!r} orphaned at the bottom of page {s.page} ({s.bottom:.0%} down)"
            )
    for i, (last, _rows) in enumerate(pages[:-1], start=1):
        if last < LEAST_FILL:
            problems.append(f"page {i} ends at {last:.0%} of its height (half empty)")
    return problems
