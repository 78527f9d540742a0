"""Generator cost: CPU seconds per request of a surgecast rehearsal vs a bare Locust FastHttpUser.

    python benchmarks/bench_generator.py                    # 20 arrivals/s for 40 s, 3 runs of
    each side
    python benchmarks/bench_generator.py --rate 10 --duration 30 --repeats 5

Both sides run as one Locust process (`python -m locust ... --headless`) against a
fresh fast testbed on loopback (PBKDF2 1,000 iterations, 64 issuer and payment
workers at 5 ms), playing the same request sequence per applicant: register,
login, order, pay, poll quota every 0.1 s (every 4th poll the order), then for
each of 2 documents stamp, poll every 0.1 s, download.

* **surgecast**: `locust -f locustfile.py --profile P` with a one-journey profile:
  open-model Poisson arrivals drawn at start, the dispatcher and pool shape, a
  Faker id_ID identity and PDFs per applicant made in the process, retries,
  recorder (arrival and ledger rows, HDR histograms on both clocks, latency
  history), thresholds off, queue sampling each second, run directory written at
  the end (audit, server ledger, reconciliation).
* **bare**: a plain FastHttpUser (`python -m locust -f bare.py -u 3R`) replaying the
  *same* arrivals: the arrival times surgecast draws for seed 1 (computed with
  its own schedule code), and per applicant the *same* identity (only the per-run
  email tag differs) and the *same* documents (a PDF per document with the
  applicant's name), all made outside the measured process and read from a JSON
  file. Each user takes the next applicant, sleeps until its time and plays the
  journey (JSON bodies parsed where it needs a token or id, uuid4 idempotency
  keys); the process quits when the last journey ends. No recorder, no files but
  Locust's CSVs.

With the same arrival times both sides wake up as often; an earlier version paced
the bare users in lock-step bursts (`constant_pacing`), whose batched requests
cost about 40 % less CPU each and made the comparison unfair.

The sides run alternately (S, B, B, S, S, B, ...) `--repeats` times each, each on
its own fresh testbed; the testbed is pinned to CPU 0 and the Locust process to
CPU 1 (`taskset`; `--no-pin` to let them float), and the medians are reported. CPU is user + system
of the
Locust process: **whole life** from `os.wait4` (start-up, set-up, the run and the
end, e.g. writing files) divided by the requests in its locust_stats.csv, and
**steady state**: the parent reads the process's CPU from /proc every 0.2 s and
Locust's stats history gives the request count each second; steady = CPU over
requests between 10 s after the first request and 5 s before the last one.
The project is compiled to bytecode once before the runs, as an installed package is, instead
of in every surgecast process when the environment sets PYTHONDONTWRITEBYTECODE
(`--no-bytecode-cache` to skip that).
Target: whole-life ratio <= 1.10.

CPU seconds on a shared virtual machine spread by +-20 % from pair to pair (0.97 to 1.45
on one tree), wider than any change to the code. `--meter instructions` counts instead:
each side runs under valgrind's callgrind (about 40 x slower, so at a low rate; callgrind
is not in the timing), once at `--duration` D and once at 2D, and the script prints
instructions per request whole life and *marginal* (the extra instructions of the extra
requests, which cancels start-up and the end):

    python benchmarks/bench_generator.py --meter instructions --rate 5 --duration 30 --repeats 1

Counts repeat to within 0.04 % (two runs of each side here: surgecast 4,462,841,941 and
4,463,112,735, bare 3,196,488,725 and 3,197,622,156). They leave out the kernel's share
(system CPU, about 15-25 % of either side's CPU, the same sockets per request), so the CPU
ratio is closer to 1 than this one.

`--meter calls` says where the difference goes: each side runs under
`benchmarks/call_census.py`, which counts every function call under the project function that
made it (a call into Locust or gevent counts under the journey step that made it), at D and 2D;
the script prints the marginal calls per arrival by group (`CENSUS_GROUPS`: requests and journey
steps, identity, documents, recorder, reconciliation, ...) for both sides, and surgecast's
busiest functions:

    python benchmarks/bench_generator.py --meter calls --rate 5 --duration 30
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scenarios.profile import flat_profile_toml  # noqa: E402 (after the path)

FAST = ["security.password_hash=\"pbkdf2\"", "security.pbkdf2_iterations=1000", "issuer.workers=64",
        "issuer.service.mean=0.005", "payments.workers=64", "payments.service.mean=0.005"]
TOTAL = 100_000
SEED = 1
STEADY_SKIP_START_S = 10.0
STEADY_SKIP_END_S = 5.0
TICK = os.sysconf("SC_CLK_TCK")

PROFILE = flat_profile_toml("bench-generator", total=TOTAL, stamps_per_applicant={2: 1.0},
                            journeys={
    "mix": {"new_applicant": 1.0}, "think_time_s": [0.0, 0.0], "patience_s": 60,
                                      "poll_interval_s": 0.1,
    "retry_mix": {"backoff": 1.0}, "backoff_base_s": 0.2, "backoff_max_s": 1, "max_attempts": 3,
    "request_timeout_s": 10})

BARE = r'''
import json, os, time, uuid
import gevent
from locust import FastHttpUser, constant, events, task
from locust.exception import StopUser

APPLICANTS = json.load(open(os.environ["BARE_APPLICANTS"]))
NEXT, ACTIVE, ORIGIN = [0], [0], [0.0]


@events.test_start.add_listener
def _origin(environment, **_kw):
    ORIGIN[0] = time.time() + float(os.environ["BARE_LEAD_S"])


def multipart(pdf, i):
    b = uuid.uuid4().hex
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"document\"; "
            f"filename=\"dokumen-{i}.pdf\"\r\n"
            f"Content-Type: application/pdf\r\n\r\n").encode() + pdf + f"\r\n--{b}--\r\n".encode()
    return f"multipart/form-data; boundary={b}", body


class Bare(FastHttpUser):
    wait_time = constant(0)
    network_timeout = connection_timeout = 10.0

    @task
    def journey(self):
        i = NEXT[0]
        if i >= len(APPLICANTS):
            if ACTIVE[0] == 0:
                gevent.spawn(self.environment.runner.quit)
            raise StopUser()
        NEXT[0] += 1
        a = APPLICANTS[i]
        delay = ORIGIN[0] + a["t"] - time.time()
        if delay > 0:
            gevent.sleep(delay)
        ACTIVE[0] += 1
        try:
            self.play(a["identity"], [d.encode("latin-1") for d in a["documents"]])
        finally:
            ACTIVE[0] -= 1

    def play(self, who, documents):
        c = self.client
        c.post("/v1/accounts", json=who, name="register")
        tok = c.post("/v1/sessions", json={"email": who["email"], "password": who["password"]},
                     name="login").json()["token"]
        h = {"Authorization": f"Bearer {tok}"}
        o = c.post("/v1/orders", json={"quantity": len(documents)},
                   headers={**h, "Idempotency-Key": uuid.uuid4().hex}, name="order").json()
        c.post(f"/v1/orders/{o['order_id']}/pay", headers=h, name="pay")
        polls = 0
        while True:
            polls += 1
            if polls % 4 == 0:
                c.get(f"/v1/orders/{o['order_id']}", headers=h, name="wait_quota")
            elif int(c.get("/v1/quota", headers=h,
                           name="wait_quota").json().get("available", 0)) >= len(documents):
                break
            gevent.sleep(0.1)
        for i, pdf in enumerate(documents):
            ctype, body = multipart(pdf, i + 1)
            s = c.post("/v1/stamps", data=body, headers={**h, "Content-Type": ctype,
                                                          "Idempotency-Key": uuid.uuid4().hex},
                       name="stamp").json()
            while c.get(f"/v1/stamps/{s['stamp_id']}", headers=h,
                        name="poll_stamp").json().get("status") not in ("done", "failed"):
                gevent.sleep(0.1)
            c.get(f"/v1/stamps/{s['stamp_id']}/document", headers=h, name="download")
'''


class CpuSampler:
    """Reads a process's user + system CPU seconds from /proc every `every_s` (wall time, CPU)
    pairs."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        path = f"/proc/{self.pid}/stat"
        while not self._stop.is_set():
            try:
                with open(path) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                return
            self.samples.append((time.time(), (int(fields[11]) + int(fields[12])) / TICK))
            self._stop.wait(self.every_s)

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._t.join()

    def cpu_at(self, t: float) -> float:
        """CPU seconds at wall time `t` (linear between samples)."""
        s = self.samples
        for (t0, c0), (t1, c1) in zip(s, s[1:], strict=False):
            if t0 <= t <= t1:
                return c0 + (c1 - c0) * (t - t0) / max(t1 - t0, 1e-9)
        return s[0][1] if t < s[0][0] else s[-1][1]


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, float]:
    """Run `cmd`; whole-life CPU (user, system) from wait4, wall time, exit code, and the /proc
    samples."""
    t0 = time.time()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    sampler = CpuSampler(p.pid)
    _, status, ru = os.wait4(p.pid, 0)
    sampler.stop()
    p.returncode = os.waitstatus_to_exitcode(status)
    return {"user": ru.ru_utime, "sys": ru.ru_stime, "cpu": ru.ru_utime + ru.ru_stime,
            "wall": time.time() - t0,
            "code": p.returncode, "started": t0, "sampler": sampler}


