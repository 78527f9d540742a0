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
import difflib
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from surgecast import __version__
from surgecast.children import signals_raise
from surgecast.errors import EXIT_THRESHOLD, EXIT_USAGE, SurgecastError, UsageError

# name -> (module, one-line help). The order is the order of a surge's work.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("surgecast.commands.demo", "the whole method end to end on the embedded testbed"),
    "testbed": ("surgecast.commands.testbed", "run the reference e-Meterai-like service"),
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


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """` (did you mean X?)` for the closest of `choices` to `word`, or "" when none is close.

    >>> did_you_mean("--durtion", ["--duration", "--out"])
    ' (did you mean --duration?)'
    >>> did_you_mean("forcast", ["forecast", "plan"]) + did_you_mean("--zzz", ["--out"])
    ' (did you mean forecast?)'
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2, with "did you mean" for a
    mistyped flag (Python 3.12's suggest_on_error does this; we support 3.11)."""

    _argv: Sequence[str] = ()

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}{self._flag_hint()} (see '{self.prog} --help')")

    def _flag_hint(self) -> str:
        """"did you mean" for the first given flag that is neither an option nor an abbreviation of one."""
        flags = [o for a in self._actions for o in a.option_strings]
        for token in self._argv:
            if token == "--":
                break
            flag = token.split("=", 1)[0]
            if flag.startswith("--") and not any(f.startswith(flag) for f in flags):
                hint = did_you_mean(flag, flags)
                if hint:
                    return hint
        return ""


def _top_help() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [f"surgecast {__version__}: rehearse a registration surge and plan the way through it",
             "", "usage: surgecast COMMAND [options]   (surgecast COMMAND --help for its options)",
             "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "exit codes: 0 ok, 1 a threshold failed, 2 usage or bad input, 3 data lost or duplicated"]
    return "\n".join(lines)


# Commands with --quiet and --json (surgecast.console.add_script_flags), and the file in --out (or
# DIR) whose content is the JSON document's "result".
SCRIPTED: dict[str, str | None] = {"demo": "plan_check.json", "plan": "plan.json", "forecast": "forecast.json",
                                   "probe": "capacity.json", "report": None}


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


_LINE_BREAKS = {c: repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def one_line(text: str) -> str:
    r"""`text` with every character that breaks a line escaped, so an error is always one line.

    >>> one_line("a\nb\x1ec")
    'a\\nb\\x1ec'
    """
    return text.translate(str.maketrans(_LINE_BREAKS))


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
        doc["files"] = sorted(str(p) for p in where.glob("*") if p.is_file() and not p.name.startswith("."))
        print(json.dumps(doc))
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    >>> main(["--version"])
    surgecast 0.1.0
    0
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if not args or args[0] in ("-h", "--help", "help"):
            print(_top_help())
            return 0 if args else EXIT_USAGE
        if args[0] == "--version":
            print(f"surgecast {__version__}")
            return 0
        name = args[0]
        if name not in COMMANDS:
            raise UsageError(f"unknown command {name!r}{did_you_mean(name, list(COMMANDS))}; "
                             f"choose one of: {', '.join(COMMANDS)}")
        parser = build_parser(name)
        ns = parser.parse_args(args[1:])
        with signals_raise():
            if name in SCRIPTED and (ns.json or ns.quiet):
                return _scripted(name, ns)
            return int(ns._run(ns) or 0)
    except SurgecastError as e:
        print(f"{type(e).__name__}: {one_line(str(e))}", file=sys.stderr)
        if name_wants_json(args):
            print(json.dumps({"command": args[0], "exit_code": e.exit_code, "error": type(e).__name__,
                              "message": str(e)}))
        return e.exit_code
    except KeyboardInterrupt as e:  # SIGINT or SIGTERM (surgecast.children.Interrupted); children stopped
        how = getattr(e, "signame", "SIGINT")
        print(f"Interrupted: {args[0]} stopped by {how} before its end; what it wrote is incomplete (exit 1)",
              file=sys.stderr)
        return EXIT_THRESHOLD
    except BrokenPipeError:
        return 0
    except OSError as e:  # a full or read-only disk met while writing: one line, the run failed
        where = f" {e.filename}" if e.filename else ""
        print(f"OutputError: cannot write{where} ({e.strerror or e}); free space or give another --out",
              file=sys.stderr)
        return EXIT_THRESHOLD


if __name__ == "__main__":
    raise SystemExit(main())
