"""Read run-directory files whole, or refuse them with an error that names file, line and key.

The generic readers: `read_json`, `need` (a typed key of a JSON object), `read_csv` (named
columns into numpy arrays or lists, a `Series`), `parse_time` and `key_time` (ISO 8601 times
with an offset, as the files write them). `floor.rundir.files` reads each file through them::

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = p.write_text("at,n\\n2024-09-03T00:00:00+07:00,2\\n")
    >>> s = read_csv(p, times=("at",), numbers=("n",))
    >>> len(s), float(s["n"][0]), s["at"][0].utcoffset().seconds
    (1, 2.0, 25200)
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from floor.errors import InputFileError

__all__ = ["FIX", "YEARS", "Series", "key_time", "need", "parse_time", "read_csv", "read_json",
           "require"]

YEARS = (1900, 2200)  # times outside are not a surge's calendar (and overflow zone conversions)
FIX = "rerun the command that wrote it, or delete the file to build the report without it"


@dataclass(kw_only=True)
class Series:
    """Columns of a CSV file: `cols[name]` is a numpy array (floats) or a list (text/times)."""

    path: Path
    cols: dict[str, Any]
    lines: list[int] = field(default_factory=list)  # the file line of each row

    def __len__(self) -> int:
        return len(next(iter(self.cols.values()))) if self.cols else 0

    def __getitem__(self, name: str) -> Any:
        return self.cols[name]


def read_json(path: Path) -> Any:
    """Parse a JSON file; a syntax error names the file, line and column.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "x.json"; _ = p.write_text('{"a": }')
    >>> read_json(p)
    Traceback (most recent call last):
    ...
    floor.errors.InputFileError: ...x.json: line 1 column 7: not valid JSON (Expecting value); ...
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputFileError(f"{path}: line {e.lineno} column {e.colno}: not valid JSON "
                             f"({e.msg}); {FIX}") from None
    except UnicodeDecodeError:
        raise InputFileError(f"{path}: not UTF-8 text; {FIX}") from None
    except RecursionError:
        raise InputFileError(f"{path}: JSON nested too deeply to read; {FIX}") from None


def read_object(path: Path, *, written_by: str) -> dict[str, Any]:
    """A JSON object file of the run directory; a missing file names who writes it.

    >>> read_object(Path("/nonexistent/plan.json"), written_by="surgecast plan")
    Traceback (most recent call last):
    ...
    floor.errors.InputFileError: /nonexistent/plan.json: missing; it is written by surgecast plan
    """
    try:
        data = read_json(path)
    except FileNotFoundError:
        raise InputFileError(f"{path}: missing; it is written by {written_by}") from None
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: expected a JSON object")
    return data


def need(obj: Any, key: str, path: Path, kind: type | tuple[type, ...] | None = None, *,
         optional: bool = False, at: str = "") -> Any:
    """obj[key] for a dotted `key`, checked against `kind`; errors name the file and the key.

    >>> need({"a": {"b": 1}}, "a.b", Path("plan.json"), int)
    1
    """
    node = obj
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            if optional:
                return None
            raise InputFileError(f"{path}: key {shown(at + key)} is missing; {FIX}")
        node = node[part]
    if node is None and optional:
        return None
    if kind is not None:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(node, kinds) and not (isinstance(node, bool) and bool not in kinds)
        if float in kinds and isinstance(node, int) and not isinstance(node, bool):
            ok = True
        if not ok:
            names = " or ".join(k.__name__ for k in kinds)
            raise InputFileError(f"{path}: key {shown(at + key)} = {node!r} is not a {names}; "
                                 f"{FIX}")
    return node


def need_object(obj: Any, path: Path, what: str = "a JSON object") -> dict[str, Any]:
    """`obj` when it is a dict, else an error naming the file."""
    if not isinstance(obj, dict):
        raise InputFileError(f"{path}: expected {what}; {FIX}")
    return obj


def shown(key: str) -> str:
    """A key as a message shows it: as is, or quoted when it holds control characters."""
    return key if key.isprintable() else repr(key)


def in_range(d: datetime) -> bool:
    """A time the report can place on a calendar axis (and convert between zones)."""
    return YEARS[0] <= d.year <= YEARS[1]


def parse_time(text: str, path: Path, line: int, col: str) -> datetime:
    """An ISO 8601 time with 'Z' or an offset in a CSV cell; errors name file, line, column."""
    return _aware(text, f"{path}: line {line}: column {col} = {text!r}", "Z or +07:00")


def key_time(text: str, path: Path, key: str) -> datetime:
    """An ISO 8601 time with an offset under a JSON key; errors name the file and the key."""
    return _aware(text, f"{path}: key {key} = {text!r}", "+07:00")


