"""Validation of the Indonesian NIK (Nomor Induk Kependudukan).

A NIK is 16 digits: province (2), regency (2), district (2), birth date DDMMYY
(day + 40 for women), serial (4). The date part must be a real date in 19YY or 20YY::

    >>> nik_problem("3171014508990001")   # 5 Aug 1999, a woman
    >>> nik_problem("3171013102990001")
    'the date part 310299 is not a real date (DDMMYY, day + 40 for women)'
"""

from __future__ import annotations

import datetime as dt


def _real_date(day: int, month: int, yy: int) -> bool:
    for century in (1900, 2000):
        try:
            dt.date(century + yy, month, day)
            return True
        except ValueError:
            continue
    return False


def nik_problem(nik: object) -> str | None:
    """Return why ``nik`` is not a valid NIK, or None if it is.

    >>> nik_problem("12345")
    'give exactly 16 digits'
    """
    if not isinstance(nik, str) or len(nik) != 16 or not nik.isascii() or not nik.isdigit():
        return "give exactly 16 digits"
    day, month, yy = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    if day > 40:
        day -= 40
    if not _real_date(day, month, yy):
        return f"the date part {nik[6:12]} is not a real date (DDMMYY, day + 40 for women)"
    return None
