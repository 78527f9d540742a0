"""Run directories never blend (issue 13 item 3): run ids,
manifest.json, refusals before writing, the report's check.

Real writers: `surgecast plan` twice (about 4 s each) and one short `surgecast rehearse`
(embedded testbed, real Locust). Each blend is made by hand and `surgecast report` must go red.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from floor import rundir
from surgecast.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "runs"


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if k != rundir.RUN_ID_ENV}
    return subprocess.run(
        [sys.executable, "-m", "surgecast", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**e, **(env or {})},
    )


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("plans")
    # b at another capacity: its files differ in content (the same plan twice writes
    # byte-identical CSVs, which pass the sha256 check: they are the same data)
    for name, extra in (("a", []), ("b", ["--stamps-per-second", "10"])):
        r = _cli("plan", "--profile", "casn2024", "--no-bands", *extra, "--out", str(base / name))
        assert r.returncode == 0, r.stderr
    return base / "a", base / "b"


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rehearsal") / "r"
    fast = [
        'security.password_hash="pbkdf2"',
        "security.pbkdf2_iterations=1000",
        "issuer.workers=16",
        "issuer.service.mean=0.02",
        "payments.service.mean=0.05",
    ]  # as tests/test_distributed.py
    r = _cli(
        "rehearse",
        "--arrival-rate",
        "3",
        "--duration",
        "4",
        "--seed",
        "5",
        "--quiet",
        "--out",
        str(out),
        *sum((["--testbed-set", kv] for kv in fast), []),
        timeout=150,
    )
    assert r.returncode in (0, 1), r.stdout[-2000:] + r.stderr[-2000:]
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("report.*"))
    return dst


def _legacy(src: Path, dst: Path) -> Path:
    """A copy as a directory written before run ids: no manifest.json, no `run_id` in its JSON."""
    d = _copy(src, dst)
    (d / "manifest.json").unlink()
    for p in d.glob("*.json"):
        obj = json.loads(p.read_text())
        if isinstance(obj, dict) and "run_id" in obj:
            p.write_text(json.dumps({k: v for k, v in obj.items() if k != "run_id"}))
    return d


def _snapshot(d: Path) -> dict[str, str]:
    return {
        str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


def _one_line_exit_2(r: subprocess.CompletedProcess[str], *words: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-800:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


# ---------------------------------------------------------------- every file records its run id
def _check_sealed(d: Path) -> str:
    m = json.loads((d / "manifest.json").read_text())
    rid = m["run_id"]
    assert rundir.RUN_ID_RE.fullmatch(rid)
    for name in rundir.run_files(d):
        entry = m["files"][name]  # every run file is listed ...
        assert entry["run_id"] == rid and entry["sha256"] == rundir.sha256(d / name)
        if name.endswith(".json"):
            obj = json.loads((d / name).read_text())
            if isinstance(obj, dict):  # ... and every JSON object carries the id itself
                assert obj["run_id"] == rid, name
    assert rundir.verify(d) == rid
    return rid


def test_plan_files_carry_one_run_id_and_two_plans_differ(plans: tuple[Path, Path]) -> None:
    a, b = plans
    assert {"timeline.csv", "plan.json", "gate_schedule.json", "waiting_room.json"} <= set(
        rundir.run_files(a)
    )
    assert _check_sealed(a) != _check_sealed(b)


def test_rehearsal_files_carry_one_run_id(rehearsal: Path) -> None:
    files = set(rundir.run_files(rehearsal))
    assert {
        "run.json",
        "summary.json",
        "arrivals.csv",
        "ledger.csv",
        "queue.csv",
        "latency_history.csv",
        "locust_stats.csv",
        "reconciliation.json",
    } <= files
    assert any(f.startswith("latency/") for f in files)
    rid = _check_sealed(rehearsal)
    assert "locust.log" in json.loads((rehearsal / "manifest.json").read_text())["files"]
    assert json.loads((rehearsal / "run.json").read_text())["run_id"] == rid


def test_report_records_the_run_id(plans: tuple[Path, Path], tmp_path: Path) -> None:
    """Also the control of the blends below: the same copy,
    untouched, builds (red: the plan misses its target)."""
    d = _copy(plans[0], tmp_path / "a")
    rid = json.loads((d / "manifest.json").read_text())["run_id"]
    assert main(["report", str(d)]) == 1
    html = (d / "report.html").read_text()
    assert f'<meta name="surgecast-run-id" content="{rid}">' in html
    assert f"belongs to run {rid}" in html


# -------------------------------------------------------- the report refuses a blended directory
@pytest.mark.parametrize(
    "blend", ["foreign_csv", "foreign_json", "unlisted", "listed_elsewhere", "json_id"]
)
def test_report_refuses_a_blended_directory(
    plans: tuple[Path, Path], tmp_path: Path, blend: str
) -> None:
    a, b = plans
    d = _copy(a, tmp_path / "blend")
    name = {
        "foreign_csv": "timeline.csv",
        "foreign_json": "plan.json",
        "unlisted": "arrivals.csv",
        "listed_elsewhere": "gate_schedule.json",
        "json_id": "waiting_room.json",
    }[blend]
    if blend in ("foreign_csv", "foreign_json"):  # a file of run b copied over run a's
        shutil.copy(b / name, d / name)
    elif blend == "unlisted":  # another run's file added beside
        shutil.copy(FIXTURES / "rehearsal" / name, d / name)
    elif blend == "listed_elsewhere":  # the manifest lists it under another run
        m = json.loads((d / "manifest.json").read_text())
        m["files"][name]["run_id"] = json.loads((b / "manifest.json").read_text())["run_id"]
        (d / "manifest.json").write_text(json.dumps(m))
    else:  # JSON says another run; manifest re-sealed to match
        w = json.loads((d / name).read_text())
        w["run_id"] = json.loads((b / "manifest.json").read_text())["run_id"]
        (d / name).write_text(json.dumps(w))
        m = json.loads((d / "manifest.json").read_text())
        m["files"][name]["sha256"] = rundir.sha256(d / name)
        (d / "manifest.json").write_text(json.dumps(m))
    before = _snapshot(d)
    r = _cli("report", str(d))
    _one_line_exit_2(r, "BlendedRun", name)
    assert _snapshot(d) == before and not (d / "report.html").exists()  # nothing written


def test_deleting_a_listed_file_is_not_a_blend(plans: tuple[Path, Path], tmp_path: Path) -> None:
    d = _copy(plans[0], tmp_path / "less")
    (
        d / "waiting_room.json"
    ).unlink()  # the readers' advice for a bad file: delete it, build without
    assert rundir.verify(d) == json.loads((d / "manifest.json").read_text())["run_id"]


def test_directory_without_manifest_says_so(tmp_path: Path) -> None:
    d = _legacy(FIXTURES / "plan", tmp_path / "legacy")
    assert rundir.verify(d) is None
    main(["report", str(d)])
    html = (d / "report.html").read_text()
    assert 'id="provenance" class="absent"' in html and "no manifest.json" in html


def test_without_manifest_differing_json_run_ids_are_refused(tmp_path: Path) -> None:
    d = _legacy(FIXTURES / "full", tmp_path / "legacy")
    for name, rid in (
        ("plan.json", "20261201T000000Z-aaaaaa"),
        ("capacity.json", "20261201T000000Z-bbbbbb"),
    ):
        obj = json.loads((d / name).read_text())
        (d / name).write_text(json.dumps({"run_id": rid, **obj}))
    with pytest.raises(rundir.BlendedRun, match="capacity.json|plan.json"):
        rundir.verify(d)


# -------------------------------------------------------- writers refuse another run's directory
@pytest.mark.parametrize(
    "cmd",
    [
        ["plan", "--profile", "casn2024", "--no-bands"],
        ["forecast", "--profile", "casn2024"],
        ["probe"],
        ["rehearse", "--arrival-rate", "2", "--duration", "3"],
        ["demo", "--quick", "--duration", "20"],
    ],
)
def test_a_writer_refuses_another_runs_directory_before_writing(
    plans: tuple[Path, Path], tmp_path: Path, cmd: list[str]
) -> None:
    d = _copy(plans[0], tmp_path / "taken")
    before = _snapshot(d)
    r = _cli(*cmd, "--out", str(d))
    _one_line_exit_2(r, "--out", "another run", "give a new directory")
    assert _snapshot(d) == before  # not one file written or touched


def test_a_writer_refuses_files_without_a_manifest(tmp_path: Path) -> None:
    d = _legacy(FIXTURES / "probe", tmp_path / "old")
    before = _snapshot(d)
    r = _cli("plan", "--profile", "casn2024", "--no-bands", "--out", str(d))
    _one_line_exit_2(r, "--out", "earlier run", "capacity.json")
    assert _snapshot(d) == before


def test_a_demo_left_half_done_is_not_continued(plans: tuple[Path, Path], tmp_path: Path) -> None:
    """A demo that stopped after its plan (no summary.json
    yet) is refused too, --out/baseline included."""
    out = tmp_path / "demo"
    out.mkdir()
    _copy(plans[0], out / "baseline")
    before = _snapshot(out)
    r = _cli("demo", "--quick", "--duration", "20", "--out", str(out))
    _one_line_exit_2(r, "baseline", "another run")
    assert _snapshot(out) == before


def test_the_same_run_may_add_its_own_files(plans: tuple[Path, Path], tmp_path: Path) -> None:
    """How the demo's phases share a directory: a child under the parent's run id is let in."""
    d = _copy(plans[0], tmp_path / "mine")
    rid = json.loads((d / "manifest.json").read_text())["run_id"]
    with rundir.exported(rid):
        assert rundir.claim(d, what="probe") == rid
    with pytest.raises(rundir.FieldError, match="another run"):
        rundir.claim(d, what="probe", run_id=rundir.new_run_id())
