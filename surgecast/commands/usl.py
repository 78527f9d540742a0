"""`surgecast usl FILE.csv [--json]`: fit the Universal Scalability Law to load,throughput.

    surgecast usl probe_levels.csv
    surgecast usl probe_levels.csv --json   # alpha, beta, gamma, peak_load, ..., *_ci, warnings
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analysis.usl import UslFit


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `surgecast usl`."""
    parser.add_argument(
        "file",
        metavar="FILE.csv",
        help="a CSV with columns load,throughput (at least 4 rows, values > 0)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the fit as JSON (with a warnings list)"
    )
    parser.add_argument(
        "--weights",
        choices=("relative", "none"),
        default="relative",
        help="relative residuals (default; noise proportional to throughput) or plain least "
        "squares",
    )


def fit_file(path: str | Path, weights: str = "relative") -> UslFit:
    """Read `path` and fit the USL; every error names the file.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "u.csv"
    >>> _ = p.write_text("load,throughput\\n1,1\\n1,1\\n2,2\\n2,2\\n")
    >>> fit_file(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    floor.errors.InputFileError: ...u.csv: USL needs at least 3 distinct load levels to separate ...
    """
    from analysis.usl import fit_usl, read_load_throughput
    from floor.errors import InputFileError

    load, x = read_load_throughput(path)
    try:
        return fit_usl(load, x, weights=weights)
    except InputFileError as e:
        raise InputFileError(f"{path}: {e}") from None


def run(args: argparse.Namespace) -> int:
    """Fit and print; bad files exit 2 with one line naming the line and column."""
    fit = fit_file(args.file, args.weights)
    if args.json:
        print(json.dumps(fit.as_dict(), indent=2))
    else:
        print(fit.describe())
    return 0
