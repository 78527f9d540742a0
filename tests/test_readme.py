"""The README a first-timer follows: venv before install, no links a clone cannot follow, the
picture exists and its script makes it, and the API contract names every route the journeys call."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_venv_comes_before_the_install() -> None:
    assert README.index("python3 -m venv") < README.index("pip install")


def test_no_link_leaves_the_repository() -> None:
    for doc in ("README.md", "DEVELOPERS.md"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        assert "../" not in text, doc  # a clone has no ../shared
        for target in re.findall(r"\]\(([^)]+)\)", text):
            assert not re.match(r"[a-z]+://", target), target
            assert (ROOT / target).exists(), target


def test_timings_and_success_are_stated() -> None:
    assert re.search(r"Run the main job \(about [\d.]+ minutes\)", README)
    assert re.search(r"Run the tests \(about \d+ minutes\)", README)
    assert "What success looks like" in README and "demo finished in" in README


def test_the_api_contract_lists_every_route_the_journeys_call() -> None:
    """Every /v1 path in scenarios/journeys.py is in the
    README's contract, and in the testbed's OpenAPI."""
    called = {
        re.sub(r"\{[^}]+\}", "{id}", p)
        for p in re.findall(r'f?"(/v1/[^"?]*)"', (ROOT / "scenarios" / "journeys.py").read_text())
    }
    assert len(called) >= 7, called
    openapi = {
        re.sub(r"\{[^}]+\}", "{id}", p)
        for p in json.loads((ROOT / "docs" / "openapi.json").read_text())["paths"]
    }
    section = README[
        README.index("## Point it at your own service") : README.index("## The commands")
    ]
    for path in sorted(called):
        assert path in openapi, path
        assert f"{path}`" in section, path


@pytest.mark.skipif(
    not any(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")),
    reason="chromium not installed",
)
@pytest.mark.timeout(120)
def test_the_screenshot_script_makes_the_first_screen(tmp_path: Path) -> None:
    import importlib.util

    from PIL import Image

    spec = importlib.util.spec_from_file_location(
        "docs_screenshot", ROOT / "docs" / "screenshot.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    png = mod.screenshot(mod.SAMPLE, tmp_path / "shot.png")
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape[:2] == (mod.HEIGHT, mod.WIDTH)
    red = np.all(np.abs(img[:250].astype(int) - np.array((0xB4, 0x23, 0x18))) <= 6, axis=2)
    assert red.sum() > 20_000  # the red verdict banner is in the first screen
    shipped = np.asarray(Image.open(ROOT / "docs" / "report-first-screen.png").convert("RGB"))
    assert shipped.shape == img.shape  # the README's picture is this script's output size
