"""The `surgecast` command: a table of subcommands, each in its own module.

Every subcommand module in surgecast/commands/ defines::

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...   # the exit code

Modules are imported only when their command runs, so `surgecast testbed` never
imports Locust (which patches the standard library with gevent) and
`surgecast --help` is instant.

Errors: any SurgecastError is printed as one line `Name: message` on stderr and
its `exit_code` is returned; argparse's own usage errors become one line too.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from floor.entry import OneLineParser, run_entry
from floor.errors import EXIT_USAGE, UsageError
from floor.version import __version__

# name -> (module, one-line help). The order is the order of a surge's work.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("surgecast.commands.demo", "the whole method end to end on the embedded testbed"),
    "testbed": ("testbed.cli", "run the reference e-Meterai-like service"),
    "profile": ("surgecast.commands.profile", "show or check a surge profile"),
    "rehearse": ("surgecast.commands.rehearse", "play a surge with Locust against a target"),
    "probe": ("surgecast.commands.probe", "measure a target's capacity with stepped load"),
    "usl": ("surgecast.commands.usl", "fit the Universal Scalability Law to load,throughput"),
    "queue": ("surgecast.commands.queue", "Erlang B/C/A figures for one resource"),
    "forecast": ("surgecast.commands.forecast", "run the surge model as the profile says (served, lost, waiting)"),
    "plan": ("surgecast.commands.plan", "backlog forecast and a staged-reopening plan"),
    "report": ("surgecast.commands.report", "build the capacity report from a run directory"),
    "drill": ("surgecast.commands.drill", "a rehearsal with a fault injected, then reconciliation"),
}


def _top_help() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [f"surgecast {__version__}: rehearse a registration surge and plan the way through it",
             "", "usage: surgecast COMMAND [options]   (surgecast COMMAND --help for its options)",
             "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "exit codes: 0 ok, 1 a threshold failed, 2 usage or bad input, 3 data lost or duplicated"]
    return "\n".join(lines)


def build_parser(name: str) -> OneLineParser:
    """Build the parser of one subcommand, importing its module.

    >>> build_parser("queue").prog
    'surgecast queue'
    """
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = OneLineParser(prog=f"surgecast {name}", description=help_)
    module.add_arguments(parser)
    parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    >>> main(["--version"])
    surgecast 0.1.0
    0
    """
    args = list(sys.argv[1:] if argv is None else argv)
    return run_entry(lambda: _dispatch(args), name=args[0] if args else "surgecast")


def _dispatch(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        print(_top_help())
        return 0 if args else EXIT_USAGE
    if args[0] == "--version":
        print(f"surgecast {__version__}")
        return 0
    name = args[0]
    if name not in COMMANDS:
        raise UsageError(f"unknown command {name!r}; choose one of: {', '.join(COMMANDS)}")
    ns = build_parser(name).parse_args(args[1:])
    return int(ns._run(ns) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