def _aware(text: str, where: str, offsets: str) -> datetime:
    try:
        d = datetime.fromisoformat(text)
    except (ValueError, TypeError):
        raise InputFileError(f"{where} is not an ISO 8601 time; {FIX}") from None
    if d.tzinfo is None:
        raise InputFileError(f"{where} has no offset (write {offsets}); {FIX}")
    if not in_range(d):
        raise InputFileError(f"{where} is outside the years {YEARS[0]}..{YEARS[1]}; {FIX}")
    return d


def _raw_columns(path: Path, wanted: tuple[str, ...], optional: tuple[str, ...],
                 ) -> tuple[dict[str, list[str]], list[int]]:
    """The cells of the `wanted` columns (and of the `optional` ones present), and each row's
    line."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise InputFileError(f"{path}: empty file, expected a header line; {FIX}")
            index = {name.strip(): i for i, name in enumerate(header)}
            for name in wanted:
                if name not in index:
                    raise InputFileError(f"{path}: line 1: column {name} is missing from the "
                                         f"header; {FIX}")
            raw: dict[str, list[str]] = {n: [] for n in wanted + tuple(
                n for n in optional if n in index)}
            lines: list[int] = []  # the file line of each row (a quoted newline spans lines)
            width = len(header)
            for row in reader:
                if not row:
                    continue
                if len(row) != width:
                    raise InputFileError(f"{path}: line {reader.line_num}: {len(row)} fields, "
                                         f"the header has {width}; {FIX}")
                lines.append(reader.line_num)
                for n in raw:
                    raw[n].append(row[index[n]])
    except UnicodeDecodeError:
        raise InputFileError(f"{path}: not UTF-8 text; {FIX}") from None
    except csv.Error as e:
        raise InputFileError(f"{path}: not valid CSV ({e}); {FIX}") from None
    return raw, lines


def read_csv(path: Path, *, numbers: tuple[str, ...] = (), times: tuple[str, ...] = (),
             texts: tuple[str, ...] = (), optional_numbers: tuple[str, ...] = (),
             optional_times: tuple[str, ...] = (), optional_texts: tuple[str, ...] = (),
             empty_ok: tuple[str, ...] = ()) -> Series:
    """Read the named columns of a CSV file (others are ignored).

    `numbers` become float arrays, `times` lists of aware datetimes, `texts` lists
    of str. A missing column or an unparsable cell names the file, line and
    column. Columns in `empty_ok` may be empty (NaN or None). The `optional_*` columns
    are read when the header has them; `require` asks for one a caller cannot do without.
    """
    path = Path(path)
    raw, lines = _raw_columns(path, numbers + times + texts,
                              optional_numbers + optional_times + optional_texts)
    cols: dict[str, Any] = {}
    for n in numbers + tuple(n for n in optional_numbers if n in raw):
        cols[n] = _floats(raw[n], path, n, empty_ok=n in empty_ok, lines=lines)
    for n in times + tuple(n for n in optional_times if n in raw):
        cols[n] = [None if (v == "" and n in empty_ok) else parse_time(v, path, line, n)
                   for line, v in zip(lines, raw[n], strict=True)]
    for n in texts + tuple(n for n in optional_texts if n in raw):
        cols[n] = raw[n]
    return Series(path=path, cols=cols, lines=lines)


def require(series: Series, *names: str) -> None:
    """Refuse a Series read without one of the optional columns `names`, naming the file.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "x.csv"; _ = p.write_text("n\\n1\\n")
    >>> require(read_csv(p, numbers=("n",), optional_texts=("step",)), "step")
    Traceback (most recent call last):
    ...
    floor.errors.InputFileError: ...x.csv: line 1: column step is missing from the header; ...
    """
    for name in names:
        if name not in series.cols:
            raise InputFileError(f"{series.path}: line 1: column {name} is missing from the "
                                 f"header; {FIX}")


def _floats(values: list[str], path: Path, name: str, *, empty_ok: bool,
            lines: list[int]) -> np.ndarray:
    try:
        arr = np.array([float(v) if v != "" else math.nan for v in values], dtype=float)
    except ValueError:
        arr = None
    if arr is not None and (empty_ok or not np.isnan(arr).any()):
        return arr
    for i, v in enumerate(values):  # find the bad cell to name it
        try:
            x = float(v)
        except ValueError:
            x = math.nan
        if math.isnan(x) and not (empty_ok and v == ""):
            raise InputFileError(f"{path}: line {lines[i]}: column {name} = {v!r} is not a "
                                 f"number; {FIX}")
    return np.array([float(v) if v != "" else math.nan for v in values], dtype=float)
