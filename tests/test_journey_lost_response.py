"""A registration whose answer was lost: the retry meets 409 and the applicant goes on to log in.

Runs in a subprocess, since it drives a journey on Locust's own HTTP client
(importing Locust patches the standard library with gevent).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from testbed_fixtures import FAST

from testbed.process import TestbedServer

SCRIPT = textwrap.dedent("""
    import json, random, sys, urllib.request
    from locust.contrib.fasthttp import FastHttpSession
    from locust.event import EventHook
    from scenarios.identities import make_identity
    from scenarios.journeys import DEFAULT_JOURNEYS, ApplicantPlan, JourneyRun
    import dataclasses, time

    url = sys.argv[1]
    rng = random.Random(7)
    ident = make_identity(rng, applicant_id="1", run_tag="lost")
    # The first registration went through but its answer never arrived:
    body = json.dumps({"nik": ident.nik, "name": ident.name, "email": ident.email,
                       "phone": ident.phone, "password": ident.password}).encode()
    req = urllib.request.Request(url + "/v1/accounts", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    assert urllib.request.urlopen(req).status == 201

    class Rec:
        rows = []
        def request_done(self, *a, **k): pass
        def step_done(self, *a, **k): pass
        def ledger_row(self, applicant_id, kind, ref, **kw):
            self.rows.append({"kind": kind, "ref": ref, "status": kw["status"],
                              "account_id": kw["account_id"]})

    rec = Rec()
    cfg = dataclasses.replace(DEFAULT_JOURNEYS, think_time_s=(0.0, 0.0), patience_s=60.0,
                              poll_interval_s=0.1)
    plan = ApplicantPlan(applicant_id="1", journey="new_applicant", intended_unix=time.time(),
                         documents=2, retry_policy="backoff", rng=rng, identity=ident)
    client = FastHttpSession(url, request_event=EventHook(), user=None)
    outcome, step = JourneyRun(client, plan, cfg, rec).run()
    print(json.dumps({"outcome": outcome, "step": step, "rows": rec.rows}))
""")


@pytest.mark.timeout(90)
def test_register_409_goes_on_to_login_and_completes() -> None:
    with TestbedServer(extra_args=[*FAST, "--issuer-service", "constant:0.01"]) as tb:
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, tb.url], capture_output=True, text=True, timeout=80
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "completed", result
    accounts = [r for r in result["rows"] if r["kind"] == "account"]
    assert len(accounts) == 1 and accounts[0]["status"] == "existing" and accounts[0]["ref"]
    assert (
        sum(1 for r in result["rows"] if r["kind"] == "stamp" and r["status"] == "downloaded") == 2
    )
