"""probe.csv -> capacity.json, on the fixture in tests/fixtures/probe/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.probe import PROBE_COLUMNS, capacity_from_probe, read_probe_csv
from surgecast.errors import InputFileError

FIXTURE = Path(__file__).parent / "fixtures" / "probe" / "probe.csv"


def test_capacity_from_fixture() -> None:
    rows = read_probe_csv(FIXTURE)
    cap = capacity_from_probe(rows, configured={"issuer_workers": 4}, measured_at="2024-09-01T00:00:00.000Z")
    json.dumps(cap)  # JSON-ready
    stamps = [r for r in rows if r["step"] == "stamps"]
    acceptable = [r["throughput_per_s"] for r in stamps if r["error_ratio"] <= 0.01]
    assert cap["stamps_per_second"] == max(acceptable)
    assert cap["excluded_levels"]["stamps"] == [32]          # 12 % errors at 32
    assert cap["peak_concurrency"]["stamps"] == 16
    u = cap["usl"]["stamps"]
    assert u["points"] == 5 and u["r2"] > 0.98
    assert u["alpha"] == pytest.approx(0.08, abs=0.03) and u["beta"] == pytest.approx(0.002, abs=0.001)
    assert "beyond the highest measured level" in u["note"]   # peak ~21 > 16: said, not used
    assert cap["usl"]["pay"]["alpha"] is None and "needs at least 4" in cap["usl"]["pay"]["note"]
    assert cap["configured"] == {"issuer_workers": 4}
    assert set(cap) >= {"stamps_per_second", "peak_concurrency", "usl", "configured", "measured_at"}


def test_no_stamps_rows_is_said_not_guessed() -> None:
    rows = [r for r in read_probe_csv(FIXTURE) if r["step"] != "stamps"]
    cap = capacity_from_probe(rows)
    assert cap["stamps_per_second"] is None and "no 'stamps' rows" in cap["note"]


def test_all_levels_failing() -> None:
    rows = [{**r, "error_ratio": 0.5} for r in read_probe_csv(FIXTURE) if r["step"] == "stamps"]
    cap = capacity_from_probe(rows)
    assert cap["stamps_per_second"] is None and cap["peak_concurrency"]["stamps"] is None


def test_bad_probe_csv(tmp_path) -> None:
    p = tmp_path / "probe.csv"
    p.write_text(",".join(PROBE_COLUMNS) + "\n1,stamps,10,0,0,abc,1,2,3,60\n")
    with pytest.raises(InputFileError, match=r"line 2, column throughput_per_s: 'abc' is not a number"):
        read_probe_csv(p)
    p.write_text("concurrency,step\n1,stamps\n")
    with pytest.raises(InputFileError, match="missing column"):
        read_probe_csv(p)
    p.write_text(",".join(PROBE_COLUMNS) + "\n1.5,stamps,10,0,0,1,1,2,3,60\n")
    with pytest.raises(InputFileError, match="concurrency"):
        read_probe_csv(p)
