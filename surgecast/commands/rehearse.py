"""`surgecast rehearse`: play a surge with Locust against a target and write a run directory.

    surgecast rehearse --profile casn2024 --out runs/x                # embedded testbed, 120 s
    surgecast rehearse --arrival-rate 5 --duration 60 --host http://127.0.0.1:8080 \\
        --admin-token T --scale 1 --out runs/y

It validates the flags (a usage error writes nothing and exits 2), starts the
embedded testbed when there is no --host, then runs Locust as a subprocess on
scenarios/locustfile.py with the same flags, so `locust -f locustfile.py` and
this command share one code path. The Locust process writes the run directory;
this command relays its progress line and returns its exit code: 0 ok,
1 a threshold failed, 2 usage, 3 data lost or duplicated.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from floor import atomic, rundir
from floor.atomic import check_writable
from floor.children import child_env, python_module
from floor.children import stop as stop_child
from floor.errors import FieldError, RunFailed, UsageError

RELAY_PREFIX = "[surgecast]"
LOCUST_GRACE_S = 7.0  # after SIGTERM, Locust kills its users at once and writes what it collected


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `surgecast rehearse` (see scenarios/options.py for each)."""
    from scenarios.options import add_options

    add_options(parser, locust=False)
    parser.add_argument(
        "--testbed-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for the embedded testbed, e.g. issuer.workers=8 (repeatable)",
    )
    from scenarios.distributed_cli import add_distributed_arguments

    add_distributed_arguments(parser)


def _passthrough(
    args: argparse.Namespace, settings: Any, host: str, token: str | None, out: Path
) -> list[str]:
    s = settings
    argv = [
        "--host",
        host,
        "--out",
        str(out),
        "--seed",
        str(s.seed),
        "--duration",
        repr(s.duration_s),
        "--user-cap",
        str(s.user_cap),
        "--threshold-window",
        repr(s.threshold_window_s),
        "--sample-interval",
        repr(s.sample_interval_s),
    ]
    if s.profile is not None:
        argv += [
            "--profile",
            s.profile.source,
            "--compress",
            repr(s.compress),
            "--scale",
            repr(s.scale),
        ]
        if args.window:
            argv += ["--window", args.window]
        if args.gates:
            argv += ["--gates", args.gates]
    else:
        argv += ["--arrival-rate", repr(s.arrival_rate), "--arrival-shape", s.arrival_shape]
    if s.max_rate is not None:
        argv += ["--max-rate", repr(s.max_rate)]
    for t in s.thresholds:
        argv += ["--threshold", t.expr]
    for flag, on in (
        ("--fresh-idempotency-keys", not s.reuse_idempotency_keys),
        ("--allow-remote", args.allow_remote),
        ("--quiet", s.quiet),
        ("--embedded-testbed", s.embedded),
    ):
        if on:
            argv.append(flag)
    return argv


def _locust_file() -> str:
    import importlib.util

    spec = importlib.util.find_spec("scenarios.locustfile")
    assert spec is not None and spec.origin
    return spec.origin


def run(args: argparse.Namespace) -> int:
    """Run `surgecast rehearse`."""
    from scenarios.distributed_cli import check_distributed_flags, run_worker_process
    from scenarios.options import resolve_settings
    from scenarios.target import AdminClient, check_host, preflight

    check_distributed_flags(args)
    if args.worker:  # every setting comes from the master
        return run_worker_process(args, _locust_file())
    if not args.out:
        raise FieldError("--out", None, "give a run directory to write, e.g. --out runs/x")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise FieldError("--out", args.out, "exists and is not a directory")
    if out.is_dir() and (out / "summary.json").exists():
        raise FieldError("--out", args.out, "already holds a rehearsal; give a new directory")
    check_writable(out)
    # another run's files there: exit 2 before any load
    args.run_id = rundir.claim(out, what="rehearsal")
    if args.host:
        host = check_host(args.host, allow_remote=args.allow_remote)
        token = args.admin_token
        # refused, HTML or hanging: exit 2, nothing written
        config = preflight(host, admin_token=token)
        settings = resolve_settings(args, host=host, target_config=config, embedded=False)
        return _run_locust(args, settings, host, token, out)
    # Validate everything that needs no target before starting one.
    if args.scale is None and args.profile:
        resolve_settings(
            args,
            host="http://127.0.0.1",
            target_config={"issuer": {"workers": 1, "service": {"mean": 1.0}}},
            embedded=True,
        )
    else:
        resolve_settings(args, host="http://127.0.0.1", target_config=None, embedded=True)
    from testbed.process import TestbedServer

    extra: list[str] = []
    for kv in args.testbed_set:
        extra += ["--set", kv]
    with TestbedServer(port=0, admin_token=args.admin_token, extra_args=extra) as tb:
        config = AdminClient(tb.url, token=tb.admin_token).config()
        settings = resolve_settings(args, host=tb.url, target_config=config, embedded=True)
        return _run_locust(args, settings, tb.url, tb.admin_token, out)


