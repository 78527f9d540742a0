"""Several machines for real: master and workers in
separate Linux network namespaces joined by a veth pair.

The test makes its own two namespaces (`ip netns add`), a veth pair between them with
addresses of its own (10.231.X.1/24 for the master's side, .2 for the workers'), runs the
testbed and `surgecast rehearse --master` in one and `--worker` processes in the other, so
every Locust message and every journey request crosses real TCP between two interfaces
(the veth's byte counters show it), and deletes everything at the end. It skips, saying
why, where namespaces cannot be made (not root, no `ip`, no CAP_SYS_ADMIN); in CI, which sets
`SURGECAST_NO_SKIP=1` (tests/conftest.py), that skip fails the command.

Three runs side by side, each on its own port: two workers whose merge stays exact, a
worker killed mid-run that is named (exit 3), and a worker of another surgecast version
that the master refuses (exit 2).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from floor.children import child_env
from tests import distributed_run as dist
from tests.test_rehearse_runs import ROOT, rows

# The names are set by `_claim()`: namespaces and the veth pair are named in the host's
# namespace, so two runs at once (or a pid reused after a crash left its namespaces behind)
# could ask for the same name; a name taken ("File exists") is retried with another tag. The
# addresses live inside the test's own namespaces, so they cannot collide with another run's.
NS_M = NS_W = VETH_M = VETH_W = A_M = A_W = ""
TAKEN = "File exists"


def _names(tag: int) -> None:
    global NS_M, NS_W, VETH_M, VETH_W, A_M, A_W
    NS_M, NS_W = f"scm{tag}", f"scw{tag}"
    VETH_M, VETH_W = f"vm{tag}", f"vw{tag}"
    net = f"10.231.{tag % 250}"
    A_M, A_W = f"{net}.1", f"{net}.2"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=check)


def _teardown() -> None:
    _ip("link", "del", VETH_M, check=False)  # still here only if it was never moved
    for ns in (NS_M, NS_W):
        _ip("netns", "del", ns, check=False)  # deleting a namespace deletes its end of the veth


@pytest.fixture(scope="module")
def netns():
    """The two namespaces and the veth pair, or a skip with the reason."""
    if sys.platform != "linux" or shutil.which("ip") is None:
        pytest.skip("needs Linux and iproute2's `ip`")
    if os.geteuid() != 0:
        pytest.skip("needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to make network namespaces")
    _claim()
    try:
        _ip("link", "set", VETH_M, "netns", NS_M)
        _ip("link", "set", VETH_W, "netns", NS_W)
        for ns, dev, addr in ((NS_M, VETH_M, A_M), (NS_W, VETH_W, A_W)):
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield
    finally:
        _teardown()


def _claim() -> None:
    """Make the two namespaces and the veth pair under a tag no one else holds (or skip)."""
    tags = [os.getpid() % 100000, *(random.randrange(100000) for _ in range(19))]
    for tag in tags:
        _names(tag)
        r = _ip("netns", "add", NS_M, check=False)
        if r.returncode != 0 and TAKEN in r.stderr:
            continue
        if r.returncode != 0:
            pytest.skip(f"`ip netns add` is not permitted here: {r.stderr.strip()}")
        made = [NS_M]
        r = _ip("netns", "add", NS_W, check=False)
        if r.returncode == 0:
            made.append(NS_W)
            r = _ip("link", "add", VETH_M, "type", "veth", "peer", "name", VETH_W, check=False)
        if r.returncode == 0:
            return
        for ns in made:  # only what this tag made: the taken name is another run's
            _ip("netns", "del", ns, check=False)
        if TAKEN not in r.stderr:
            raise RuntimeError(f"ip: {r.stderr.strip()}")
    pytest.fail(f"no free namespace name after {len(tags)} tags (scm*/scw*/vm* all taken)")


def _in(ns: str, *cmd: str, env: dict[str, str] | None = None, cwd: str | Path = ROOT,
        **kw) -> subprocess.Popen[str]:
    return subprocess.Popen(["ip", "netns", "exec", ns, *cmd], cwd=cwd, text=True, env=env,
                            start_new_session=True, **kw)


def _veth_bytes() -> int:
    data = json.loads(_ip("-n", NS_W, "-s", "-j", "link", "show", VETH_W).stdout)[0]["stats64"]
    return int(data["rx"]["bytes"]) + int(data["tx"]["bytes"])


class Run:
    """A testbed and a master in the master's namespace, workers in the workers' namespace."""

    def __init__(
        self, tmp: Path, port: int, *, worker_path: str | None = None, quiet: bool = True
    ) -> None:
        self.out = tmp / f"run{port}"
        self.token = os.urandom(12).hex()
        self.env = {**child_env(self.token), "PYTHONPATH": str(ROOT), **dist.MASTER_ENV}
        self.tb = _in(
            NS_M,
            sys.executable,
            "-m",
            "surgecast",
            "testbed",
            "--host",
            A_M,
            "--port",
            "0",
            "--db",
            str(tmp / f"tb{port}.sqlite"),
            *dist.testbed_flags(),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.tb.stdout is not None
        line = self.tb.stdout.readline().strip()
        assert line.startswith("listening on http://" + A_M), line
        threading.Thread(target=lambda: [None for _ in self.tb.stdout], daemon=True).start()  # type: ignore[union-attr]
        self.url = line.removeprefix("listening on ")
        quiet_flag = ["--quiet"] if quiet else []
        self.master = _in(
            NS_M,
            *dist.master_cmd(
                bind_host=A_M,
                port=port,
                url=self.url,
                token=self.token,
                out=self.out,
                extra=["--allow-remote", *quiet_flag],
            ),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # read the progress lines as they come (the test waits for arrivals to flow)
        self.lines: list[str] = [] if quiet else dist.read_lines(self.master)
        wenv = dict(self.env, PYTHONPATH=worker_path or str(ROOT))
        self.workers = [
            _in(
                NS_W,
                *dist.worker_cmd(master_host=A_M, port=port),
                env=wenv,
                cwd=worker_path or ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        self.stdout = self.stderr = ""

    def arrivals_flowing(self, timeout: float = 90) -> None:
        """Block until the master's progress line shows arrivals being dispatched."""
        dist.wait_for_arrivals(self.lines, timeout)

    def wait(self, timeout: float = 120) -> int:
        try:
            if self.lines or self.master.stdout is None or self.master.stdout.closed:
                self.master.wait(timeout)
                self.stderr = self.master.stderr.read() if self.master.stderr else ""
                self.stdout = "".join(self.lines)
            else:
                self.stdout, self.stderr = self.master.communicate(timeout=timeout)
        finally:
            for p in [*self.workers, self.tb, self.master]:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        return self.master.returncode


