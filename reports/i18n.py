"""Translations and number/date formatting for the report (English and Bahasa Indonesia).

Every visible string of the report and its charts comes from
`reports/translations/LANG.json` (both files hold the same keys)::

    >>> tr = Translator("id")
    >>> tr.num(1234567.891, 1)
    '1.234.567,9'
    >>> Translator("en").num(1234567.891, 1)
    '1,234,567.9'
    >>> Translator("en").t("hours", n="3.5")
    '3.5 hours'
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from floor.errors import FieldError

LANGUAGES = ("en", "id")
TRANSLATIONS_DIR = Path(__file__).with_name("translations")


@cache
def load_table(lang: str) -> dict[str, str]:
    """The translation table of `lang` (a dict key -> text with `{name}` fields).

    >>> load_table("en")["verdict_title"]
    'Verdict'
    """
    if lang not in LANGUAGES:
        raise FieldError("--lang", lang, f"choose one of: {', '.join(LANGUAGES)}")
    data = json.loads((TRANSLATIONS_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


class Translator:
    """Looks up texts and formats numbers and calendar times for one language."""

    def __init__(self, lang: str = "en") -> None:
        self.lang = lang
        self.table = load_table(lang)
        self._months = self.table["months"].split()

    def t(self, key: str, **fields: Any) -> str:
        """The text for `key`, with `{name}` fields filled in.

        >>> Translator("id").t("verdict_title")
        'Kesimpulan'
        """
        text = self.table[key]
        return text.format(**fields) if fields else text

    __call__ = t

    def label(self, kind: str, key: str) -> str:
        """The name in words of a `kind` (step, gate, mode, ...) with id `key` (`KIND_KEY` in the
        table), else the id as it is.

        >>> Translator("id").label("step", "wait_quota"), Translator("en").label("gate", "other")
        ('tunggu kuota', 'other')
        """
        return self.table.get(f"{kind}_{key}", key)

    def knows(self, kind: str, key: str) -> bool:
        """Whether the table names `key` of `kind` (`label` would not fall back to the id)."""
        return f"{kind}_{key}" in self.table

    def exact(self, x: float | int) -> str:
        """A parameter as it can be given again on the command line: every digit kept, a dot as
        the decimal mark in every language (a rounded scale cannot be reproduced).

        >>> en = Translator("en")
        >>> Translator("id").exact(0.034848), en.exact(60.0), en.exact(True)
        ('0.034848', '60', 'true')
        """
        if isinstance(x, bool):
            return "true" if x else "false"
        if isinstance(x, float) and x.is_integer():
            return str(int(x))
        return repr(x)

    def num(self, x: float | int | None, digits: int = 0) -> str:
        """`x` with thousands separators and `digits` decimals ('–' for None or NaN).

        >>> Translator("id").num(0.5, 2), Translator("en").num(None)
        ('0,50', '–')
        """
        if x is None or (isinstance(x, float) and not math.isfinite(x)):
            return "–"
        text = f"{x:,.{digits}f}"
        if text in ("-0", "-0.0", "-0.00"):
            text = text[1:]
        if self.lang == "id":
            text = text.translate(str.maketrans({",": ".", ".": ","}))
        return text

    def pct(self, share: float | None, digits: int = 0) -> str:
        """A share (0..1) as a percentage.

        >>> Translator("en").pct(0.125, 1), Translator("id").pct(0.125, 1)
        ('12.5%', '12,5%')
        """
        return "–" if share is None else self.num(share * 100, digits) + "%"

    def smart(self, x: float | None) -> str:
        """A number with as many decimals as its size deserves (3 significant digits below 100).

        >>> en = Translator("en")
        >>> en.smart(0.01234), en.smart(12.34), en.smart(12345.6)
        ('0.0123', '12.3', '12,346')
        >>> Translator("en").smart(12.0), Translator("id").smart(4.5)
        ('12', '4,5')
        """
        if x is None or not math.isfinite(x):
            return "–"
        ax = abs(x)
        if ax >= 100 or ax == 0:
            return self.num(x, 0)
        digits = min(4, max(0, 2 - int(math.floor(math.log10(ax)))))
        x = round(x, digits)
        while digits and round(x, digits - 1) == x:  # 12.0 -> 12, 4.50 -> 4.5
            digits -= 1
        return self.num(x, digits)

    def month(self, m: int) -> str:
        """The short month name (1..12)."""
        return self._months[m - 1]

    def when(self, d: datetime | None, *, date: bool = True, zone: bool = True) -> str:
        """A calendar time as '6 Sep 02:00 WIB' ('6 Sep 02.00 WIB' in Indonesian).

        >>> from zoneinfo import ZoneInfo
        >>> d = datetime(2024, 9, 6, 2, 0, tzinfo=ZoneInfo("Asia/Jakarta"))
        >>> Translator("en").when(d), Translator("id").when(d, zone=False)
        ('6 Sep 02:00 WIB', '6 Sep 02.00')
        """
        if d is None:
            return "–"
        sep = "." if self.lang == "id" else ":"
        text = f"{d.hour:02d}{sep}{d.minute:02d}"
        if date:
            text = f"{d.day} {self.month(d.month)} {text}"
        if zone and d.tzinfo is not None:
            text += f" {d.tzname()}"
        return text

    def day(self, d: datetime) -> str:
        """A calendar date as '6 Sep 2024'."""
        return f"{d.day} {self.month(d.month)} {d.year}"

    def hours(self, h: float | None) -> str:
        """A duration in hours, in words: '3.5 hours', or minutes below one hour.

        >>> Translator("en").hours(0.5), Translator("id").hours(26)
        ('30 minutes', '26 jam')
        """
        if h is None:
            return "–"
        if abs(h) < 1:
            return self.t("minutes", n=self.num(abs(h) * 60, 0))
        return self.t("hours", n=self.smart(abs(h)))

    def seconds(self, s: float | None) -> str:
        """A wait in seconds, in the unit that reads best (s, min or h)."""
        if s is None or not math.isfinite(s):
            return "–"
        if s < 120:
            return self.t("seconds", n=self.smart(s))
        if s < 2 * 3600:
            return self.t("minutes", n=self.num(s / 60, 0))
        return self.hours(s / 3600)
