"""The testbed's metrics (``GET /admin/metrics``) and their Prometheus text.

    m = metrics(ledger); text = prometheus(m)   # GET /admin/metrics[?format=prometheus]

Counts come from memory and a few indexed COUNT queries, in one consistent snapshot (they run
without yielding the loop).
"""

from __future__ import annotations

from typing import Any

from testbed.ledger import Ledger
from testbed.ledger_base import now_iso

ORDER_STATES = ("pending_payment", "paying", "paid", "failed")
STAMP_STATES = ("queued", "processing", "done", "failed")


def metrics(ledger: Ledger) -> dict[str, Any]:
    """The body of ``GET /admin/metrics``.

    Counts come from memory and a few indexed COUNT queries; cheap enough to poll every second.
    """
    db = ledger.db
    orders = dict.fromkeys(ORDER_STATES, 0) | dict(
        db.execute("SELECT status, count(*) FROM orders GROUP BY status")
    )
    stamps = dict.fromkeys(STAMP_STATES, 0) | dict(
        db.execute("SELECT status, count(*) FROM stamps GROUP BY status")
    )
    return {
        "time": now_iso(),
        "resources": {"issuer": ledger.issuer.state(), "payments": ledger.payments.state()},
        "counts": {
            "accounts": len(ledger.quotas),
            "sessions": len(ledger.tokens),
            "orders": orders,
            "stamps": stamps,
        },
        "gates": {name: g.state() for name, g in ledger.gates.items()},
        "confirmations": dict(ledger.confirmations),
        "storage": {"write_retries": ledger.store.retries, "writes_pending": ledger.store.pending},
        "logins_throttled": ledger.throttle.refusals,
    }


RESOURCE_METRICS = (
    ("queue_depth", "gauge", "jobs waiting in the resource queue"),
    ("busy", "gauge", "workers serving a job"),
    ("workers", "gauge", "workers"),
    ("completed", "counter", "jobs completed"),
    ("failed", "counter", "jobs failed"),
    ("shed", "counter", "submissions refused because the queue was full"),
    ("paused", "gauge", "1 if the resource is paused"),
    ("slow_factor", "gauge", "service-time multiplier"),
)
"""The Prometheus series of each resource: (key of its state, type, help)."""


def prometheus(m: dict[str, Any]) -> str:
    """Render :func:`metrics` as Prometheus text exposition (version 0.0.4).

    >>> text = prometheus({"resources": {}, "counts": {"accounts": 2, "orders": {}, "stamps": {}},
    ...                    "gates": {}, "confirmations": {}})
    >>> [line for line in text.splitlines() if line.startswith("surgecast_accounts")]
    ['surgecast_accounts 2']
    """
    out: list[str] = []
    res = m["resources"]
    for key, kind, help_ in RESOURCE_METRICS:
        samples = [({"resource": r}, float(s[key])) for r, s in res.items()]
        _metric(out, f"resource_{key}", kind, help_, samples)
    c = m["counts"]
    _metric(out, "accounts", "gauge", "registered accounts", [({}, c["accounts"])])
    orders = [({"state": k}, v) for k, v in c["orders"].items()]
    _metric(out, "orders", "gauge", "orders per state", orders)
    stamps = [({"state": k}, v) for k, v in c["stamps"].items()]
    _metric(out, "stamps", "gauge", "stamp jobs per state", stamps)
    _gate_metrics(out, m["gates"])
    confirmations = [({"result": k}, v) for k, v in m.get("confirmations", {}).items()]
    _metric(
        out, "payment_confirmations", "counter", "gateway confirmations by result", confirmations
    )
    return "\n".join(out) + "\n"


def _gate_metrics(out: list[str], gates: dict[str, Any]) -> None:
    """Each gate's mode, token-bucket rate and size, and refusals."""
    _metric(
        out,
        "gate_open",
        "gauge",
        "1 if the gate admits requests (open or rate)",
        [({"gate": g, "mode": s["mode"]}, s["mode"] != "closed") for g, s in gates.items()],
    )
    rates = [({"gate": g}, s["rate_per_s"]) for g, s in gates.items()]
    _metric(out, "gate_rate_per_s", "gauge", "token-bucket rate", rates)
    bursts = [({"gate": g}, s["burst"]) for g, s in gates.items()]
    _metric(out, "gate_burst", "gauge", "token-bucket size", bursts)
    refused = [({"gate": g}, s.get("refused", 0)) for g, s in gates.items()]
    _metric(out, "gate_refused", "counter", "requests refused by the gate", refused)


def _metric(
    out: list[str], name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], Any]]
) -> None:
    """Append one metric family (HELP, TYPE and its samples) to `out`."""
    out.append(f"# HELP surgecast_{name} {help_}")
    out.append(f"# TYPE surgecast_{name} {kind}")
    for labels, value in samples:
        lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
        out.append(
            f"surgecast_{name}{{{lab}}} {float(value):g}"
            if lab
            else f"surgecast_{name} {float(value):g}"
        )