@pytest.mark.timeout(200)
def test_master_and_workers_in_two_namespaces(netns, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(
        ROOT,
        other,
        ignore=shutil.ignore_patterns(
            ".git", "tests", "runs", "docs", "benchmarks", "__pycache__", "*.pyc", ".locust-staging"
        ),
    )
    init = other / "floor" / "version.py"  # the one place the version lives
    text = init.read_text()
    assert '__version__ = "' in text
    init.write_text(text.replace('__version__ = "', '__version__ = "0.0.0-other+'))
    before = _veth_bytes()
    exact, killed = Run(tmp_path, 5557), Run(tmp_path, 5558, quiet=False)
    stranger = Run(tmp_path, 5559, worker_path=str(other))
    killed.arrivals_flowing()  # then kill one worker of the second run mid-run
    time.sleep(1)
    os.killpg(killed.workers[1].pid, signal.SIGKILL)
    codes = [r.wait() for r in (exact, killed, stranger)]

    # 1. two workers across the veth: one run directory, merged exactly, reconciled
    assert codes[0] == 0, exact.stderr[-2000:]
    s = json.loads((exact.out / "summary.json").read_text())
    run = json.loads((exact.out / "run.json").read_text())
    assert run["workers"] == 2 and run["lost_workers"] == [] and s["reconciliation_ok"] is True
    arrivals = rows(exact.out / "arrivals.csv")
    assert {a["worker"] for a in arrivals} == {"0", "1"} and len(
        {a["applicant_id"] for a in arrivals}
    ) == s["scheduled"]
    stats = dist.request_counts(exact.out)
    assert stats and sum(stats.values()) == s["requests"]
    for step, n in stats.items():
        assert dist.service_samples(exact.out, step) == n, step
    # every request and every message crossed the veth: well over a kilobyte per request
    assert _veth_bytes() - before > 1000 * s["requests"]

    # 2. a worker killed mid-run is named, what the other sent is kept, exit 3
    assert codes[1] == 3, killed.stderr[-2000:]
    k = json.loads((killed.out / "summary.json").read_text())
    lost = k["lost_workers"][0]["index"]
    assert len(k["lost_workers"]) == 1 and f"IntegrityError: worker {lost} (" in killed.stderr, (
        killed.stderr[-1500:]
    )
    assert {a["worker"] for a in rows(killed.out / "arrivals.csv")} == {str(1 - lost)}

    # 3. workers of another surgecast version: refused
    # by the master, one line, exit 2, nothing written
    assert codes[2] == 2, stranger.stderr[-2000:]
    assert (
        "runs surgecast 0.0.0-other+" in stranger.stderr
        and "the same surgecast version" in stranger.stderr
    )
    assert "Traceback" not in stranger.stderr and len(stranger.stderr.strip().splitlines()) == 1, (
        stranger.stderr
    )
    assert not (stranger.out / "summary.json").exists()