def _requests(stats_csv: Path) -> int:
    with stats_csv.open() as f:
        return next(int(r["Request Count"]) for r in csv.DictReader(f) if r["Name"] == "Aggregated")


def _history(history_csv: Path) -> list[tuple[float, int]]:
    """(Unix second, cumulative requests) of Locust's stats history, Aggregated rows."""
    with history_csv.open() as f:
        return [(float(r["Timestamp"]), int(r["Total Request Count"])) for r in csv.DictReader(f)
                if r["Name"] == "Aggregated"]


def _steady(res: dict[str, float], history: list[tuple[float, int]]) -> dict[str, float]:
    """CPU per request in the steady part of the run, and the CPU spent before the first request."""
    sampler: CpuSampler = res["sampler"]
    out = {"startup_cpu": float("nan"), "steady_ms": float("nan"), "steady_requests": 0}
    busy = [t for t, n in history if n > 0]
    if not busy:
        return out
    idle = [t for t, n in history if n == 0 and t < busy[0]]
    # the last second with no request yet
    out["startup_cpu"] = sampler.cpu_at(idle[-1] if idle else busy[0] - 1.0)
    total = history[-1][1]
    last = next(t for t, n in history if n == total)
    a, b = busy[0] + STEADY_SKIP_START_S, last - STEADY_SKIP_END_S
    win = [(t, n) for t, n in history if a <= t <= b]
    if len(win) < 2:
        return out
    (ta, na), (tb, nb) = win[0], win[-1]
    out["steady_requests"] = nb - na
    out["steady_ms"] = (sampler.cpu_at(tb) - sampler.cpu_at(ta)) / max(nb - na, 1) * 1e3
    return out


