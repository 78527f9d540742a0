"""`surgecast report DIR [--lang en|id] [--pdf]`: build DIR/report.html (and report.pdf).

    surgecast report runs/demo               # English, prints a Markdown summary
    surgecast report runs/demo --lang id --pdf

Exit 0 when the report is written and its verdict is not red; 1 when the verdict
is red (target not met, thresholds failed) and 3 when reconciliation found data
lost or duplicated, like the other commands (the report is still written); 2 for a missing
or malformed file, or a directory whose files come from different runs (nothing written), or
when --pdf cannot run Chromium (report.html is still written).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from floor.errors import EXIT_INTEGRITY, EXIT_THRESHOLD


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `surgecast report`."""
    parser.add_argument(
        "dir",
        metavar="DIR",
        type=Path,
        help="a run directory (rehearsal, probe, plan, or all three)",
    )
    parser.add_argument(
        "--lang",
        choices=("en", "id"),
        default="en",
        help="language of the report: en (default) or id (Bahasa Indonesia)",
    )
    parser.add_argument(
        "--pdf",
        action="store_true",
        help="also print DIR/report.pdf with headless Chromium (apt-get install chromium)",
    )


def run(args: argparse.Namespace) -> int:
    """Build the report, print the summary, then print the PDF if asked."""
    from reports.build import build_report

    result = build_report(args.dir, lang=args.lang, pdf=False)
    print(result.summary_markdown, flush=True)
    if args.pdf:
        from reports.pdf import print_pdf

        pdf = print_pdf(result.paths[0], args.dir / "report.pdf")
        print(f"PDF: {pdf}")
    if result.integrity_level == "bad":
        return EXIT_INTEGRITY  # data lost or duplicated (3), as rehearse and demo say
    return EXIT_THRESHOLD if result.verdict_level == "bad" else 0
