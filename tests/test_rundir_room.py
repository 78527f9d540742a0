"""The run directory's room: producers write through the
schema, one gate_schedule reader, checks by name."""

from __future__ import annotations

import json
import zoneinfo
from pathlib import Path

import pytest

from analysis.follow import check_by_name
from floor.errors import InputFileError
from floor.rundir import schema, writers
from floor.rundir.files import read_gate_schedule
from scenarios.options import load_gate_schedule

PLAN = Path(__file__).parent / "fixtures" / "runs" / "plan"


def test_producers_use_the_schemas_columns() -> None:
    import analysis.plan_config
    import analysis.probe
    import scenarios.recorder

    assert scenarios.recorder.LEDGER_COLUMNS is schema.LEDGER_COLUMNS
    assert analysis.probe.PROBE_COLUMNS is schema.PROBE_COLUMNS
    assert analysis.plan_config.TIMELINE_COLUMNS is schema.TIMELINE_COLUMNS


def test_writer_refuses_rows_that_do_not_fit_the_schema(tmp_path: Path) -> None:
    row = dict.fromkeys(schema.QUEUE_COLUMNS, 0)
    writers.write_table(tmp_path, schema.QUEUE, [row])
    header = (tmp_path / schema.QUEUE).read_text().splitlines()[0]
    assert tuple(header.split(",")) == schema.QUEUE_COLUMNS
    with pytest.raises(ValueError, match="does not know: issuer_qeue"):
        writers.write_table(tmp_path, schema.QUEUE, [{**row, "issuer_qeue": 1}])
    with pytest.raises(ValueError, match="13 fields"):
        writers.write_table(tmp_path, schema.QUEUE, [list(row.values())[:-1]])
    with pytest.raises(ValueError, match="not a CSV file"):
        writers.write_table(tmp_path, "queues.csv", [row])
    assert (tmp_path / schema.QUEUE).read_text().splitlines()[0] == header  # the good file stays


def test_one_gate_schedule_reader_for_report_and_rehearse(tmp_path: Path) -> None:
    tz = zoneinfo.ZoneInfo("Asia/Jakarta")
    report = read_gate_schedule(PLAN / schema.GATE_SCHEDULE)
    rehearse = load_gate_schedule(str(PLAN / schema.GATE_SCHEDULE), tz)
    assert [(g["at"], g["gate"], g["mode"], g["rate_per_s"]) for g in report] == [
        (g.at, g.gate, g.mode, g.rate_per_s) for g in rehearse
    ]
    bad = json.loads((PLAN / schema.GATE_SCHEDULE).read_text())
    bad[0]["mode"] = "paced"  # a stage's mode, not one a target understands
    p = tmp_path / schema.GATE_SCHEDULE
    p.write_text(json.dumps(bad))
    with pytest.raises(InputFileError, match=r"\[0\]\.mode"):
        read_gate_schedule(p)
    with pytest.raises(InputFileError, match=r"--gates .*\[0\]\.mode"):
        load_gate_schedule(str(p), tz)


def test_checks_are_found_by_name_whatever_their_order() -> None:
    check = {
        "checks": [
            {"name": "drain", "ok": True},
            {"name": "gates", "ok": True},
            {"name": "integrity", "ok": False},
            {"name": "model", "ok": True},
        ]
    }
    shuffled = {"checks": list(reversed(check["checks"]))}
    assert check_by_name(shuffled, "integrity") == check_by_name(check, "integrity")
    assert check_by_name(shuffled, "integrity")["ok"] is False
    assert shuffled["checks"][2]["ok"] is True  # the positional mutant (checks[2]) reads 'gates'
