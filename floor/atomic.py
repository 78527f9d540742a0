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
from collections.abc import Iterable, Iterator, Sequence
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


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write `obj` as indented JSON atomically."""
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


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
