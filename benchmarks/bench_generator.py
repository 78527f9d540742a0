"""Generator cost: CPU seconds per request of a surgecast rehearsal vs a bare Locust FastHttpUser.

    python benchmarks/bench_generator.py                    # 20 arrivals/s for 40 s, each side
    python benchmarks/bench_generator.py --rate 10 --duration 30

Both sides run as one Locust process against the same fast testbed on loopback
(PBKDF2 1,000 iterations, 64 issuer and payment workers at 5 ms), playing the same
request sequence per applicant: register, login, order, pay, poll quota every 0.1 s
(every 4th poll the order), then for each of 2 documents stamp, poll every 0.1 s,
download. The bare side is a plain FastHttpUser with `constant_pacing` and
pre-made identities (made outside the measured process); the surgecast side is
`locust -f locustfile.py --profile P` with a one-journey profile (open-model
arrivals, recorder, HDR histograms, thresholds off, queue sampling on, run
directory written at the end). CPU is the Locust process's user + system time from
`os.wait4` (the whole process life: start-up, set-up and writing files included),
divided by the requests in its locust_stats.csv. Target: ratio <= 1.15.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FAST = ["security.password_hash=\"pbkdf2\"", "security.pbkdf2_iterations=1000", "issuer.workers=64",
        "issuer.service.mean=0.005", "payments.workers=64", "payments.service.mean=0.005"]
TOTAL = 100_000

PROFILE = """
[profile]
name = "bench-generator"
timezone = "Asia/Jakarta"
[calendar]
window_start = 2024-09-01T00:00:00
deadline = 2024-09-02T00:00:00
[applicants]
total = 100000
stamps_per_applicant = { 2 = 1.0 }
[arrivals]
base = [[0, 1.0], [1, 1.0]]
daily_cycle = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
               1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
