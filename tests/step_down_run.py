"""The probe's ladder made to step down, against a real testbed (test-only).

The ladder is the production one (`scenarios.probe.run_probe`, Locust's real runner, the
real journeys and recorder, the real estimate and queue rules); only its levelling verdict
is scripted (an injected `Judge`): rising below `--top` applicants, falling at it, so the
probe holds the level below and steps down into it, as it does when a deeper level reads
less. Run in a subprocess (importing Locust patches the standard library with gevent)::

    python -m tests.step_down_run URL TOKEN --top 64
    python -m tests.step_down_run URL TOKEN --top 64 --no-server        # the client's guess
    python -m tests.step_down_run URL TOKEN --top 64 --mutant no-drain  # no wait at all
    python -m tests.step_down_run URL TOKEN --top 16 --precision 1      # any interval will do

`--no-server`: the probe reads no admin API, as against a service without one, and waits
for its own estimate of the drain. `--mutant no-drain`: the step down does not wait for the
stopped applicants' last stamps to be seen, nor for their queued stamps to drain.
`--precision` (0.001 by default: the hold never stops for precision and runs its whole share):
the hold's stop rule; at 1 (+-100 %) it may stop at its first precise batch, and only its
`min_batches` keeps it. `--mutant no-min-batches`: the hold stops at its first precise batch.

It prints one JSON object: the levels run, and the hold's batches (the client's count of
each and, with the server's figures, the issuer's at the same edges).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# the testbed of these runs (with cheap hashing): 20 stamps/s, 2 issuer workers x constant 0.1 s
ISSUER = ["--issuer-workers", "2", "--issuer-service", "constant:0.1"]


@contextmanager
def ladder_runs(modes: dict[str, list[str]], args: list[str]
                ) -> Iterator[dict[str, dict[str, Any]]]:
    """Run this script once per mode (its own arguments after `args`), each against its own
    fresh 20/s testbed, all at the same time; yield each mode's JSON, the testbeds still up.

    Importing this module (for this helper) imports no Locust: `main` does, in the child.
    """
    from testbed.process import TestbedServer
    from tests.testbed_fixtures import FAST

    with ExitStack() as stack:
        beds = {m: stack.enter_context(TestbedServer(extra_args=[*FAST, *ISSUER])) for m in modes}
        procs = {m: subprocess.Popen(
            [sys.executable, "-m", "tests.step_down_run", tb.url, tb.admin_token, *args,
             *modes[m]],
            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL) for m, tb in beds.items()}
        out: dict[str, dict[str, Any]] = {}
        for m, p in procs.items():
            so, se = p.communicate(timeout=120)
            assert p.returncode == 0, f"{m}: {se[-2000:]}"
            out[m] = json.loads(so.strip().splitlines()[-1])
        yield out


def main() -> None:
    import scenarios.probe as probe  # first: Locust patches the standard library
    from analysis.probe import level_estimate, level_spread, queued_levels, steady
    from scenarios.probe_settings import Judge, ProbeSettings
    from scenarios.target import AdminClient

    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("token")
    p.add_argument("--top", type=int, default=64)
    p.add_argument("--budget", type=float, default=24.0)
    p.add_argument("--no-server", action="store_true")
    p.add_argument("--precision", type=float, default=0.001)
    p.add_argument("--mutant", choices=["no-drain", "no-min-batches"])
    a = p.parse_args()
    top = a.top
    judge = Judge(
        estimate=lambda b, every: level_estimate(b, confidence=0.95, spread=level_spread(b, every)),
        assess=lambda lo, hi, final=False: "falling" if hi.concurrency >= top else "rising",
        queued=lambda b, waits: queued_levels(b, waits), steady=steady)
    if a.mutant == "no-drain":
        probe.TAIL_S = 0.0
        probe._Ladder._drain = lambda self, held, room: None
        probe._Ladder._drain_guess = lambda self, stopped: 0.0
    if a.mutant == "no-min-batches":
        hold = probe._Ladder.hold

        def hold_from_one(self: Any, n: int, settle: bool) -> None:
            self.s = dataclasses.replace(self.s, min_batches=1)  # the climb is over: the hold only
            hold(self, n, settle)
        probe._Ladder.hold = hold_from_one
    s = ProbeSettings(host=a.url, budget_s=a.budget, precision=a.precision, max_concurrency=top)
    server = None if a.no_server else AdminClient(a.url, token=a.token).issuer
    run = probe.run_probe(s, judge=judge, server_completed=server)
    print(json.dumps({"levels": sorted({b["concurrency"] for b in run.batches}),
                      "stopped": run.stopped, "hold_stopped_by": run.hold_stopped_by,
                      "min_batches": s.min_batches,
                      "hold": [{"concurrency": b["concurrency"], "stamps": b["stamps"],
                                "server_stamps": b["server_stamps"],
                                "duration_s": b["duration_s"]}
                               for b in run.batches if b["phase"] == "hold"]}))


if __name__ == "__main__":
    main()
