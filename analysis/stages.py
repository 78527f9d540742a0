"""The reopening stages as data: who each stage serves, which gates it sets, when it may start.

A stage is a row of `STAGES`; everything downstream (the planner, `analysis/follow.py`,
the report, the demo) finds a stage by its `id`, never by its position, so the table
can be reordered or extended without silently breaking a check.

Start conditions (`start`):

- ``"reopen"``: at the decision time (the reopening);
- ``"fits:ID"``: when the flow of those still coming back from stage ID fits the spare
  admission: ``orbit × return rate + room ÷ max wait ≤ usable issuer capacity − served``,
  for the gates of stage ID (its population's orbit and waiting room), at the latest
  `max_hold_h` hours after stage ID started, so no group is locked out.

Populations (`serves`): ``quota`` (applicants holding quota: bought before, or paid and
confirmed), ``paid`` (paid but not yet confirmed: the payments queue), ``returning``
(an account, no quota yet), ``new`` (no account).

Gate settings (`gates`): ``"booked"`` is a stamping queue in which quota holders get a
slot and an estimated time and keep their place (their quota is kept: nobody who paid is
lost or turned away), admitted at the issuer's usable capacity; ``"closed"``;
``"open"``; ``"paced"`` admits at the planner's pacing share of capacity through a waiting
room of rate × max wait, the rest told to come back later.

    >>> [s.id for s in STAGES]
    ['finish-paid', 'reopen-ordering', 'reopen-registration']
    >>> stage_by_id("reopen-ordering").name["id"]
    'Buka kembali pembelian kuota'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from floor.errors import FieldError

__all__ = [
    "StageSpec",
    "STAGES",
    "BASELINE",
    "stage_by_id",
    "text",
    "validate_table",
    "GATE_SETTINGS",
]

GATE_SETTINGS = ("booked", "closed", "open", "paced")


@dataclass(frozen=True, kw_only=True)
class StageSpec:
    """One stage of the reopening (see the module docstring).

    >>> StageSpec(id="x", serves=("new",), gates={"registration": "open"}, start="reopen",
    ...           name={"en": "X", "id": "X"}, why={"en": "y", "id": "y"}).start
    'reopen'
    """

    id: str
    serves: tuple[str, ...]
    gates: dict[str, str]
    start: str
    name: dict[str, str]
    why: dict[str, str]
    max_hold_h: float = 12.0
    watch: tuple[str, ...] = field(default=())  # gates whose population the next stage waits for

    def __post_init__(self) -> None:
        for g, v in self.gates.items():
            if v not in GATE_SETTINGS:
                raise FieldError(
                    f"stage {self.id}.gates.{g}", v, f"choose from: {', '.join(GATE_SETTINGS)}"
                )
        if not (self.start == "reopen" or self.start.startswith("fits:")):
            raise FieldError(f"stage {self.id}.start", self.start, "use reopen or fits:STAGE_ID")
        for lang in ("en", "id"):
            if not self.name.get(lang) or not self.why.get(lang):
                raise FieldError(
                    f"stage {self.id}.name", self.name, f"give a name and reason in {lang!r}"
                )

    @property
    def after(self) -> str | None:
        """The id of the stage this one waits for (None: starts at the reopening)."""
        return self.start[5:] if self.start.startswith("fits:") else None


STAGES: tuple[StageSpec, ...] = (
    StageSpec(
        id="finish-paid",
        serves=("quota", "paid"),
        start="reopen",
        gates={"stamping": "booked", "ordering": "closed", "registration": "closed"},
        watch=("stamping",),
        name={
            "en": "finish stamping for those who paid",
            "id": "Selesaikan pembubuhan bagi yang sudah membayar",
        },
        why={
            "en": "quota holders and payments confirmed during the outage go first: each gets a "
            "stamping slot and an estimated time, admitted at the issuer's capacity, so no one "
            "who paid is lost",
            "id": "Pemegang kuota dan pembayaran yang dikonfirmasi selama gangguan didahulukan: "
            "masing-masing mendapat jadwal pembubuhan dan perkiraan waktu, diterima sesuai "
            "kapasitas penerbit, sehingga tidak ada yang sudah membayar yang hilang",
        },
    ),
    StageSpec(
        id="reopen-ordering",
        serves=("returning",),
        start="fits:finish-paid",
        gates={"ordering": "open"},
        watch=("ordering",),
        name={"en": "reopen quota purchase", "id": "Buka kembali pembelian kuota"},
        why={
            "en": "those who paid are no longer crowded out: their returns still to come fit the "
            "spare admission, so quota sales resume for applicants with an account",
            "id": "Yang sudah membayar tidak lagi terdesak: arus kembalinya mereka muat dalam "
            "sisa kapasitas penerimaan, sehingga penjualan kuota dibuka lagi bagi pelamar yang "
            "sudah punya akun",
        },
    ),
    StageSpec(
        id="reopen-registration",
        serves=("new",),
        start="fits:reopen-ordering",
        gates={"registration": "open"},
        watch=("registration",),
        name={"en": "reopen new registrations", "id": "Buka kembali pendaftaran akun baru"},
        why={
            "en": "buyers' returns still to come fit the spare admission; new accounts come "
            "last, since they need every step of the journey",
            "id": "Arus kembali pembeli kuota muat dalam sisa kapasitas penerimaan; akun baru "
            "terakhir, karena mereka memerlukan semua langkah perjalanan",
        },
    ),
)


# Doing nothing: every gate open from the reopening at full capacity (the baseline of every plan).
BASELINE = StageSpec(
    id="open-all",
    serves=("quota", "paid", "returning", "new"),
    start="reopen",
    gates={"stamping": "open", "ordering": "open", "registration": "open"},
    watch=("stamping", "ordering", "registration"),
    name={"en": "open every gate (do nothing)", "id": "Buka semua gerbang (tanpa pengaturan)"},
    why={
        "en": "the baseline: every gate open from the reopening at the issuer's full capacity",
        "id": "Pembanding: semua gerbang dibuka sejak pemulihan dengan kapasitas penuh penerbit",
    },
)


def validate_table(table: tuple[StageSpec, ...]) -> None:
    """Ids unique, every `fits:ID` names an earlier stage, every gate set once at the start.

    >>> validate_table(STAGES)
    >>> validate_table(tuple(reversed(STAGES)))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    floor.errors.FieldError: stage reopen-registration.start = 'fits:reopen-ordering': it must ...
    """
    seen: set[str] = set()
    for s in table:
        if s.id in seen:
            raise FieldError("stage.id", s.id, "give each stage a unique id")
        if s.after is not None and s.after not in seen:
            raise FieldError(
                f"stage {s.id}.start",
                s.start,
                "it must name an earlier stage; order the table so each stage follows the one it "
                "waits for",
            )
        seen.add(s.id)


def stage_by_id(stage_id: str, table: tuple[StageSpec, ...] = STAGES) -> StageSpec:
    """The stage with this id (KeyError names the known ids).

    >>> stage_by_id("finish-paid").serves
    ('quota', 'paid')
    """
    for s in (*table, BASELINE):
        if s.id == stage_id:
            return s
    raise KeyError(f"no stage {stage_id!r}; known: {', '.join(s.id for s in table)}")


def text(stage_id: str, what: str, lang: str = "en") -> str:
    """A stage's display name or reason in `lang` (en or id), from the table.

    >>> text("reopen-registration", "name", "id")
    'Buka kembali pendaftaran akun baru'
    """
    d = getattr(stage_by_id(stage_id), what)
    return d.get(lang) or d["en"]