[journeys]
mix = { new_applicant = 1.0 }
think_time_s = [0.0, 0.0]
patience_s = 60
poll_interval_s = 0.1
retry_mix = { backoff = 1.0 }
backoff_base_s = 0.2
backoff_max_s = 1
max_attempts = 3
request_timeout_s = 10
[capacity]
stamps_per_second = 10
"""

BARE = r'''
import json, os, uuid
import gevent
from locust import FastHttpUser, constant_pacing, task
from locust.exception import StopUser

IDS = json.load(open(os.environ["BARE_IDS"]))
PDF = open(os.environ["BARE_PDF"], "rb").read()


def multipart(i):
    b = uuid.uuid4().hex
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"document\"; filename=\"dokumen-{i}.pdf\"\r\n"
            f"Content-Type: application/pdf\r\n\r\n").encode() + PDF + f"\r\n--{b}--\r\n".encode()
    return f"multipart/form-data; boundary={b}", body


class Bare(FastHttpUser):
    wait_time = constant_pacing(float(os.environ["BARE_PACE"]))
    network_timeout = connection_timeout = 10.0

    @task
    def journey(self):
        if not IDS:
            raise StopUser()
        who = IDS.pop()
        c = self.client
        c.post("/v1/accounts", json=who, name="register")
        tok = c.post("/v1/sessions", json={"email": who["email"], "password": who["password"]}, name="login").json()["token"]
        h = {"Authorization": f"Bearer {tok}"}
        o = c.post("/v1/orders", json={"quantity": 2}, headers={**h, "Idempotency-Key": uuid.uuid4().hex},
                   name="order").json()
        c.post(f"/v1/orders/{o['order_id']}/pay", headers=h, name="pay")
        polls = 0
        while True:
            polls += 1
            if polls % 4 == 0:
                c.get(f"/v1/orders/{o['order_id']}", headers=h, name="wait_quota")
            elif int(c.get("/v1/quota", headers=h, name="wait_quota").json().get("available", 0)) >= 2:
                break
            gevent.sleep(0.1)
        for i in range(2):
            ctype, body = multipart(i + 1)
            s = c.post("/v1/stamps", data=body, headers={**h, "Content-Type": ctype,
                                                          "Idempotency-Key": uuid.uuid4().hex}, name="stamp").json()
            while c.get(f"/v1/stamps/{s['stamp_id']}", headers=h, name="poll_stamp").json().get("status") not in (
                    "done", "failed"):
                gevent.sleep(0.1)
            c.get(f"/v1/stamps/{s['stamp_id']}/document", headers=h, name="download")
'''


def _cpu_of(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    """Run `cmd`; return (CPU seconds of that process and its reaped children, wall seconds, exit code)."""
    t0 = time.time()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return ru.ru_utime + ru.ru_stime, time.time() - t0, p.returncode


def _requests(stats_csv: Path) -> int:
    with stats_csv.open() as f:
        return next(int(r["Request Count"]) for r in csv.DictReader(f) if r["Name"] == "Aggregated")


def identities(n: int) -> list[dict[str, str]]:
    """n valid applicants for the bare side (made here, outside the measured process)."""
    import random

    from scenarios.identities import make_identity
    out = []
    for i in range(n):
        ident = make_identity(random.Random(i), applicant_id=f"b{i}", run_tag=os.urandom(3).hex())
        out.append({"nik": ident.nik, "name": ident.name, "email": ident.email, "phone": ident.phone,
                    "password": ident.password})
    return out


def main() -> None:
    """Run both sides and print CPU per request and the ratio."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--duration", type=float, default=40.0)
    a = ap.parse_args()
    from scenarios.journeys import pdf_document
    from testbed.process import TestbedServer

    tmp = Path(tempfile.mkdtemp(prefix="bench-generator-"))
    prof = tmp / "p.toml"
    prof.write_text(PROFILE)
    n = int(a.rate * a.duration)
    (tmp / "ids.json").write_text(json.dumps(identities(n)))
    (tmp / "doc.pdf").write_bytes(pdf_document("Surat Lamaran - bench"))
    (tmp / "bare.py").write_text(BARE)
    users = max(4, int(a.rate * 2))
    env = dict(os.environ, BARE_IDS=str(tmp / "ids.json"), BARE_PDF=str(tmp / "doc.pdf"),
               BARE_PACE=str(users / a.rate), PYTHONUNBUFFERED="1")
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, python {platform.python_version()}; "
          f"rate {a.rate:g}/s for {a.duration:g} s (~{n} applicants) each side", flush=True)
    extra = sum((["--set", kv] for kv in FAST), [])
    results = {}
    with TestbedServer(port=0, extra_args=extra) as tb:
        out = tmp / "surgecast"
        cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless", "--only-summary",
               "--loglevel", "WARNING", "--profile", str(prof), "--duration", str(a.duration), "--scale",
               repr(a.rate * a.duration / TOTAL), "--seed", "1", "--host", tb.url, "--admin-token",
               tb.admin_token, "--user-cap", "5000", "--quiet", "--out", str(out)]
        cpu, wall, code = _cpu_of(cmd, env, tmp)
        s = json.loads((out / "summary.json").read_text())
        results["surgecast"] = (cpu, _requests(out / "locust_stats.csv"), wall, code,
                                f"{s['completed']}/{s['scheduled']} completed, dropped {s['dropped']}")
    with TestbedServer(port=0, extra_args=extra) as tb:
        cmd = [sys.executable, "-m", "locust", "-f", str(tmp / "bare.py"), "--headless", "--only-summary",
               "--loglevel", "WARNING", "-u", str(users), "-r", str(users), "-t", f"{int(a.duration + 10)}s",
               "--host", tb.url, "--csv", str(tmp / "bare"), "--exit-code-on-error", "0"]
        cpu, wall, code = _cpu_of(cmd, env, tmp)
        results["bare"] = (cpu, _requests(Path(str(tmp / "bare") + "_stats.csv")), wall, code,
                           f"{users} users, constant_pacing {users / a.rate:g} s")
    for name, (cpu, req, wall, code, note) in results.items():
        print(f"{name:>9}: {req} requests, CPU {cpu:.2f} s, {cpu / max(req, 1) * 1e3:.3f} ms CPU/request "
              f"(wall {wall:.0f} s, exit {code}; {note})", flush=True)
    ratio = (results["surgecast"][0] / results["surgecast"][1]) / (results["bare"][0] / results["bare"][1])
    print(f"ratio surgecast / bare: {ratio:.3f} (target <= 1.15: {'ok' if ratio <= 1.15 else 'NOT MET'})")


if __name__ == "__main__":
    main()
