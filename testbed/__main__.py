"""`python -m testbed`: the reference service on its own, without the command package.

The same flags and output as `surgecast testbed` (both run `testbed.cli`); `testbed.process.TestbedServer`
starts it this way, so nothing below the command imports the command::

    python -m testbed --port 0 --set issuer.workers=64
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from floor.entry import OneLineParser, run_entry
from testbed.cli import add_arguments, run


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags and serve until interrupted; the exit code (errors as one line)."""
    parser = OneLineParser(prog="surgecast testbed", description="run the reference e-Meterai-like service")
    add_arguments(parser)
    args = list(sys.argv[1:] if argv is None else argv)
    return run_entry(lambda: run(parser.parse_args(args)), name="testbed")


if __name__ == "__main__":
    raise SystemExit(main())
