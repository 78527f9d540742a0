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

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from floor.entry import OneLineParser, did_you_mean, run_entry
from floor.errors import EXIT_USAGE, SurgecastError, UsageError
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
    "forecast": (
        "surgecast.commands.forecast",
        "run the surge model as the profile says (served, lost, waiting)",
    ),
    "plan": ("surgecast.commands.plan", "backlog forecast and a staged-reopening plan"),
    "report": ("surgecast.commands.report", "build the capacity report from a run directory"),
    "drill": ("surgecast.commands.drill", "a rehearsal with a fault injected, then reconciliation"),
}


def _top_help() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [
        f"surgecast {__version__}: rehearse a registration surge and plan the way through it",
        "",
        "usage: surgecast COMMAND [options]   (surgecast COMMAND --help for its options)",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += [
        "",
        "exit codes: 0 ok, 1 a threshold failed, 2 usage or bad input, 3 data lost or duplicated",
    ]
    return "\n".join(lines)


# Commands with --quiet and --json (surgecast.console.add_script_flags), and the file in --out (or
# DIR) whose content is the JSON document's "result".
SCRIPTED: dict[str, str | None] = {
    "demo": "plan_check.json",
    "plan": "plan.json",
    "forecast": "forecast.json",
    "probe": "capacity.json",
    "report": None,
}


def build_parser(name: str) -> OneLineParser:
    """Build the parser of one subcommand, importing its module.

    >>> build_parser("queue").prog
    'surgecast queue'
    """
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = OneLineParser(prog=f"surgecast {name}", description=help_)
    module.add_arguments(parser)
    if name in SCRIPTED:
        from surgecast.console import add_script_flags

        add_script_flags(parser)
    parser.set_defaults(_run=module.run)
    return parser


def name_wants_json(args: Sequence[str]) -> bool:
    """Did a scripted command get --json (so even its error is a JSON document on stdout)?"""
    return bool(args) and args[0] in SCRIPTED and "--json" in args[1:]


def _scripted(name: str, ns: argparse.Namespace) -> int:
    """Run with nothing on stdout (--quiet), then print one JSON document (--json)."""
    with open(os.devnull, "w", encoding="utf-8") as devnull, contextlib.redirect_stdout(devnull):
        code = int(ns._run(ns) or 0)
    if ns.json:
        where = Path(getattr(ns, "out", None) or getattr(ns, "dir", None) or ".")
        doc: dict[str, Any] = {"command": name, "exit_code": code, "out": str(where)}
        main_file = SCRIPTED[name]
        if main_file and (where / main_file).is_file():
            doc["result"] = json.loads((where / main_file).read_text(encoding="utf-8"))
        doc["files"] = sorted(
            str(p) for p in where.glob("*") if p.is_file() and not p.name.startswith(".")
        )
        print(json.dumps(doc))
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    >>> main(["--version"])
    surgecast 0.1.0
    0
    """
    args = list(sys.argv[1:] if argv is None else argv)
    return run_entry(lambda: _dispatch(args), name=args[0] if args else "surgecast")


def _dispatch(args: list[str]) -> int:
    try:
        return _dispatch_command(args)
    except SurgecastError as e:
        if name_wants_json(args):  # a scripted command's error is a JSON document on stdout too
            print(
                json.dumps(
                    {
                        "command": args[0],
                        "exit_code": e.exit_code,
                        "error": type(e).__name__,
                        "message": str(e),
                    }
                )
            )
        raise


def _dispatch_command(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        print(_top_help())
        return 0 if args else EXIT_USAGE
    if args[0] == "--version":
        print(f"surgecast {__version__}")
        return 0
    name = args[0]
    if name not in COMMANDS:
        raise UsageError(
            f"unknown command {name!r}{did_you_mean(name, list(COMMANDS))}; "
            f"choose one of: {', '.join(COMMANDS)}"
        )
    ns = build_parser(name).parse_args(args[1:])
    if name in SCRIPTED and (ns.json or ns.quiet):
        return _scripted(name, ns)
    return int(ns._run(ns) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