def arrival_times(profile: Path, rate: float, duration: float, seed: int = SEED) -> list[float]:
    """The arrival times (test seconds) the surgecast side draws: its own settings, schedule and
    seed stream."""
    import numpy as np

    from scenarios.options import add_options, resolve_settings
    from scenarios.run import build_schedule
    p = argparse.ArgumentParser()
    add_options(p, locust=False)
    ns = p.parse_args(["--profile", str(profile), "--duration", str(duration), "--scale",
                       repr(rate * duration / TOTAL), "--seed", str(seed)])
    s = resolve_settings(ns, host="http://127.0.0.1:1", target_config=None, embedded=False)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    return [float(t) for t in build_schedule(s).draw(rng)]


def applicants(times: list[float], *, seed: int = SEED,
               run_tag: str = "bare00") -> list[dict[str, object]]:
    """The applicants of a surgecast run with `seed` (worker 0): arrival time, identity and
    documents.

    Made with the rehearsal's own functions, outside the measured process; only the
    run tag in the email differs.
    """
    from scenarios.identities import make_identity
    from scenarios.journeys import document_title, pdf_document
    out = []
    for i, t in enumerate(times):
        ident = make_identity(random.Random(f"{seed}:0:{i}"), applicant_id=f"0-{i + 1:06d}",
                              run_tag=run_tag)
        docs = [pdf_document(f"{document_title(k)} - {ident.name}").decode("latin-1")
                for k in range(2)]
        out.append({"t": t, "identity": {"nik": ident.nik, "name": ident.name, "email": ident.email,
                                         "phone": ident.phone, "password": ident.password},
                    "documents": docs})
    return out


