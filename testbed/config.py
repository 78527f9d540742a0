"""The testbed's configuration: frozen keyword-only dataclasses and their TOML loader.

The defaults are the field defaults of the dataclasses below: ``TestbedConfig()`` is the default
configuration, and `config_from_dict` takes every value a table leaves out from it.
``testbed/default.toml`` writes each of them out with its documentation
(tests/test_testbed_defaults.py fails if the file and the dataclasses disagree); a user file
overrides any subset, and ``overrides`` (from ``--set KEY=VALUE`` flags) override the file::

    >>> cfg = load_config(None, ["issuer.workers=64"])
    >>> cfg.issuer.workers, cfg.payments.service.distribution
    (64, 'constant')

Every error names the field: ``ConfigError: issuer.workers = 0: give an integer >= 1``.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from floor.errors import FieldError
from floor.tomlfile import TableReader, read_toml
from floor.vocabulary import GATE_MODES, GATES
from testbed.latency_law import LatencyLaw, law_from_table

T = TypeVar("T")

DEFAULT_TOML = Path(__file__).with_name("default.toml")
DISTRIBUTIONS = ("constant", "exponential", "lognormal")
OVERLOAD_MODES = ("unbounded", "shed")


class ConfigError(FieldError):
    """A testbed configuration field (TOML key or ``--set``) is missing or wrong."""


@dataclass(frozen=True, kw_only=True)
class ServiceTime:
    """A service-time distribution whose mean is ``mean`` seconds.

    ``sigma`` is the lognormal's log-space standard deviation (its mean stays ``mean``).
    """

    distribution: str = "constant"
    mean: float = 0.2
    sigma: float = 0.5


@dataclass(frozen=True, kw_only=True)
class ResourceConfig:
    """A pool of ``workers`` servers with a FIFO queue of at most ``queue_bound`` jobs."""

    workers: int
    service: ServiceTime
    queue_bound: int = 10000
    overload: str = "unbounded"
    failure_ratio: float = 0.0
    shed_retry_after_s: int = 5


@dataclass(frozen=True, kw_only=True)
class PaymentsConfig(ResourceConfig):
    """The simulated payment gateway: a resource plus delivery faults."""

    duplicate_ratio: float = 0.0
    reorder: bool = False
    reorder_max_delay_s: float = 1.0


@dataclass(frozen=True, kw_only=True)
class GateConfig:
    """An admission gate: open, closed, or a token bucket of ``rate_per_s`` and ``burst``."""

    mode: str = "open"
    rate_per_s: float = 0.0
    burst: int = 0
    retry_after_s: int = 60


@dataclass(frozen=True, kw_only=True)
class PricingConfig:
    """Price of one e-Meterai: stamp duty plus service fee (Rupiah)."""

    duty: int = 10000
    service_fee: int = 2500
    max_quantity: int = 100


@dataclass(frozen=True, kw_only=True)
class LimitsConfig:
    """Request size limits in bytes."""

    max_upload_bytes: int = 2 * 1024 * 1024
    max_json_bytes: int = 16 * 1024
    body_timeout_s: float = 30.0  # a request body must arrive whole within this (slow-body guard)
    # request line and headers must arrive within this (slowloris guard)
    header_timeout_s: float = 10.0


@dataclass(frozen=True, kw_only=True)
class SecurityConfig:
    """Password hashing: ``scrypt`` (n, r, p) or ``pbkdf2`` (iterations of SHA-256)."""

    password_hash: str = "scrypt"
    scrypt_n: int = 4096
    scrypt_r: int = 8
    scrypt_p: int = 1
    pbkdf2_iterations: int = 200000
    session_ttl_s: float = 28800.0        # a token stops working this long after login
    login_failures_per_account: int = 5  # failed logins per email in the window, then 429 (0 = off)
    login_failures_per_client: int = 50   # failed logins per client address in the window (0 = off)
    login_window_s: float = 300.0
    unique_nik: bool = True               # one account per NIK (409 nik_taken)


@dataclass(frozen=True, kw_only=True)
class StorageConfig:
    """SQLite durability: NORMAL survives kill -9 (process crash); FULL survives power loss.

    ``write_deadline_s``: a request whose write cannot commit this soon (the write
    lock held elsewhere, a full disk) is answered 503 ``storage_busy``, nothing
    stored; a worker's write is retried with backoff for as long as it takes.
    """

    synchronous: str = "NORMAL"
    write_deadline_s: float = 10.0


@dataclass(frozen=True, kw_only=True)
class TestbedConfig:
    """The whole effective configuration (served at ``GET /admin/config``)."""

    __test__ = False  # not a pytest test class

    seed: int | None = None
    pricing: PricingConfig = field(default_factory=PricingConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    issuer: ResourceConfig = field(default_factory=lambda: _default_issuer())
    payments: PaymentsConfig = field(
        default_factory=lambda: PaymentsConfig(workers=8, service=ServiceTime())
    )
    gates: dict[str, GateConfig] = field(
        default_factory=lambda: {name: GateConfig() for name in GATES}
    )
    latency_law: LatencyLaw = field(default_factory=LatencyLaw)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON-able data.

        >>> load_config().to_dict()["issuer"]["workers"]
        4
        """
        return asdict(self)


