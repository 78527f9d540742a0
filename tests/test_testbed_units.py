"""Fast in-process tests of the testbed's parts:
config, NIK, gates, service times, PDF, passwords."""

from __future__ import annotations

import random
import sqlite3
import statistics
from pathlib import Path

import pytest

from surgecast.cli import main
from testbed.capacity import draw_service_time
from testbed.config import ConfigError, ServiceTime, load_config
from testbed.gates import Gate
from testbed.nik import nik_problem
from testbed.passwords import hash_password, verify_password
from testbed.pdf import pdf_problem, stamped_pdf
from testbed.storage import open_db


def test_default_config_matches_the_contract() -> None:
    cfg = load_config()
    issuer = cfg.issuer
    assert (issuer.workers, issuer.service.distribution, issuer.service.mean) == (
        4,
        "lognormal",
        0.25,
    )
    assert cfg.issuer.service.sigma == 0.2  # the small spread a 16 s probe hold resolves to +-5 %
    assert (cfg.issuer.queue_bound, cfg.issuer.overload) == (10000, "unbounded")
    assert (cfg.payments.workers, cfg.payments.service.distribution, cfg.payments.service.mean) == (
        8,
        "constant",
        0.2,
    )
    assert cfg.pricing.duty + cfg.pricing.service_fee == 12500
    assert cfg.limits.max_upload_bytes == 2 * 1024 * 1024
    assert set(cfg.gates) == {"registration", "ordering", "stamping"}


