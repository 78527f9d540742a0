"""A register-only rehearsal: the journey a one-request peer (Artillery's flow) plays.

    locust -f scenarios/peer_journey.py --headless --arrival-rate 200 --duration 30 \\
        --host http://127.0.0.1:8080 --out runs/p

Everything is the rehearsal's own (`scenarios.locustfile`): the open-model arrivals,
the pool, a Faker id_ID identity per applicant, retries, the recorder (arrival and
ledger rows, HDR histograms on both clocks), the run directory and its reconciliation.
Only the journey is shorter: each arrival sends `POST /v1/accounts` at its intended time
and ends (no login, order, stamps; no think time after it). `benchmarks/bench_peers.py`
plays it against Artillery and a bare FastHttpUser sending the same request. The run
directory reads as any rehearsal's, except that arrivals.csv keeps the mix's journey name
(`new_applicant`) with `ended_step` register, and the ledger holds accounts only.

    >>> [c.__name__ for c in (RegisterApplicant, RegisterOnlyRun)]
    ['RegisterApplicant', 'RegisterOnlyRun']
    >>> RegisterApplicant.tasks == [RegisterApplicant.serve_register]
    True
"""

from __future__ import annotations

import time

import scenarios.locustfile as rehearsal
from scenarios.journey_http import _json
from scenarios.journeys import GiveUp, JourneyRun
from scenarios.locustfile import OpenModelShape  # noqa: F401  (Locust finds the shape here)


class RegisterOnlyRun(JourneyRun):
    """The journey of one request: register, then the arrival ends (`completed`)."""

    def run(self) -> tuple[str, str]:
        """Register; return (outcome, ended_step)."""
        ident = self.plan.identity
        body = {"nik": ident.nik, "name": ident.name, "email": ident.email, "phone": ident.phone,
                "password": ident.password}
        try:
            r = self.call("register", "POST", "/v1/accounts", json_body=body, ok=(201, 409),
                          think=False)
        except GiveUp as g:
            return g.outcome, g.step
        if r.status_code == 201:  # 409: an earlier attempt's account, whose answer was lost
            self.account_id = _json(r).get("account_id", "")
            self.ledger("account", self.account_id, status="created", http_status=r.status_code)
        return "completed", "register"


class RegisterApplicant(rehearsal.Applicant):
    """The rehearsal's pool member (`scenarios.locustfile.Applicant`) playing `RegisterOnlyRun`."""

    def serve_register(self) -> None:
        """Play the register-only journey of the arrival taken in `wait_time()`."""
        r = rehearsal._rehearsal()
        plan, self.next_plan = self.next_plan, None
        if r is None or plan is None:
            return
        rec = r.recorder
        rec.arrival_started(plan.applicant_id, time.time())
        run = RegisterOnlyRun(self.client, plan, r.journeys, rec, watch=r.watch,
                              to_test_s=lambda u: u - (r.origin_unix or 0.0),
                              reuse_keys=r.s.reuse_idempotency_keys, on_refused=r.refuse)
        outcome, step = "abandoned", ""
        try:
            outcome, step = run.run()
        finally:
            step = step or run.step
            end = time.time()
            rec.arrival_finished(plan.applicant_id, outcome, step, run.requests, end)
            r.watch.outcome(outcome, end - (r.origin_unix or end))
            r.dispatcher.release()


# Locust's metaclass adds the base class's tasks (Applicant.serve, the whole journey) to a
# subclass's own; this user runs only its own.
RegisterApplicant.tasks = [RegisterApplicant.serve_register]

