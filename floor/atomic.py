"""Write files whole or not at all: write to a temporary file beside the target, then rename.

A reader (a report, another machine) never sees a half-written file, and a crash
leaves the old file or none::

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_json(d / "x.json", {"ok": True})
    >>> (d / "x.json").read_text()
    '{\\n  "ok": true\\n}\\n'

This module imports nothing of the project (but `floor.errors`, lazily), so every room may import
it.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success fsync and rename it over `path`.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_open(p) as f:
    ...     _ = f.write("hello")
    >>> p.read_text()
    'hello'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp makes 0600 files; give the file the mode an ordinary open() would.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` to `path` atomically (UTF-8)."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)  # no indent: the C encoder


def dumps(obj: Any) -> str:
    """`obj` as JSON laid out for reading: objects indented, a list of records one per line.

    The same JSON as `json.dumps(obj, default=str)`, laid out like `indent=2` except that a
    list of objects or lists puts each item compact on its own line (a ledger of 10,000
    records is 10,000 lines, not 150,000) and a list of plain values stays on one line.
    Each item goes through the C encoder: the pure-Python one that `indent` needs took
    three times as long on a rehearsal's 2.5 MB of server evidence.

        >>> print(dumps({"ok": True, "n": [1, 2], "rows": [{"a": 1}, {"a": 2}], "e": {}}))
        {
          "ok": true,
          "n": [1, 2],
          "rows": [
            {"a": 1},
            {"a": 2}
          ],
          "e": {}
        }
    """
    return _layout(obj, "", _item_encoder())


def _item_encoder() -> Callable[[Any], str]:
    """One value to compact JSON (json.dumps's separators, `default=str`).

    The C encoder made once per file: `JSONEncoder.encode` builds it again for every call,
    which took 40 % of the time on a file of small records. Circular data is still refused
    (the markers of this file). Without the C accelerator: the plain encoder.
    """
    make = json.encoder.c_make_encoder
    if make is None:  # pragma: no cover - CPython always has _json
        return _ENCODER.encode
    c = make({}, str, json.encoder.encode_basestring, None, ": ", ", ", False, False, True)
    return lambda x: "".join(c(x, 0))


def _layout(v: Any, pad: str, enc: Callable[[Any], str]) -> str:
    inner = pad + "  "
    if isinstance(v, dict) and v:
        # each key as json.dumps writes it (str as is; int, float, bool, None converted)
        items = (f"{inner}{enc({k: 0})[1:-4]}: {_layout(x, inner, enc)}" for k, x in v.items())
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(v, list | tuple) and v and any(isinstance(x, dict | list | tuple) for x in v):
        return "[\n" + ",\n".join(inner + enc(x) for x in v) + f"\n{pad}]"
    return enc(v)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write `obj` as JSON (laid out by `dumps`) atomically."""
    write_text(path, dumps(obj) + "\n")


def write_csv(
    path: str | os.PathLike[str], header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Write a CSV file with `header` and `rows` atomically.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> write_csv(p, ["a", "b"], [[1, 2]])
    >>> p.read_text().splitlines()
    ['a,b', '1,2']
    """
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def check_writable(path: Path | str, flag: str = "--out") -> Path:
    """Refuse (FieldError, exit 2) a directory that cannot be made or written, before any work;
    creates nothing.

    The nearest existing ancestor must be a writable directory (not a file, not on a
    read-only file system, not /proc or /sys)::

        >>> check_writable("/proc/x")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        floor.errors.FieldError: --out = '/proc/x': cannot write there (a kernel file system); ...
    """
    from floor.errors import FieldError

    p = Path(path)
    try:
        resolved = p.resolve()
    except (OSError, RuntimeError, ValueError):
        raise FieldError(
            flag, str(path), "not a usable path; give a directory such as runs/x"
        ) from None
    if resolved.parts[1:2] in (("proc",), ("sys",), ("dev",)):
        raise FieldError(
            flag,
            str(path),
            "cannot write there (a kernel file system); give a directory on a writable disk",
        )
    probe = resolved
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise FieldError(flag, str(path), f"{probe} is a file, not a directory; give another path")
    if not os.access(probe, os.W_OK | os.X_OK):
        why = "read-only file system" if _read_only(probe) else "no permission to write"
        raise FieldError(
            flag, str(path), f"cannot write in {probe} ({why}); give a writable directory"
        )
    return p


def _read_only(p: Path) -> bool:
    try:
        return bool(os.statvfs(p).f_flag & os.ST_RDONLY)
    except OSError:
        return False
