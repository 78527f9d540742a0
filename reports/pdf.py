"""Print report.html to report.pdf with headless Chromium (Debian package `chromium`).

    >>> from pathlib import Path
    >>> print_pdf(Path("run/report.html"), Path("run/report.pdf"))  # doctest: +SKIP

Chromium runs with a fresh temporary profile and no background networking; the
report itself loads nothing from the network. The PDF is written atomically.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from floor.atomic import write_bytes
from floor.errors import UsageError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
HEADLESS_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")


class ChromiumMissing(UsageError):
    """Headless Chromium is needed (for --pdf) but not installed (exit 2)."""


class ChromiumFailed(UsageError):
    """Chromium ran but did not produce the file (exit 2)."""


def find_chromium() -> str:
    """The Chromium executable: $SURGECAST_CHROMIUM, else the first of CHROMIUM_NAMES on PATH.

    Raises ChromiumMissing with the fix when there is none.
    """
    env = os.environ.get("SURGECAST_CHROMIUM")
    if env:
        if shutil.which(env):
            return str(shutil.which(env))
        raise ChromiumMissing(f"SURGECAST_CHROMIUM = {env!r} is not an executable; "
                              "unset it or install Chromium with: apt-get install chromium")
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise ChromiumMissing(
        "chromium not found on PATH (needed for --pdf); install it with: apt-get install chromium "
        "(report.html was written)"
    )


def run_chromium(args: list[str], *, timeout_s: float = 90.0) -> subprocess.CompletedProcess[bytes]:
    """Run headless Chromium with `args` after the standard flags and a fresh profile directory.

    >>> run_chromium(["--dump-dom", "file:///dev/null"]).returncode  # doctest: +SKIP
    0
    """
    exe = find_chromium()
    with tempfile.TemporaryDirectory(prefix="surgecast-chromium-") as profile:
        cmd = [exe, *HEADLESS_FLAGS, f"--user-data-dir={profile}", *args]
        try:
            return subprocess.run(
                cmd,
                capture_output=True,
                timeout=timeout_s,
                check=False,
                env={**os.environ, "HOME": profile},
            )
        except subprocess.TimeoutExpired:
            raise ChromiumFailed(
                f"chromium did not finish within {timeout_s:g} s; "
                "check that it starts headless (chromium --headless --version)"
            ) from None


def print_pdf(html: Path, pdf: Path, *, timeout_s: float = 90.0) -> Path:
    """Print `html` to `pdf` (A4, background colours kept by the print CSS); returns `pdf`."""
    with tempfile.TemporaryDirectory(prefix="surgecast-pdf-") as tmp:
        out = Path(tmp) / "report.pdf"
        proc = run_chromium(
            [
                "--no-pdf-header-footer",
                "--print-to-pdf-no-header",
                f"--print-to-pdf={out}",
                html.resolve().as_uri(),
            ],
            timeout_s=timeout_s,
        )
        if not out.is_file() or out.stat().st_size == 0 or not out.read_bytes().startswith(b"%PDF"):
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            raise ChromiumFailed(
                f"chromium wrote no PDF for {html} (exit {proc.returncode}: {tail[0][:200]}); "
                "run it by hand with --headless --print-to-pdf to see why"
            )
        write_bytes(pdf, out.read_bytes())
    return pdf