def _default_issuer() -> ResourceConfig:
    """The issuer by default: 4 workers, lognormal service of mean 0.25 s (16 stamps/s)."""
    return ResourceConfig(
        workers=4, service=ServiceTime(distribution="lognormal", mean=0.25, sigma=0.2)
    )


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError("--set", item, "write KEY=VALUE, e.g. issuer.workers=64")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word such as shed or lognormal
    except RecursionError:
        raise ConfigError(
            "--set", item, "the value is nested too deeply; give a number, word or flat list"
        ) from None
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides (TOML literals, or bare words as strings).

    >>> apply_overrides({"issuer": {"workers": 4}}, ["issuer.workers=8", "issuer.overload=shed"])
    {'issuer': {'workers': 8, 'overload': 'shed'}}
    """
    out = copy.deepcopy(data)
    for item in overrides:
        path, value = _parse_override(item)
        node = out
        for part in path[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(".".join(path), value, f"{part} is not a table")
            node = nxt
        node[path[-1]] = value
    return out


def _service(r: TableReader, d: ServiceTime) -> ServiceTime:
    st = ServiceTime(
        distribution=r.choice("distribution", d.distribution, DISTRIBUTIONS),
        mean=r.bounded("mean", d.mean, 0.0, 3600.0),
        sigma=r.bounded("sigma", d.sigma, 0.0, 5.0),
    )
    r.done()
    return st


def _resource_fields(r: TableReader, d: ResourceConfig) -> dict[str, Any]:
    return dict(
        workers=r.integer("workers", d.workers, 1),
        service=_service(r.sub("service"), d.service),
        queue_bound=r.integer("queue_bound", d.queue_bound, 1),
        overload=r.choice("overload", d.overload, OVERLOAD_MODES),
        failure_ratio=r.bounded("failure_ratio", d.failure_ratio, 0.0, 1.0),
        shed_retry_after_s=r.integer("shed_retry_after_s", d.shed_retry_after_s, 1),
    )


def _gate(r: TableReader, d: GateConfig) -> GateConfig:
    g = GateConfig(
        mode=r.choice("mode", d.mode, GATE_MODES),
        rate_per_s=r.bounded("rate_per_s", d.rate_per_s, 0.0, 1e6),
        burst=r.integer("burst", d.burst, 0),
        retry_after_s=r.integer("retry_after_s", d.retry_after_s, 1),
    )
    r.done()
    if g.mode == "rate" and (g.rate_per_s <= 0 or g.burst < 1):
        raise ConfigError(
            f"{r.prefix}.rate_per_s",
            g.rate_per_s,
            "a rate gate needs rate_per_s > 0 and burst >= 1",
        )
    return g


def config_from_dict(data: dict[str, Any]) -> TestbedConfig:
    """Validate a merged TOML table into a TestbedConfig; a key left out takes its value from
    ``TestbedConfig()``.

    >>> config_from_dict(tomllib.loads(DEFAULT_TOML.read_text())).payments.workers
    8
    >>> config_from_dict({"issuer": {"workers": 2}}).issuer.service.distribution
    'lognormal'
    """
    d = TestbedConfig()
    root = TableReader(data, "", error=ConfigError, unknown="unknown key; see testbed/default.toml")
    seed = root.get("seed", None)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigError("seed", seed, "give an integer, or leave it out for a random seed")
    pricing = _section(root, "pricing", lambda r: _pricing(r, d.pricing))
    limits = _section(root, "limits", lambda r: _limits(r, d.limits))
    security = _section(root, "security", lambda r: _security(r, d.security))
    if security.scrypt_n & (security.scrypt_n - 1):
        raise ConfigError("security.scrypt_n", security.scrypt_n, "give a power of two, e.g. 16384")
    storage = _section(root, "storage", lambda r: _storage(r, d.storage))
    issuer = _section(root, "issuer", lambda r: ResourceConfig(**_resource_fields(r, d.issuer)))
    payments = _section(root, "payments", lambda r: _payments(r, d.payments))
    gates = _section(
        root, "gates", lambda r: {name: _gate(r.sub(name), d.gates[name]) for name in GATES}
    )
    latency_law = _section(root, "latency_law", law_from_table)
    root.done()
    return TestbedConfig(
        seed=seed,
        pricing=pricing,
        limits=limits,
        security=security,
        storage=storage,
        issuer=issuer,
        payments=payments,
        gates=gates,
        latency_law=latency_law,
    )


def _section(root: TableReader, name: str, read: Callable[[TableReader], T]) -> T:
    """Read table `name` of `root` with `read`, then refuse any key it did not read."""
    table = root.sub(name)
    value = read(table)
    table.done()
    return value


def _pricing(p: TableReader, d: PricingConfig) -> PricingConfig:
    return PricingConfig(
        duty=p.integer("duty", d.duty),
        service_fee=p.integer("service_fee", d.service_fee),
        max_quantity=p.integer("max_quantity", d.max_quantity, 1),
    )


def _limits(li: TableReader, d: LimitsConfig) -> LimitsConfig:
    return LimitsConfig(
        max_upload_bytes=li.integer("max_upload_bytes", d.max_upload_bytes, 1024),
        max_json_bytes=li.integer("max_json_bytes", d.max_json_bytes, 1024),
        body_timeout_s=li.bounded("body_timeout_s", d.body_timeout_s, 0.1, 3600.0),
        header_timeout_s=li.bounded("header_timeout_s", d.header_timeout_s, 0.1, 3600.0),
    )


def _security(s: TableReader, d: SecurityConfig) -> SecurityConfig:
    return SecurityConfig(
        password_hash=s.choice("password_hash", d.password_hash, ("scrypt", "pbkdf2")),
        scrypt_n=s.integer("scrypt_n", d.scrypt_n, 2),
        scrypt_r=s.integer("scrypt_r", d.scrypt_r, 1),
        scrypt_p=s.integer("scrypt_p", d.scrypt_p, 1),
        pbkdf2_iterations=s.integer("pbkdf2_iterations", d.pbkdf2_iterations, 1),
        session_ttl_s=s.bounded("session_ttl_s", d.session_ttl_s, 1.0, 365 * 86400.0),
        login_failures_per_account=s.integer(
            "login_failures_per_account", d.login_failures_per_account, 0
        ),
        login_failures_per_client=s.integer(
            "login_failures_per_client", d.login_failures_per_client, 0
        ),
        login_window_s=s.bounded("login_window_s", d.login_window_s, 1.0, 86400.0),
        unique_nik=s.boolean("unique_nik", d.unique_nik),
    )


def _storage(st: TableReader, d: StorageConfig) -> StorageConfig:
    return StorageConfig(
        synchronous=st.choice("synchronous", d.synchronous, ("NORMAL", "FULL")),
        write_deadline_s=st.bounded("write_deadline_s", d.write_deadline_s, 0.1, 3600.0),
    )


def _payments(pr: TableReader, d: PaymentsConfig) -> PaymentsConfig:
    return PaymentsConfig(
        **_resource_fields(pr, d),
        duplicate_ratio=pr.bounded("duplicate_ratio", d.duplicate_ratio, 0.0, 1.0),
        reorder=pr.boolean("reorder", d.reorder),
        reorder_max_delay_s=pr.bounded("reorder_max_delay_s", d.reorder_max_delay_s, 0.0, 3600.0),
    )


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None
) -> TestbedConfig:
    """Load the defaults, then the TOML file at ``path`` (if any), then ``overrides``.

    >>> load_config(None, ["issuer.service.distribution=lognormal"]).issuer.service.distribution
    'lognormal'
    """
    data = tomllib.loads(DEFAULT_TOML.read_text(encoding="utf-8"))
    if path is not None:
        data = _merge(data, read_toml(path, field="--config", error=ConfigError))
    return config_from_dict(apply_overrides(data, overrides or []))
