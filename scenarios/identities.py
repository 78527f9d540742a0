"""Applicant identities: Faker `id_ID` names plus a NIK provider of ours.

A NIK (Nomor Induk Kependudukan) is 16 digits: a 6-digit region code
(province, regency, district), the birth date as DDMMYY with 40 added to the day
for women, and a 4-digit serial. The ones made here always have a real date, so
the testbed accepts them::

    >>> import random
    >>> ident = make_identity(random.Random(1), applicant_id="a-1", run_tag="t0")
    >>> len(ident.nik), ident.nik.isdigit(), ident.email.endswith(".test")
    (16, True, True)
"""

from __future__ import annotations

import datetime as dt
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass

from faker import Faker
from faker.providers import BaseProvider

# Real district codes (kode wilayah) of a few large cities, enough to look right.
REGION_CODES = (
    "317101", "317102", "317301", "317401", "317501",   # DKI Jakarta
    "327301", "327302", "320101", "321601",             # Jawa Barat
    "357801", "357802", "350701",                       # Jawa Timur
    "337401", "337402",                                 # Jawa Tengah
    "127101", "127102",                                 # Sumatera Utara (Medan)
    "737101", "510101", "647101", "340101",
)


def nik_for(region: str, birth: dt.date, female: bool, serial: int) -> str:
    """Compose a NIK from its parts.

    >>> nik_for("317101", dt.date(1999, 8, 5), True, 1)
    '3171014508990001'
    """
    day = birth.day + (40 if female else 0)
    return f"{region}{day:02d}{birth.month:02d}{birth.year % 100:02d}{serial:04d}"


class NikProvider(BaseProvider):
    """Faker provider: `fake.nik(female=None)` returns a valid 16-digit NIK.

    >>> f = Faker("id_ID"); f.add_provider(NikProvider); f.seed_instance(3)
    >>> len(f.nik())
    16
    """

    def nik(self, female: bool | None = None, min_age: int = 18, max_age: int = 35) -> str:
        """A NIK for someone aged `min_age`..`max_age` (CASN applicants are 18 to 35)."""
        if female is None:
            female = self.generator.random.random() < 0.5
        today = dt.date(2024, 9, 1)
        days = self.generator.random.randint(min_age * 365, max_age * 365)
        birth = today - dt.timedelta(days=days)
        region = self.generator.random.choice(REGION_CODES)
        return nik_for(region, birth, female, self.generator.random.randint(1, 9999))


@dataclass(frozen=True, kw_only=True)
class Identity:
    """What an applicant types into the registration form."""

    nik: str
    name: str
    email: str
    phone: str
    password: str


_FAKERS: dict[str, Faker] = {}


def _faker() -> Faker:
    f = _FAKERS.get("id_ID")
    if f is None:
        f = Faker("id_ID")
        f.add_provider(NikProvider)
        _FAKERS["id_ID"] = f
    return f


def _slug(name: str) -> str:
    s = re.sub(r"[^a-z]+", ".", name.lower()).strip(".")
    return s[:30] or "pelamar"


def faker_part(seed: int, female: bool) -> tuple[str, str]:
    """(name, NIK) of an applicant from Faker id_ID seeded with `seed` (what `make_identity` draws
    first).

    >>> faker_part(7, True) == faker_part(7, True)
    True
    """
    f = _faker()
    f.seed_instance(seed)
    name = f.name_female() if female else f.name_male()
    return name, f.nik(female=female)


_DIGITS = string.digits
_PASSWORD_CHARS = string.ascii_letters + string.digits


def make_identity(rng: random.Random, *, applicant_id: str, run_tag: str,
                  ahead: dict[tuple[int, bool], tuple[str, str]] | None = None) -> Identity:
    """A reproducible identity for one applicant, drawn from `rng`.

    The email is unique per run: it carries the applicant id and `run_tag`, so a
    second run against the same database never collides with the first (409).
    `ahead` may hold the Faker part already made (`faker_part`, keyed by its seed and
    sex, see `IdentitiesAhead`); the identity and what is left of `rng` are the same
    either way.

    >>> a = make_identity(random.Random(5), applicant_id="7", run_tag="x")
    >>> b = make_identity(random.Random(5), applicant_id="7", run_tag="x")
    >>> a == b
    True
    """
    seed = rng.getrandbits(32)
    female = rng.random() < 0.5
    made = ahead.pop((seed, female), None) if ahead is not None else None
    name, nik = made if made is not None else faker_part(seed, female)
    # rng.choice(s) is s[rng._randbelow(len(s))]; the same draws, without the per-call overhead.
    below = rng._randbelow
    phone = "08" + "".join([_DIGITS[below(10)] for _ in range(10)])
    password = "".join([_PASSWORD_CHARS[below(62)] for _ in range(14)])
    email = f"{_slug(name)}.{applicant_id}.{run_tag}@pelamar.test"
    return Identity(nik=nik, name=name, email=email, phone=phone, password=password)


class IdentitiesAhead:
    """The Faker part of future applicants' identities, made in batches before they are needed.

    Faker is the costly part of an identity; making it for a batch of applicants in
    one go (before the run starts, then while the run is quiet) is several times
    cheaper than one at a time between requests. `seeder(i)` returns a fresh
    `random.Random` seeded as applicant `i`'s plan will be (only its first two draws
    are read here). Identities are identical with or without it::

        >>> ahead = IdentitiesAhead(lambda i: random.Random(f"1:0:{i}"), total=5)
        >>> ahead.fill(5, limit=5)
        5
        >>> a = make_identity(random.Random("1:0:3"), applicant_id="3", run_tag="t",
        ...                   ahead=ahead.made)
        >>> (a == make_identity(random.Random("1:0:3"), applicant_id="3", run_tag="t"),
        ...  len(ahead.made))
        (True, 4)
    """

    def __init__(self, seeder: Callable[[int], random.Random], *, total: int) -> None:
        self.seeder = seeder
        self.total = total
        self.made: dict[tuple[int, bool], tuple[str, str]] = {}
        self.next = 0

    def fill(self, upto: int, limit: int) -> int:
        """Make the Faker part for applicants next..upto-1 (at most `limit` of them); return how
        many."""
        n = 0
        while self.next < min(upto, self.total) and n < limit:
            rng = self.seeder(self.next)
            seed = rng.getrandbits(32)
            female = rng.random() < 0.5
            self.made[(seed, female)] = faker_part(seed, female)
            self.next += 1
            n += 1
        return n
