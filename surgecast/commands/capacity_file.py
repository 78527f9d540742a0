"""Reading `--capacity capacity.json` (a probe run's file) for `plan` and `forecast`.

    >>> read_capacity_json("/nonexistent/capacity.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    floor.errors.InputFileError: --capacity /nonexistent/capacity.json: no such file; give the ...
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from floor.errors import InputFileError

_FIX = "give the capacity.json of a probe run"


def read_capacity_json(path: str) -> Any:
    """The parsed JSON of `path`, or one InputFileError naming `--capacity`, the file and the
    fix."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"--capacity {path}: no such file; {_FIX}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputFileError(f"--capacity {path}: not UTF-8 text; {_FIX}") from None
    except (json.JSONDecodeError, RecursionError) as e:
        raise InputFileError(f"--capacity {path}: not valid JSON ({e}); {_FIX}") from None