def compile_project(tmp: Path) -> None:
    """Compile the project's sources and bare.py to bytecode (`__pycache__` next to each) once,
    before the runs.

    Installed packages (Locust, gevent, numpy, Faker) come with their bytecode; the project,
    run from the tree, has none when the environment sets PYTHONDONTWRITEBYTECODE (as this
    machine's does), so every surgecast process would compile its own modules again
    (~0.1 s of CPU), which an installed surgecast does not. The runs read the cache whatever
    their environment says; both sides have theirs.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-x",
                    r"[/\\](tests|\.peers|\.git|runs)[/\\]", str(ROOT), str(tmp / "bare.py")],
                   env=env, check=True, stdout=subprocess.DEVNULL)


def one_side(side: str, a: argparse.Namespace, tmp: Path, env: dict[str, str],
             run: int) -> dict[str, float]:
    """One run of `side` ("surgecast" or "bare") on a fresh testbed."""
    from testbed.process import TestbedServer

    class Pinned(TestbedServer):
        def command(self) -> list[str]:
            return (["taskset", "-c", "0"] if a.pin else []) + super().command()

    pin = ["taskset", "-c", "1"] if a.pin else []
    py = [sys.executable]
    if a.meter == "calls":
        cg = tmp / f"calls-{side}-{run}-{a.duration:g}"
        cg.mkdir()
        py += [str(ROOT / "benchmarks" / "call_census.py"), str(cg / "calls.json"),
               f"{ROOT}/,{tmp}/"]
    if a.meter == "instructions":
        cg = tmp / f"cg-{side}-{run}-{a.duration:g}"
        cg.mkdir()
        pin += ["valgrind", "--tool=callgrind", "--trace-children=yes", "--log-file=/dev/null",
                f"--callgrind-out-file={cg}/cg.%p"]
    extra = sum((["--set", kv] for kv in FAST), [])
    with Pinned(port=0, extra_args=extra) as tb:
        if side == "surgecast":
            out = tmp / f"surgecast-{run}"
            cmd = pin + py + ["-m", "locust", "-f", str(ROOT / "locustfile.py"),
                         "--headless", "--only-summary",
                   "--loglevel", "WARNING", "--profile", str(tmp / "p.toml"), "--duration",
                         str(a.duration),
                   "--scale", repr(a.rate * a.duration / TOTAL), "--seed", str(SEED), "--host",
                         tb.url,
                   f"--admin-token={tb.admin_token}", "--user-cap", "5000", "--quiet", "--out",
                         str(out)]
            res = _run(cmd, env, tmp)
            s = json.loads((out / "summary.json").read_text())
            res["requests"] = _requests(out / "locust_stats.csv")
            res.update(_steady(res, _history(out / "locust_stats_history.csv")))
            res["note"] = f"{s['completed']}/{s['scheduled']} completed, dropped {s['dropped']}"
        else:
            prefix = tmp / f"bare-{run}"
            cmd = pin + py + ["-m", "locust", "-f", str(tmp / "bare.py"), "--headless",
                         "--only-summary",
                   "--loglevel", "WARNING", "-u", str(a.users), "-r", str(a.users), "-t",
                   f"{int(a.duration + 30)}s", "--host", tb.url, "--csv", str(prefix),
                         "--exit-code-on-error", "0"]
            res = _run(cmd, env, tmp)
            res["requests"] = _requests(Path(f"{prefix}_stats.csv"))
            res.update(_steady(res, _history(Path(f"{prefix}_stats_history.csv"))))
            res["note"] = f"{a.users} users replaying the same {a.n} arrival times"
    res["arrivals"] = a.n  # the same applicants and arrival times on both sides
    res["ms"] = res["cpu"] / max(res["requests"], 1) * 1e3
    if a.meter == "instructions":
        res["ir"] = instructions(cg)
    if a.meter == "calls":
        res["calls"] = dict(json.loads((cg / "calls.json").read_text()))
    return res


def instructions(cg: Path) -> int:
    """Instructions executed (callgrind's Ir), summed over every process's output file in `cg`."""
    total = 0
    for f in cg.glob("cg.*"):
        for line in f.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total += int(line.split()[1])
                break
    if not total:
        raise SystemExit(f"{cg}: callgrind wrote no totals (is valgrind installed?)")
    return total


def main() -> None:
    """Run both sides alternately and print CPU per request (whole life and steady state) and the
    ratios."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--duration", type=float, default=40.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-pin", dest="pin", action="store_false",
                    help="do not pin the testbed to CPU 0 and the Locust process to CPU 1 "
                         "(taskset)")
    ap.add_argument("--no-bytecode-cache", dest="bytecode_cache", action="store_false",
                    help="do not compile the project first (with PYTHONDONTWRITEBYTECODE each run "
                         "compiles it)")
    ap.add_argument("--meter", choices=("cpu", "instructions", "calls"), default="cpu",
                    help="cpu: CPU seconds of the Locust process (noisy on a shared machine); "
                         "instructions: user-space instructions counted by valgrind's callgrind, "
                         "repeatable to within 0.04 %% but without the kernel's share; calls: "
                         "function calls counted by the project function that made them "
                         "(benchmarks/call_census.py), marginal per arrival")
    ap.add_argument("--prepare",
                    help=argparse.SUPPRESS)  # internal: write DIR/applicants.json and exit
    a = ap.parse_args()
    if a.prepare:
        # In a child process: the scenarios package imports Locust, which monkey-patches threads
        # and os.wait4 with gevent; the measuring parent must stay unpatched.
        d = Path(a.prepare)
        times = arrival_times(d / "p.toml", a.rate, a.duration)
        d.joinpath("applicants.json").write_text(json.dumps(applicants(times)))
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-generator-"))
    try:
        if a.meter == "instructions":
            if shutil.which("valgrind") is None:
                raise SystemExit("--meter instructions needs valgrind (apt-get install valgrind)")
            _instruction_runs(a, tmp)
        elif a.meter == "calls":
            _call_runs(a, tmp)
        else:
            _pairs(a, tmp)
    finally:  # the applicants, the locustfiles and every run's directory
        shutil.rmtree(tmp, ignore_errors=True)