def _run_locust(
    args: argparse.Namespace, settings: Any, host: str, token: str | None, out: Path
) -> int:
    """Run the Locust process of the rehearsal, keep its log, report its summary; the exit code."""
    from scenarios.distributed_cli import locust_distributed_args

    cmd = [
        *python_module("locust"),
        *("-f", _locust_file(), "--headless", "--only-summary"),
        *("--loglevel", "WARNING", "--exit-code-on-error", "0"),
        *_passthrough(args, settings, host, token, out),
        *locust_distributed_args(args),
    ]
    env = child_env(token)  # the token goes in the environment, never on argv (ps shows argv)
    env[rundir.RUN_ID_ENV] = args.run_id  # the Locust process writes its files under this run id
    code, text, interrupted = _play(cmd, env, settings)
    if out.is_dir():
        atomic.write_text(out / "locust.log", text)
        if (out / rundir.MANIFEST).is_file():  # the run wrote its files: the log is one of them
            rundir.record(out, ["locust.log"], run_id=args.run_id, by="rehearsal")
    summary = out / "summary.json"
    if interrupted is not None and not summary.is_file():
        raise interrupted
    if code == 2 or not summary.is_file():
        raise _crash_error(code, text, out)
    result: dict[str, Any] = json.loads(summary.read_text(encoding="utf-8"))
    return _report(result, settings, code, interrupted, out)


def _play(
    cmd: list[str], env: dict[str, str], settings: Any
) -> tuple[int, str, KeyboardInterrupt | None]:
    """Run `cmd` with its progress relayed to the bar; (exit code, its output, the signal that
    stopped it or None)."""
    from surgecast.console import RehearsalProgress

    interrupted: KeyboardInterrupt | None = None
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        bar = RehearsalProgress(settings.duration_s, quiet=settings.quiet)

        def relay() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                if line.startswith(RELAY_PREFIX):
                    bar.feed(line.rstrip())
            bar.close()

        t = threading.Thread(target=relay, daemon=True)
        t.start()
        try:
            code = proc.wait()
        except KeyboardInterrupt as e:  # SIGTERM/SIGINT: Locust stops its users at once, publishes
            interrupted = e
            code = stop_child(proc, LOCUST_GRACE_S) or 0
        t.join(10)
        log.seek(0)
        return code, log.read(), interrupted


def _crash_error(code: int, text: str, out: Path) -> UsageError | RunFailed:
    """The error of a Locust run that refused its flags (exit 2) or wrote no summary."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    named = [ln for ln in lines if re.match(r"^[A-Z]\w*(Error|Mismatch): ", ln)]
    # Locust's table comes after the named error
    last = (named if code == 2 and named else lines)[-1:] or ["(no output)"]
    if code == 2 and ": " in last[0]:
        return UsageError(last[0].split(": ", 1)[1])
    return RunFailed(
        f"the Locust run crashed (exit code {code}) and wrote no summary.json; last line: "
        f"{last[0][:300]}; see {out / 'locust.log'}"
    )


def _report(
    result: dict[str, Any],
    settings: Any,
    code: int,
    interrupted: KeyboardInterrupt | None,
    out: Path,
) -> int:
    """Print the lost workers, the verdict, an interruption or the first problem; the exit code."""
    # distributed: a worker's results never reached the master
    for w in result.get("lost_workers") or []:
        print(
            f"IntegrityError: worker {w.get('index')} ({w.get('client_id') or w.get('error', '')}) "
            f"sent no results; its arrivals, ledger and latencies are missing from {out} "
            "(data lost, exit 3)",
            file=sys.stderr,
        )
    if not settings.quiet:
        print(_verdict(result, out))
    final = int(result.get("exit_code", code))
    problems = result.get("problems") or []
    if interrupted is not None:
        how = getattr(interrupted, "signame", "SIGINT")
        print(
            f"Interrupted: the rehearsal was stopped by {how}; what it collected is in {out}, "
            "marked incomplete (summary.json complete=false)",
            file=sys.stderr,
        )
        return max(final, 1)
    if problems and final != 0:
        more = ""
        if len(problems) > 1:
            more = f" (and {len(problems) - 1} more; see {out / 'summary.json'})"
        print(f"RunFailed: {problems[0]}{more}", file=sys.stderr)
    return final


def _verdict(r: dict[str, Any], out: Path) -> str:
    why = ", ".join(f"{k} {v}" for k, v in (r.get("dropped_by_reason") or {}).items() if v)
    parts = [
        f"scheduled {r['scheduled']}",
        f"dropped {r['dropped']}" + (f" ({why})" if why else ""),
        f"completed {r['completed']}",
        f"abandoned {r['abandoned']}",
        f"failed {r['failed']}",
    ]
    stamp = r.get("steps", {}).get("stamp") or {}
    if stamp:
        parts.append(
            f"stamp p95 {stamp.get('p95_ms')} ms (intended {stamp.get('intended_p95_ms')} ms)"
        )
    bad = [t["expr"] for t in r.get("thresholds", []) if not t.get("ok")]
    if bad:
        parts.append("thresholds failed: " + ", ".join(bad))
    if r.get("reconciliation_ok") is False:
        named = ", ".join(f"{k}={v}" for k, v in (r.get("reconciliation_problems") or {}).items())
        parts.append("RECONCILIATION FAILED" + (f" ({named})" if named else ""))
    return f"rehearsal: {'; '.join(parts)}; exit {r['exit_code']}; files in {out}"
