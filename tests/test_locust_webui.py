"""`locust -f locustfile.py` in its web UI, driven by
a real headless Chromium over the DevTools protocol.

START with edited custom parameters runs those parameters (they are resolved at START, not at init);
the Users/Ramp-up fields are hidden under the open model; the surge profile is a choice list; a
second START says why it does not run; a bad edit is refused with the flag named, before any load.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from floor.children import child_env, python_module
from floor.children import stop as stop_child
from reports.pdf import CHROMIUM_NAMES, HEADLESS_FLAGS, find_chromium

websocket = pytest.importorskip("websocket")  # websocket-client (the test extra)
ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    not any(shutil.which(n) for n in CHROMIUM_NAMES), reason="chromium not installed"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Page:
    """One Chromium tab over the DevTools protocol (flattened session; Runtime.evaluate only)."""

    def __init__(self, ws_url: str, url: str) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self._id = 0
        target = self.call("Target.createTarget", url=url)["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call(
            "Page.bringToFront", self.session
        )  # a background tab would pause the UI's polling
        self.call("Emulation.setFocusEmulationEnabled", self.session, enabled=True)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self._id:
                assert "error" not in reply, reply
                return reply["result"]

    def js(self, expression: str) -> Any:
        r = self.call(
            "Runtime.evaluate",
            self.session,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    def wait_js(self, expression: str, timeout_s: float = 30.0) -> Any:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            v = self.js(expression)
            if v:
                return v
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {expression}")


SET_FIELD = """(name, value) => {
  const el = document.querySelector(`[name="${name}"]`);
  if (!el) return false;
  const proto = el.tagName === 'SELECT' ? HTMLSelectElement.prototype : HTMLInputElement.prototype;
  Object.getOwnPropertyDescriptor(proto, 'value').set.call(el, value);
  el.dispatchEvent(new Event('input', {bubbles: true}));
  el.dispatchEvent(new Event('change', {bubbles: true}));
  return true;
}"""


@contextlib.contextmanager
def _chromium() -> Iterator[str]:
    # Chromium's helpers may still write the profile as it exits (as in tests/cdp_browser.py)
    profile_dir = tempfile.TemporaryDirectory(prefix="surgecast-cdp-", ignore_cleanup_errors=True)
    with profile_dir as profile:
        proc = subprocess.Popen(
            [
                find_chromium(),
                *HEADLESS_FLAGS,
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",  # websocket-client sends an Origin header
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            assert proc.stderr is not None
            for line in proc.stderr:
                m = re.search(r"DevTools listening on (ws://\S+)", line)
                if m:
                    yield m.group(1)
                    break
            else:
                raise AssertionError("chromium did not open its DevTools port")
        finally:
            stop_child(proc, 5)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its renderer and helper processes too


@contextlib.contextmanager
def _locust_web(out: Path, cwd: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    cmd = [
        *python_module("locust"),
        "-f",
        str(ROOT / "locustfile.py"),
        "--web-host",
        "127.0.0.1",
        "--web-port",
        str(port),
        "--arrival-rate",
        "2",
        "--duration",
        "60",
        "--seed",
        "3",
        "--out",
        str(out),
        "--loglevel",
        "WARNING",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=child_env(None),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        end = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < end, "the Locust web UI did not come up"
                time.sleep(0.3)
        yield url, proc
    finally:
        stop_child(proc, 15)


def _start_with(page: Page, fields: dict[str, str]) -> None:
    page.wait_js("!!document.querySelector('form [name=\"arrivalRate\"]')")
    for name, value in fields.items():
        assert page.js(f"({SET_FIELD})({json.dumps(name)}, {json.dumps(value)})"), name
    page.js("document.querySelector('form button[type=submit]').click()")


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_start_in_the_web_ui_runs_the_edited_parameters(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with _locust_web(out, tmp_path) as (url, _proc), _chromium() as ws:
        page = Page(ws, url)
        page.wait_js("document.readyState === 'complete' && !!document.querySelector('form')")
        # Users and Ramp up are hidden under the open model (the shape sizes the pool).
        page.wait_js("!!document.getElementById('surgecast-open-model')")
        assert "Open model" in page.js("document.getElementById('surgecast-open-model').innerText")
        shown = page.js(
            "['userCount', 'spawnRate', 'runTime'].filter(n => "
            "document.querySelector(`input[name=${n}]`)?.offsetParent)"
        )
        assert shown == []
        # The surge profile is a choice list of the shipped profiles.
        page.js("document.querySelector('.MuiAccordionSummary-root, [aria-expanded]')?.click()")
        options = page.wait_js(
            "[...(document.querySelector('select[name=\"surgeProfile\"]')?.options || [])]"
            ".map(o => o.value)"
        )
        assert {"-", "casn2024", "steady"} <= set(options)
        # A bad edit is refused with the flag named, and nothing runs.
        _start_with(page, {"arrivalRate": "-1", "duration": "5"})
        assert "--arrival-rate" in page.wait_js(
            "document.body.innerText.includes('FieldError') && document.body.innerText"
        )
        assert not (out / "run.json").exists()
        # The edited parameters: 3 arrivals/s for 5 s instead of the command line's 2/s for 60 s.
        _start_with(page, {"arrivalRate": "3", "duration": "5", "seed": "11"})
        t0 = time.monotonic()
        end = t0 + 90
        while not (out / "summary.json").exists():
            assert time.monotonic() < end, "the rehearsal started from the web UI never finished"
            time.sleep(0.5)
        time.sleep(1.0)
        run = json.loads((out / "run.json").read_text())
        assert (run["arrival_rate"], run["duration_s"], run["seed"]) == (3.0, 5.0, 11)
        summary = json.loads((out / "summary.json").read_text())
        assert (
            9 <= summary["scheduled"] <= 21
        )  # ~15 arrivals at 3/s for 5 s, not 120 at 2/s for 60 s
        # A second START (the UI's New, then Start) says why it does not run.
        assert (
            page.js("fetch('/stats/requests').then(r => r.json()).then(j => j.state)") == "stopped"
        )
        page.js(
            "location.reload()"
        )  # (headless Chromium's page does not always repaint the polled state)
        time.sleep(1.0)
        page.wait_js(
            "(() => { const b = [...document.querySelectorAll('button')]"
            ".find(b => /^new$/i.test(b.innerText.trim())); if (b) b.click(); return !!b; })()",
            timeout_s=60,
        )
        _start_with(page, {"arrivalRate": "3", "duration": "5"})
        told = page.wait_js(
            "document.body.innerText.includes('already run its rehearsal') && "
            "document.body.innerText"
        )
        assert "Stop Locust and start it again" in told
