"""Count a process's function calls by the project function that made them.

    python benchmarks/call_census.py OUT.json DIR -m locust -f locustfile.py ...

Runs the module like `python -m`, with a profile hook (`sys.setprofile`, every thread and
greenlet) that counts each Python and C call once, under the innermost frame on the stack
whose file lies under one of the DIR arguments (comma-separated: the project, a benchmark's
scratch folder) and not in site-packages: "recorder.py:request_done" counts the calls that
function makes into Locust, gevent or the standard library as well as its own. A call with no
such frame on its stack counts as "<library>". OUT gets [[key, count], ...] at exit.

Counts depend on the code and its inputs, not on the machine's speed, apart from what the
timing itself changes (a journey that polls once more). `bench_generator.py --meter calls`
runs both of its sides under it; the hook makes a process several times slower, so it is a
map of where the calls go, not a timing.
"""

from __future__ import annotations

import atexit
import collections
import json
import runpy
import sys
import threading
from types import FrameType
from typing import Any

LIBRARY = "<library>"


def census(roots: tuple[str, ...]) -> tuple[collections.Counter[str], Any]:
    """A counter and the profile hook that fills it, attributing calls under `roots`.

    >>> counts, hook = census(("/nowhere/",))
    >>> hook(sys._getframe(), "call", None); counts[LIBRARY]
    1
    """
    counts: collections.Counter[str] = collections.Counter()
    names: dict[Any, str] = {}

    def owner(frame: FrameType | None) -> str:
        while frame is not None:
            code = frame.f_code
            key = names.get(code)
            if key is None:
                fn = code.co_filename
                mine = fn.startswith(roots) and "site-packages" not in fn
                key = names[code] = f"{fn.rsplit('/', 1)[-1]}:{code.co_name}" if mine else ""
            if key:
                return key
            frame = frame.f_back
        return LIBRARY

    def hook(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call" or event == "c_call":
            counts[owner(frame)] += 1

    return counts, hook


def main() -> None:
    """OUT DIRS -m MODULE ARGS...: run MODULE with the census on, write OUT at exit."""
    if len(sys.argv) < 5 or sys.argv[3] != "-m":
        print("call_census.py: usage: call_census.py OUT.json DIR[,DIR...] -m MODULE [ARGS...]",
              file=sys.stderr)
        raise SystemExit(2)
    out, roots, module = sys.argv[1], tuple(sys.argv[2].split(",")), sys.argv[4]
    sys.argv = [module, *sys.argv[5:]]
    counts, hook = census(roots)

    def dump() -> None:
        sys.setprofile(None)
        with open(out, "w") as f:
            json.dump(counts.most_common(), f)

    atexit.register(dump)
    sys.setprofile(hook)
    threading.setprofile(hook)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