@pytest.mark.parametrize(
    "override, field",
    [
        ("issuer.workers=0", "issuer.workers"),
        ("issuer.service.distribution=weibull", "issuer.service.distribution"),
        ("payments.overload=drop", "payments.overload"),
        ("payments.duplicate_ratio=1.5", "payments.duplicate_ratio"),
        ("gates.stamping.mode=rate", "gates.stamping.rate_per_s"),
        ("issuer.colour=1", "issuer.colour"),
        ("security.scrypt_n=1000", "security.scrypt_n"),
        ("seed=true", "seed"),
    ],
)
def test_config_errors_name_the_field(override: str, field: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert e.value.field == field


def test_config_file_overrides_defaults(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text(
        '[issuer]\nworkers = 7\n[issuer.service]\ndistribution = "lognormal"\nmean = 0.1\n'
    )
    cfg = load_config(p, ["issuer.queue_bound=5"])
    assert (cfg.issuer.workers, cfg.issuer.service.distribution, cfg.issuer.queue_bound) == (
        7,
        "lognormal",
        5,
    )
    assert cfg.payments.workers == 8
    p.write_text("[issuer\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)


@pytest.mark.parametrize(
    "nik, ok",
    [
        ("3171010508990001", True),  # 5 Aug 1999
        ("3171014508990001", True),  # woman, day 5 + 40
        ("3171012902000001", True),  # 29 Feb 2000
        ("3171016902000001", True),  # woman, 29 Feb 2000
        ("3171013102990001", False),  # 31 Feb
        ("3171013208990001", False),  # day 32
        ("3171017208990001", False),  # woman's day 72
        ("3171010013990001", False),  # month 13
        ("317101050899000", False),  # 15 digits
        ("31710105089900011", False),  # 17 digits
        ("3171O10508990001", False),  # a letter O
        ("٣١٧١٠١٠٥٠٨٩٩٠٠٠١", False),  # non-ASCII digits
    ],
)
def test_nik(nik: str, ok: bool) -> None:
    assert (nik_problem(nik) is None) == ok


def test_token_bucket_rate_and_burst() -> None:
    g = Gate("stamping", mode="rate", rate_per_s=2.0, burst=3)
    t = g.stamp
    assert [g.admit(now=t) is None for _ in range(4)] == [True, True, True, False]
    refusal = g.admit(now=t)
    assert refusal is not None and refusal.status == 429 and refusal.retry_after >= 1
    assert g.admit(now=t + 0.5) is None  # one token back after 0.5 s at 2/s
    assert g.admit(now=t + 0.5) is not None
    assert [g.admit(now=t + 100) is None for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]  # capped at burst
    g.set(mode="closed")
    assert g.admit().status == 503


@pytest.mark.parametrize("dist", ["constant", "exponential", "lognormal"])
def test_service_time_mean(dist: str) -> None:
    st = ServiceTime(distribution=dist, mean=0.25, sigma=0.8)
    rng = random.Random(7)
    draws = [draw_service_time(st, rng) for _ in range(40000)]
    assert statistics.fmean(draws) == pytest.approx(0.25, rel=0.03)
    assert min(draws) >= 0


def test_stamped_pdf_carries_serial() -> None:
    pdf = stamped_pdf(b"%PDF-1.7 my letter", serial="SN0123456789ABCDEFGHJK", stamp_id="stp_x")
    assert pdf_problem(pdf) is None and b"SN0123456789ABCDEFGHJK" in pdf and b"my letter" in pdf
    xref = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert pdf[xref : xref + 4] == b"xref"


_GOOD = stamped_pdf(b"letter", serial="S", stamp_id="stp_1")


@pytest.mark.parametrize(
    "doc, says",
    [
        (b"%PDF-1.4\n" + b"x" * 2000, "startxref"),  # the old check passed this
        (b"hello %PDF-1.4\n%%EOF", "startxref"),
        (b"%PDF-x.y\n", "header"),
        (_GOOD[:-200], "startxref"),  # truncated
        (_GOOD + b"trailing junk" * 100, "startxref"),  # %%EOF not at the end
        (
            _GOOD.replace(b"startxref\n", b"startxref\n9"),
            "cross-reference",
        ),  # offset points nowhere
        (_GOOD.replace(b"/Root 1 0 R", b"/Rxxx 1 0 R"), "catalog"),
        (_GOOD.replace(b"/Pages 2 0 R", b"/Pagez 2 0 R"), "catalog"),
        (
            _GOOD.replace(b"/Kids [3 0 R] /Count 1", b"/Kids []      /Count 0"),
            "no pages",
        ),  # offsets kept
        (
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
            "startxref",
        ),
    ],
)
def test_pdf_structure_check_refuses_what_is_not_a_pdf(doc: bytes, says: str) -> None:
    problem = pdf_problem(doc)
    assert problem is not None and (
        says in problem or says == "header" and "%PDF-x.y" in problem
    ), problem


def test_pdf_structure_check_accepts_real_pdfs() -> None:
    assert pdf_problem(_GOOD) is None
    assert (
        pdf_problem(b"garbage before\n" + _GOOD) is None
    )  # tolerated within 1 KiB, offsets still fine
    assert pdf_problem(_GOOD + b"\n\n") is None


def test_passwords_are_salted_and_verified() -> None:
    cfg = load_config(None, ["security.scrypt_n=1024"]).security
    a, b = hash_password("rahasia-123", cfg), hash_password("rahasia-123", cfg)
    assert a != b and a.startswith("scrypt$1024$")
    assert verify_password("rahasia-123", a) and not verify_password("rahasia-124", a)
    assert not verify_password("x", "garbage")


def test_schema_is_wal() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        db = open_db(str(Path(d) / "t.sqlite"))
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.execute("INSERT INTO accounts VALUES ('a','n','x','A@x.id','p','h','t')")
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(
                "INSERT INTO accounts VALUES ('b','n','x','a@X.id','p','h','t')"
            )  # email is case-insensitive


def test_cli_refuses_bad_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["testbed", "--set", "issuer.workers=0"]) == 2
    assert "issuer.workers" in capsys.readouterr().err
    assert main(["testbed", "--issuer-service", "exponential"]) == 2
    assert main(["testbed", "--db", "/nonexistent/dir/x.sqlite"]) == 2
    assert main(["testbed", "--port", "70000"]) == 2


def test_testbed_server_reports_a_failed_start() -> None:
    from floor.errors import TargetError
    from testbed.process import TestbedServer

    tb = TestbedServer(db="/nonexistent/dir/x.sqlite", start_timeout_s=10)
    with pytest.raises(TargetError, match="--db"):
        tb.start()
