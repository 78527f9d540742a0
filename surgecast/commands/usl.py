"""`surgecast usl FILE.csv [--json]`: fit the Universal Scalability Law to load,throughput.

    surgecast usl probe_levels.csv
    surgecast usl probe_levels.csv --json   # alpha, beta, gamma, peak_load, peak_throughput, limit_throughput, ...
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `surgecast usl`."""
    parser.add_argument("file", metavar="FILE.csv", help="a CSV with columns load,throughput (at least 4 rows, values > 0)")
    parser.add_argument("--json", action="store_true", help="print the fit as JSON")


def run(args: argparse.Namespace) -> int:
    """Fit and print; bad files exit 2 with one line naming the line and column."""
    from analysis.usl import fit_usl, read_load_throughput

    load, x = read_load_throughput(args.file)
    fit = fit_usl(load, x)
    if args.json:
        print(json.dumps(fit.as_dict(), indent=2))
    else:
        print(fit.describe())
    return 0
