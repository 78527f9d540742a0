"""Fault drills: a short rehearsal against a testbed with a fault injected, then reconciliation.

A drill starts a testbed process it controls (so it can SIGKILL it), runs
`surgecast rehearse --host URL --out DIR` against it as a subprocess (the admin
token in its environment), injects its fault from a thread while the surge runs, heals the
testbed, waits (bounded) for the issuer and payment queues to drain, then
judges the run from files and the testbed's admin API::

    from surgecast.drills import DRILLS, run_drill
    result = run_drill("kill-testbed", out=Path("runs/drill-kill"), seed=1)
    result["verdict"]["passed"], result["verdict"]["reason"]

It passes only when every check holds (each is in DIR/drill.json):

* `load_ran`: the rehearsal wrote its summary and some applicants completed;
* `fault_observed`: the fault really happened and the clients felt it (a drill
  whose fault did not bite proves nothing, so it fails);
* `reconciliation`: `scenarios.reconcile` of the run's ledger.csv (what the
  clients were told) against the drained server's durable records
  (`GET /admin/records`, settled) finds every count zero: each acknowledged
  payment settled or refunded, each acknowledged stamp done or failed with its
  quota returned, quantities, amounts and serials as told, balances equal to
  the client's evidence, no job without a client, nothing stuck;
* `no_duplicate_jobs`: no account holds two stamp jobs for the same document or
  two orders (each drill applicant buys once and stamps distinct documents), so
  no e-Meterai was charged twice by a retried request;
* `stamps_finished`: the queues drained within the bound and every accepted
  stamp job is done or failed (none queued, processing or lost);
* `audit_balanced`: `GET /admin/audit` is balanced.

The CLI (`surgecast drill NAME`) exits 0 when the drill passes; 3 when data was lost or
duplicated (reconciliation, duplicate jobs, unfinished stamps, audit); 1 when the fault never bit
or the load never ran (`surgecast.commands.drill.verdict_error`).

The package: `context` (Drill, DrillContext, the testbed's admin API), `catalogue` (the DRILLS rows
and their fault, after and observe functions), `runner` (run_drill: calls them without knowing any
drill's name), `judge` (the checks and the verdict). Evidence is read through the testbed's admin
API only, never from its SQLite file.
"""

from surgecast.drills.catalogue import DRILLS, describe
from surgecast.drills.runner import run_drill

__all__ = ["DRILLS", "describe", "run_drill"]
