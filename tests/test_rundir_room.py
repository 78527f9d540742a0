"""The run directory's room: producers write through the
schema, one gate_schedule reader, checks by name."""

from __future__ import annotations

import json
import zoneinfo
from datetime import datetime
from pathlib import Path
from typing import Any

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


REHEARSAL = Path(__file__).parent / "fixtures" / "runs" / "rehearsal"


def test_arrivals_and_queue_are_read_by_the_room_as_a_plain_csv_reads_them() -> None:
    """The model's inputs (analysis.rehearsal_inputs) come from floor.rundir.files, unchanged."""
    import csv
    from datetime import datetime

    from analysis.rehearsal_inputs import _arrival_rows, _queue_series

    def unix(text: str) -> float:
        return datetime.fromisoformat(text).timestamp()

    with (REHEARSAL / schema.ARRIVALS).open(newline="") as f:
        plain = [(r["applicant_id"], r["journey"], unix(r["intended_at"]), r["outcome"],
                  unix(r["finished_at"]) if r["finished_at"] else None)
                 for r in csv.DictReader(f) if r["outcome"] != "dropped"]
    assert _arrival_rows(REHEARSAL / schema.ARRIVALS, ids=True) == plain
    assert _arrival_rows(REHEARSAL / schema.ARRIVALS) == [r[1:] for r in plain]
    with (REHEARSAL / schema.QUEUE).open(newline="") as f:
        rows = list(csv.DictReader(f))
    ts, q = _queue_series(REHEARSAL / schema.QUEUE, 100.0)
    assert list(ts) == [unix(r["at"]) - 100.0 for r in rows]
    assert list(q) == [float(r["issuer_queue"]) + float(r["issuer_busy"]) for r in rows]


@pytest.mark.parametrize(("name", "column", "bad"), [
    (schema.ARRIVALS, "intended_at", "yesterday"), (schema.ARRIVALS, "outcome", "complete"),
    (schema.QUEUE, "at", "noon"), (schema.QUEUE, "issuer_busy", "x")])
def test_model_inputs_refuse_a_bad_cell_naming_line_and_column(tmp_path: Path, name: str,
                                                                column: str, bad: str) -> None:
    from analysis.rehearsal_inputs import _arrival_rows, _queue_series

    lines = (REHEARSAL / name).read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    cells = lines[2].split(",")
    cells[header.index(column)] = bad
    lines[2] = ",".join(cells)
    (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    read = _arrival_rows if name == schema.ARRIVALS else lambda p: _queue_series(p, 0.0)
    with pytest.raises(InputFileError, match=rf"{name}: line 3: column {column} = '{bad}'"):
        read(tmp_path / name)
    with pytest.raises(InputFileError, match=rf"{name}: missing; a rehearsal"):
        read(tmp_path / "absent" / name)


def test_the_plan_check_reads_queue_csv_through_the_room(tmp_path: Path) -> None:
    """follow's samples: gates and paused from queue.csv, a bad cell named by line and column."""
    from analysis.follow import _queue_rows

    src = Path(__file__).parent / "fixtures" / "runs" / "full" / schema.QUEUE
    rows = _queue_rows(src)
    text = src.read_text(encoding="utf-8").splitlines()
    assert len(rows) == len(text) - 1
    paused = [r.split(",")[schema.QUEUE_COLUMNS.index("issuer_paused")] == "1" for r in text[1:]]
    assert [r[4] for r in rows] == paused and any(paused) and not all(paused)
    gate = schema.QUEUE_COLUMNS.index("gate_ordering")
    assert [r[5]["ordering"] for r in rows] == [r.split(",")[gate] for r in text[1:]]
    cells = text[3].split(",")
    cells[schema.QUEUE_COLUMNS.index("issuer_queue")] = "many"
    text[3] = ",".join(cells)
    (tmp_path / schema.QUEUE).write_text("\n".join(text) + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"queue.csv: line 4: column issuer_queue = 'many'"):
        _queue_rows(tmp_path / schema.QUEUE)


@pytest.mark.parametrize(("name", "column", "bad"), [
    (schema.QUEUE, "issuer_busy", "x"), (schema.QUEUE, "at", "noon"),
    (schema.LATENCY_HISTORY, "count", "many"), (schema.LATENCY_HISTORY, "p50_ms", "fast")])
def test_the_model_refuses_a_bad_cell_it_once_skipped(tmp_path: Path, name: str, column: str,
                                                      bad: str) -> None:
    """The issuer's samples (queue.csv) and the upload request time (latency_history.csv, the
    `stamp` rows) read through the room: a bad cell is refused naming file, line and column
    (the model used to skip its row), and the empty cells a rehearsal writes still read."""
    import csv

    from analysis.rehearsal_inputs import _stamp_request_s
    from analysis.rehearsal_issuer import _issuer_samples

    lines = (REHEARSAL / name).read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    if name == schema.QUEUE:
        def read(d: Path) -> Any:
            return _issuer_samples(d, 0.0)
        at = 2
    else:
        read = _stamp_request_s
        at = next(i for i, line in enumerate(lines) if line.split(",")[2] == "stamp"
                  and line.split(",")[header.index("p50_ms")])
    rows = list(csv.DictReader(lines))
    if name == schema.QUEUE:  # an empty completed count (a target that does not count them)
        cells = lines[at].split(",")
        cells[header.index("issuer_completed")] = ""
        (tmp_path / name).write_text("\n".join([*lines[:at], ",".join(cells), *lines[at + 1:]])
                                     + "\n", encoding="utf-8")
        kept = [r for i, r in enumerate(rows) if i != at - 1]
        assert [list(x) for x in read(tmp_path)] == [
            [datetime.fromisoformat(r["at"]).timestamp() for r in kept],
            *([float(r[c]) for r in kept]
              for c in ("issuer_completed", "issuer_busy", "issuer_workers"))]
    else:  # windows without a request have empty percentiles (the fixture holds some)
        stamp = [r for r in rows if r["step"] == "stamp" and r["p50_ms"]]
        assert any(not r["p50_ms"] for r in rows)
        assert read(REHEARSAL) == (sum(float(r["count"]) * float(r["p50_ms"]) / 1000.0
                                       for r in stamp) / sum(float(r["count"]) for r in stamp))
    cells = lines[at].split(",")
    cells[header.index(column)] = bad
    lines[at] = ",".join(cells)
    (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputFileError,
                       match=rf"{name}: line {at + 1}: column {column} = '{bad}' is not"):
        read(tmp_path)
