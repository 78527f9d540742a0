"""One typed TOML reader: read a file whole, then read its fields by dotted name with errors that
name them.

Profiles (scenarios/profile.py) and the testbed configuration (testbed/config.py) both read through
it::

    >>> r = TableReader({"issuer": {"workers": 4, "overload": "shed"}})
    >>> w = r.sub("issuer")
    >>> w.integer("workers", 1, 1), w.choice("overload", "unbounded", ("unbounded", "shed"))
    (4, 'shed')
    >>> w.done(); r.number("issuer.workers", minimum=1)
    4.0
    >>> TableReader({"issuer": {"workers": 0}}).sub("issuer").integer("workers", 1, 1)
    Traceback (most recent call last):
    ...
    floor.errors.FieldError: issuer.workers = 0: give an integer >= 1

``error`` is the FieldError subclass raised (ProfileError, ConfigError), so each room keeps its
name.
"""

from __future__ import annotations

import math
import tomllib
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from floor.errors import FieldError

__all__ = ["MISSING", "TableReader", "parse_toml", "read_toml"]

MISSING: Any = object()
"""The default of a field that must be given."""


def read_toml(
    path: str | Path, *, field: str, error: type[FieldError] = FieldError, fix: str = ""
) -> dict[str, Any]:
    """The parsed TOML file at ``path``; every failure is one ``error`` naming ``field`` and the
    fix (``fix``, when given, is the advice after each failure: a run directory's copy is not
    the user's to edit).

    >>> read_toml("/nonexistent.toml", field="--config")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    floor.errors.FieldError: --config = '/nonexistent.toml': cannot read it (No such file or ...
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise error(field, str(path), f"cannot read it ({e.strerror or e})"
                    + (f"; {fix}" if fix else "")) from None
    except ValueError:  # a NUL byte in the path: no file can have that name
        raise error(field, str(path), "not a file name (it holds a NUL byte); give the path "
                    "of a TOML file") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise error(field, str(path), f"not UTF-8 text; {fix or 'save it as UTF-8 TOML'}") from None
    return parse_toml(text, field=field, value=str(path), error=error, fix=fix)


def parse_toml(
    text: str, *, field: str, value: object, error: type[FieldError] = FieldError, fix: str = ""
) -> dict[str, Any]:
    """Parse TOML text; a syntax error or absurd nesting is one ``error`` naming ``field`` (and
    ``fix`` as the advice, when given).

    >>> parse_toml("a = 1", field="f", value="x")
    {'a': 1}
    >>> parse_toml("a = ", field="--config", value="c.toml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    floor.errors.FieldError: --config = 'c.toml': not valid TOML (...); fix the syntax at that line
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise error(field, value, f"not valid TOML ({e}); "
                    f"{fix or 'fix the syntax at that line'}") from None
    except RecursionError:
        raise error(field, value, f"nested too deeply to read; {fix or 'give flat tables'}"
                    ) from None


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


class TableReader:
    """Typed fields of a TOML table by dotted name (relative to ``prefix``), errors naming each
    field.

    ``done()`` refuses the keys of this table that no getter asked for (a typo in a key).
    """

    def __init__(
        self,
        data: Any,
        prefix: str = "",
        *,
        error: type[FieldError] = FieldError,
        missing: str = "missing; add it",
        unknown: str = "unknown key",
        zone: str = "the zone",
    ) -> None:
        if not isinstance(data, dict):
            raise error(prefix, data, "give a table")
        self.data: dict[str, Any] = data
        self.prefix = prefix
        self.error = error
        self.missing = missing
        self.unknown = unknown
        self.zone = zone
        self._asked: set[str] = set()

    def name(self, key: str) -> str:
        """The full dotted name of ``key``."""
        return f"{self.prefix}.{key}" if self.prefix else key

    def fail(self, key: str, value: Any, fix: str) -> FieldError:
        """The error naming field ``key`` (raise it)."""
        return self.error(self.name(key), value, fix)

    def get(self, key: str, default: Any = MISSING) -> Any:
        """The raw value at dotted ``key``; ``default`` if absent (an error if no default)."""
        self._asked.add(key.split(".", 1)[0])
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is MISSING:
                    raise self.fail(key, None, self.missing)
                return default
            node = node[part]
        return node

    def table(self, key: str, default: Any = MISSING) -> dict[str, Any]:
        """A sub-table as a dict."""
        v = self.get(key, default)
        if not isinstance(v, dict):
            raise self.fail(key, v, f"must be a table: write [{self.name(key)}]")
        return v

    def sub(self, key: str) -> TableReader:
        """A reader of the sub-table ``key`` (empty if absent), with the same error policy."""
        return TableReader(
            self.table(key, {}),
            self.name(key),
            error=self.error,
            missing=self.missing,
            unknown=self.unknown,
            zone=self.zone,
        )

    def array_of_tables(self, key: str) -> list[dict[str, Any]]:
        """An array of tables (empty if absent)."""
        v = self.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
            raise self.fail(
                key, v, f"must be an array of tables: write [[{self.name(key)}]] blocks"
            )
        return v

    def string(self, key: str, default: Any = MISSING) -> str:
        """A non-empty string."""
        v = self.get(key, default)
        if not isinstance(v, str) or not v.strip():
            raise self.fail(key, v, "give a non-empty text in quotes")
        return v

    def number(
        self,
        key: str,
        *,
        value: Any = MISSING,
        default: Any = MISSING,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive: bool = False,
        integer: bool = False,
    ) -> float:
        """A finite number (``value`` if given, else the field), within the bounds."""
        v = self.get(key, default) if value is MISSING else value
        if v is None:
            raise self.fail(key, None, self.missing)
        if not _is_num(v) or (integer and not float(v).is_integer()):
            raise self.fail(key, v, f"give {'a whole number' if integer else 'a number'}")
        if minimum is not None and (v < minimum or (exclusive and v == minimum)):
            raise self.fail(key, v, f"must be {'>' if exclusive else '>='} {minimum:g}")
        if maximum is not None and v > maximum:
            raise self.fail(key, v, f"must be <= {maximum:g}")
        return float(v)

    def integer(self, key: str, default: int, lo: int = 0) -> int:
        """An integer >= ``lo`` (a float such as 4.0 is refused)."""
        v = self.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise self.fail(key, v, f"give an integer >= {lo}")
        return v

    def bounded(self, key: str, default: float, lo: float = 0.0, hi: float = math.inf) -> float:
        """A number in [lo, hi]."""
        v = self.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
            raise self.fail(key, v, f"give a number in [{lo}, {hi}]")
        return float(v)

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        """One of ``choices``."""
        v = self.get(key, default)
        if v not in choices:
            raise self.fail(key, v, f"choose one of {', '.join(choices)}")
        return v

    def boolean(self, key: str, default: bool) -> bool:
        """true or false."""
        v = self.get(key, default)
        if not isinstance(v, bool):
            raise self.fail(key, v, "give true or false")
        return v

    def when(self, key: str, tz: tzinfo, *, value: Any = MISSING, optional: bool = False) -> Any:
        """A date-time (TOML or ISO text), in ``tz`` unless it carries an offset; None if optional
        and absent."""
        if value is MISSING:
            value = self.get(key, None if optional else MISSING)
        if value is None and optional:
            return None
        fix = f"write a date-time like 2024-09-06T23:59:00 (local to {self.zone})"
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise self.fail(key, value, fix) from None
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        if not isinstance(value, datetime):
            raise self.fail(key, value, fix)
        return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)

    def done(self) -> None:
        """Refuse the first key of this table no getter asked for."""
        for key in self.data:
            if key not in self._asked:
                raise self.fail(key, self.data[key], self.unknown)
