"""Refresh docs/report-first-screen.png: the report's first screen, as the README shows it.

    python docs/screenshot.py                  # the shipped sample run (tests/fixtures/runs/full)
    python docs/screenshot.py --run runs/demo  # your own demo's run directory
    python docs/screenshot.py --out /tmp/shot.png  # somewhere else

The report is built into a temporary copy of the run directory (the run itself is not touched) and
opened in headless Chromium (apt-get install chromium) at 1280 x 800 with --screenshot. The PNG is
written whole or not at all (floor.atomic).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from floor.atomic import write_bytes  # noqa: E402
from reports.build import build_report  # noqa: E402
from reports.pdf import run_chromium  # noqa: E402

SAMPLE = ROOT / "tests" / "fixtures" / "runs" / "full"
DEFAULT_OUT = ROOT / "docs" / "report-first-screen.png"
WIDTH, HEIGHT = 1280, 800


def screenshot(run: Path, out: Path, *, lang: str = "en") -> Path:
    """Build `run`'s report in a temporary copy and save its first screen as the PNG `out`.

    >>> screenshot(SAMPLE, Path("/tmp/shot.png"))  # doctest: +SKIP
    PosixPath('/tmp/shot.png')
    """
    with tempfile.TemporaryDirectory(prefix="surgecast-shot-") as tmp:
        copy = Path(tmp) / "run"
        shutil.copytree(run, copy, ignore=shutil.ignore_patterns("report.*", "*.pdf"))
        build_report(copy, lang=lang)
        png = Path(tmp) / "shot.png"
        run_chromium(
            [
                f"--window-size={WIDTH},{HEIGHT}",
                f"--screenshot={png}",
                (copy / "report.html").as_uri(),
            ]
        )
        if not png.is_file():
            raise SystemExit(f"chromium wrote no screenshot of {copy / 'report.html'}")
        write_bytes(out, png.read_bytes())
    return out


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--run", type=Path, default=SAMPLE, help="run directory (default: the shipped sample run)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"PNG to write (default {DEFAULT_OUT.relative_to(ROOT)})",
    )
    p.add_argument("--lang", choices=("en", "id"), default="en")
    a = p.parse_args(argv)
    print(
        f"wrote {screenshot(a.run, a.out, lang=a.lang)} "
        f"({WIDTH}x{HEIGHT}, the report's first screen)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