def _prepare(a: argparse.Namespace, tmp: Path) -> dict[str, str]:
    """The profile, the applicants the bare side replays and its locustfile in `tmp`; the env."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "p.toml").write_text(PROFILE)
    subprocess.run([sys.executable, __file__, "--prepare", str(tmp), "--rate", str(a.rate),
                    "--duration", str(a.duration)], check=True)
    a.n = len(json.loads((tmp / "applicants.json").read_text()))
    (tmp / "bare.py").write_text(BARE)
    a.users = max(4, int(a.rate * 3))
    return dict(os.environ, BARE_APPLICANTS=str(tmp / "applicants.json"), BARE_LEAD_S="1.0",
                PYTHONUNBUFFERED="1")


def _at_d_and_2d(a: argparse.Namespace, tmp: Path) -> Iterator[tuple[float, Path, dict[str, str]]]:
    """(duration, folder, env) at `--duration` D and then 2D, each folder prepared (and the project
    compiled) as `_prepare` does; `a.duration` is D again afterwards."""
    d0 = a.duration
    try:
        for d in (d0, 2 * d0):
            a.duration = d
            sub = tmp / f"d{d:g}"
            env = _prepare(a, sub)
            if a.bytecode_cache:
                compile_project(sub)
            yield d, sub, env
    finally:
        a.duration = d0


def _instruction_runs(a: argparse.Namespace, tmp: Path) -> None:
    """Each side under callgrind at `--duration` D and 2D: instructions per request, whole life
    and marginal.

    The marginal cost, (Ir(2D) - Ir(D)) / (requests(2D) - requests(D)), is the steady state:
    start-up and the end cancel out; per-second work (the hub, Locust's stats, the queue
    sampler) is spread over the requests of those D seconds, as at steady state.
    """
    d0 = a.duration
    runs: dict[str, dict[float, list[dict[str, float]]]] = {"surgecast": {}, "bare": {}}
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}; meter: user-space instructions (callgrind Ir); rate "
          f"{a.rate:g}/s for {d0:g} s and {2 * d0:g} s; {a.repeats} run(s) of each", flush=True)
    for d, sub, env in _at_d_and_2d(a, tmp):
        for run in range(a.repeats):
            for side in ("surgecast", "bare"):
                r = one_side(side, a, sub, env, run)
                runs[side].setdefault(d, []).append(r)
                print(f"{side:>9} {d:g} s run {run + 1}: {r['requests']} requests, "
                      f"{r['ir'] / 1e9:.4f} G instructions = {r['ir'] / r['requests'] / 1e3:.1f} k"
                      f"/request whole life (exit {r['code']}; {r['note']})", flush=True)
    fig = {side: instruction_cost(by[d0], by[2 * d0]) for side, by in runs.items()}
    for side, f in fig.items():
        print(f"{side:>9}: marginal {f['marginal'] / 1e3:.1f} k instructions/request, fixed "
              f"(start-up and end) {f['fixed'] / 1e9:.3f} G, whole life at {2 * d0:g} s "
              f"{f['whole'] / 1e3:.1f} k/request")
    s_, b_ = fig["surgecast"], fig["bare"]
    print(f"ratio surgecast / bare: marginal {s_['marginal'] / b_['marginal']:.3f}, whole life at "
          f"{2 * d0:g} s {s_['whole'] / b_['whole']:.3f}, fixed {s_['fixed'] / b_['fixed']:.3f}")
    # per arrival: both sides play the same applicants, while the count of quota polls (and so
    # of requests) follows the testbed's timing and moves a side's requests by a few per cent
    per = {side: instruction_cost(by[d0], by[2 * d0], per="arrivals") for side, by in runs.items()}
    sa, ba = per["surgecast"], per["bare"]
    print(f"per arrival: surgecast marginal {sa['marginal'] / 1e6:.2f} M, bare "
          f"{ba['marginal'] / 1e6:.2f} M instructions; ratio marginal "
          f"{sa['marginal'] / ba['marginal']:.3f}, whole life at {2 * d0:g} s "
          f"{sa['whole'] / ba['whole']:.3f}")
    print("target <= 1.10 (user-space instructions; the kernel's share is not counted): "
          f"{'ok' if s_['marginal'] / b_['marginal'] <= 1.10 else 'NOT MET'}")


# Where the calls go (`--meter calls`): a census key ("file.py:function") belongs to the first
# group one of whose prefixes it starts with; the bare side's journey and its requests are one
# function (bare.py:play).
CENSUS_GROUPS = (
    ("requests and journey steps", ("journey_http.py:", "journeys.py:", "bare.py:play",
                                    "bare.py:journey")),
    ("identity and plan", ("identities.py:", "run.py:_plan_rng", "run.py:plan",
                           "run.py:make_plan", "run.py:between_arrivals", "bare.py:<listcomp>")),
    ("documents (PDF, multipart)", ("documents.py:", "bare.py:multipart")),
    ("recorder and its files", ("recorder.py:", "latency.py:", "writers.py:", "atomic.py:")),
    ("reconciliation", ("reconcile",)),
    ("Locust's per-name CSV history", ("locust_compat.py:",)),
    ("queue sampler (GET /admin/metrics)", ("jsonhttp.py:", "target.py:")),
    ("pool and dispatcher", ("pool.py:", "arrivals.py:", "locustfile.py:")),
    ("no project frame (Locust, gevent, start-up)", ("<library>",)),
)


def census_groups(calls: dict[str, float]) -> dict[str, float]:
    """`calls` (census key -> count) summed by `CENSUS_GROUPS`, the rest as "other".

        >>> census_groups({"recorder.py:ledger_row": 3, "bare.py:play": 5, "x.py:y": 1})["other"]
        1
    """
    out = dict.fromkeys([g for g, _ in CENSUS_GROUPS] + ["other"], 0)
    for key, n in calls.items():
        group = next((g for g, prefixes in CENSUS_GROUPS if key.startswith(prefixes)), "other")
        out[group] += n
    return out


def _call_runs(a: argparse.Namespace, tmp: Path) -> None:
    """Each side under the call census at `--duration` D and 2D: marginal calls per arrival, by
    group and by function."""
    d0 = a.duration
    runs: dict[str, dict[float, dict[str, float]]] = {"surgecast": {}, "bare": {}}
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}; meter: function calls by the project function that "
          f"made them (benchmarks/call_census.py); rate {a.rate:g}/s for {d0:g} s and "
          f"{2 * d0:g} s", flush=True)
    for d, sub, env in _at_d_and_2d(a, tmp):
        for side in ("surgecast", "bare"):
            r = one_side(side, a, sub, env, 0)
            runs[side][d] = r
            print(f"{side:>9} {d:g} s: {r['requests']} requests, {r['arrivals']} arrivals, "
                  f"{sum(r['calls'].values()) / 1e6:.3f} M calls (exit {r['code']}; "
                  f"{r['note']})", flush=True)
    marginal = {}
    for side, by in runs.items():
        short, long = by[d0], by[2 * d0]
        n = long["arrivals"] - short["arrivals"]
        if n <= 0:
            raise SystemExit("the long runs have no more arrivals than the short ones: raise "
                             "--rate or --duration")
        keys = set(short["calls"]) | set(long["calls"])
        marginal[side] = {k: (long["calls"].get(k, 0) - short["calls"].get(k, 0)) / n
                          for k in keys}
    groups = {side: census_groups(m) for side, m in marginal.items()}
    print(f"marginal calls per arrival (the runs at {2 * d0:g} s less those at {d0:g} s):")
    print(f"{'':>46} {'surgecast':>10} {'bare':>10}")
    for g in groups["surgecast"]:
        print(f"{g:>46} {groups['surgecast'][g]:10.1f} {groups['bare'][g]:10.1f}")
    s_, b_ = (sum(m.values()) for m in (marginal["surgecast"], marginal["bare"]))
    print(f"{'all':>46} {s_:10.1f} {b_:10.1f}   ratio {s_ / b_:.3f}")
    print("surgecast's busiest functions (marginal calls per arrival, own and into libraries):")
    for k, v in sorted(marginal["surgecast"].items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {v:9.1f} {k}")


def instruction_cost(short: list[dict[str, float]], long: list[dict[str, float]], *,
                     per: str = "requests") -> dict[str, float]:
    """Marginal instructions per request (or per `per`: "arrivals"), the fixed part, and whole
    life per request of the long runs, from the runs (each with `ir` and `per`) at D and at 2D.

        >>> instruction_cost([{"ir": 2e9 + 1000 * 7e5, "requests": 1000}],
        ...                  [{"ir": 2e9 + 2100 * 7e5, "requests": 2100}])["marginal"]
        700000.0
    """
    (ir1, n1), (ir2, n2) = ([statistics.median(r[k] for r in runs) for k in ("ir", per)]
                            for runs in (short, long))
    if n2 <= n1:
        raise SystemExit(f"the {n2:g} {per} of the long runs are not more than the {n1:g} of "
                         "the short ones: no marginal cost (raise --rate or --duration)")
    m = (ir2 - ir1) / (n2 - n1)
    return {"marginal": m, "fixed": ir1 - m * n1, "whole": ir2 / n2}


def _pairs(a: argparse.Namespace, tmp: Path) -> None:
    """The alternating runs of both sides in `tmp`, and the figures printed."""
    env = _prepare(a, tmp)
    n = a.n
    if a.bytecode_cache:
        compile_project(tmp)
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}; rate {a.rate:g}/s for {a.duration:g} s ({n} applicants) "
          f"per run; {a.repeats} runs of each side, alternating; project compiled to bytecode "
          f"first: {'yes' if a.bytecode_cache else 'no'}", flush=True)
    results: dict[str, list[dict[str, float]]] = {"surgecast": [], "bare": []}
    for run in range(a.repeats):
        for side in (("surgecast", "bare") if run % 2 == 0 else ("bare", "surgecast")):
            load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
            r = one_side(side, a, tmp, env, run)
            results[side].append(r)
            print(f"run {run + 1} {side:>9} (load average before {load}): {r['requests']} "
                  f"requests, CPU {r['cpu']:.2f} s "
                  f"(user {r['user']:.2f}, sys {r['sys']:.2f}) = {r['ms']:.3f} ms/request whole "
                  f"life; steady {r['steady_ms']:.3f} ms/request over {r['steady_requests']} "
                  f"requests; before the first request {r['startup_cpu']:.2f} s (wall "
                  f"{r['wall']:.0f} s, exit {r['code']}; {r['note']})", flush=True)
    med = {side: {k: statistics.median(r[k] for r in rs) for k in ("ms", "steady_ms", "startup_cpu",
                                                                   "cpu", "requests")}
           for side, rs in results.items()}
    for side, m in med.items():
        print(f"median {side:>9}: whole life {m['ms']:.3f} ms/request ({m['cpu']:.2f} s CPU, "
              f"{m['requests']:.0f} requests), steady {m['steady_ms']:.3f} ms/request, start-up "
              f"{m['startup_cpu']:.2f} s CPU")
    pairs = [s["ms"] / b["ms"] for s, b in zip(results["surgecast"], results["bare"], strict=True)]
    steady = [s["steady_ms"] / b["steady_ms"] for s, b in zip(results["surgecast"], results["bare"],
                                                              strict=True)]
    ratio = statistics.median(pairs)
    runs, steady_runs = (" / ".join(f"{x:.3f}" for x in xs) for xs in (pairs, steady))
    print(f"ratio surgecast / bare, whole life: median {ratio:.3f} (runs {runs}); "
          f"steady state: median {statistics.median(steady):.3f} (runs {steady_runs})")
    print(f"target whole life <= 1.10: {'ok' if ratio <= 1.10 else 'NOT MET'}")


if __name__ == "__main__":
    main()
