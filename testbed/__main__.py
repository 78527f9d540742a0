"""`python -m testbed`: the reference service on its own, without the command package.

The same flags and output as `surgecast testbed` (both run `testbed.cli`);
`testbed.process.TestbedServer` starts it this way, so nothing below the command imports the
command::

    python -m testbed --port 0 --set issuer.workers=64
    python -m testbed --openapi docs/openapi.json  # write the OpenAPI description and exit
    python -m testbed --openapi -                  # print it
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from floor.entry import OneLineParser, run_entry
from testbed.cli import add_arguments, run


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags and serve until interrupted; the exit code (errors as one line)."""
    parser = OneLineParser(
        prog="surgecast testbed", description="run the reference e-Meterai-like service"
    )
    add_arguments(parser)
    parser.add_argument(
        "--openapi",
        metavar="FILE",
        default=None,
        help="write the OpenAPI description of the routes to FILE (- prints it) and exit",
    )
    args = list(sys.argv[1:] if argv is None else argv)
    return run_entry(lambda: _run(parser.parse_args(args)), name="testbed")


def _run(ns: argparse.Namespace) -> int:
    if ns.openapi is None:
        return run(ns)
    from floor.atomic import write_text
    from testbed.app import routes
    from testbed.openapi import spec_json

    if ns.openapi == "-":
        print(spec_json(routes), end="")
    else:
        write_text(ns.openapi, spec_json(routes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
