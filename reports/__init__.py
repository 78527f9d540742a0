"""The capacity report: one self-contained HTML file (and optionally a PDF) from a run directory.

    >>> from pathlib import Path
    >>> from reports.build import build_report
    >>> result = build_report(Path("tests/fixtures/runs/full"), lang="en")  # doctest: +SKIP
    >>> print(result.summary_markdown)  # doctest: +SKIP

Modules: `load` reads the run directory, `figures` derives the key figures,
`warnings` the warnings with remedies, `charts` draws (matplotlib, no pyplot),
`i18n` translates and formats numbers, `build` renders and writes, `pdf` prints
with headless Chromium.
"""
