"""The run recorder: what happened to every applicant, every request and the target, kept in memory
and written to the run directory's plain files at the end (see docs/run-directory.md).

    >>> r = Recorder(origin_unix=1_700_000_000.0, calendar_of=None, worker=0)
    >>> r.arrival_scheduled("0-1", "new_applicant", 1_700_000_000.5)
    >>> r.arrival_dropped("0-1", "spawn_lag")
    >>> r.counts["dropped"], r.counts["dropped_spawn_lag"], r.arrivals["0-1"]["outcome"]
    (1, 1, 'dropped')

Everything held here merges across processes: rows concatenate and the
histograms add exactly (`scenarios.latency`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from floor.rundir import writers
from floor.rundir.schema import (
    ARRIVALS,
    LATENCY_HISTORY,
    LEDGER,
    LEDGER_COLUMNS,
    QUEUE,
)
from floor.vocabulary import STEPS
from scenarios.latency import StepLatency

# What the server told the client, kept once told (a later update never blanks it).
LEDGER_EVIDENCE = ("http_status", "payment_id", "quantity_told", "serial_number", "document_serial",
                   "idempotency_keys")


def ledger_key(row: dict[str, Any]) -> tuple[str, str, str]:
    """The identity of a ledger row: (applicant, kind, first Idempotency-Key sent, else the
    server's id).

    A stamp or order row exists from its first send, before the server's id is known.

    >>> ledger_key({"applicant_id": "0-1", "kind": "stamp", "ref": "stp_1",
    ...             "idempotency_keys": "k1 k2"})
    ('0-1', 'stamp', 'k1')
    """
    keys = str(row.get("idempotency_keys") or "").split()
    return (row["applicant_id"], row["kind"], keys[0] if keys else row["ref"])
_NO_EVIDENCE = dict.fromkeys(LEDGER_EVIDENCE, "")
_UNTOLD = ("", None)
DROP_REASONS = ("pool_cap", "spawn_lag",
                "cpu")  # why an arrival found no idle user (scenarios.pool)
HISTORY_WINDOW_S = 10.0
HISTORY_PERCENTILES = (50, 95, 99)


def _seconds(v: float | None) -> str:
    """A duration for a CSV cell: milliseconds, or empty when unknown.

    >>> _seconds(12.34567), _seconds(None)
    ('12.346', '')
    """
    return "" if v is None else f"{v:.3f}"


def iso_utc(unix: float | None) -> str:
    """Unix seconds -> '2024-09-05T01:00:00.123Z' ('' for None).

    >>> iso_utc(0.5)
    '1970-01-01T00:00:00.500Z'
    """
    if unix is None:
        return ""
    # = datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    # (`_iso_utc_plain`, tested against it): the same rounding to microseconds (half even), the
    # seconds text made once
    frac, whole = math.modf(unix)
    us = round(frac * 1e6)
    if us >= 1_000_000:
        us -= 1_000_000
        whole += 1.0
    elif us < 0:
        us += 1_000_000
        whole -= 1.0
    sec = int(whole)
    head = _ISO_SECONDS.get(sec)
    if head is None:
        if len(_ISO_SECONDS) > 100_000:
            _ISO_SECONDS.clear()
        head = _ISO_SECONDS[sec] = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
    return f"{head}{us // 1000:03d}Z"


_ISO_SECONDS: dict[int, str] = {}


def _iso_utc_plain(unix: float) -> str:
    """The reference of `iso_utc` (one datetime per call)."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Recorder:
    """Collects arrivals, ledger rows, queue samples and latencies of one process."""

    def __init__(self, *, origin_unix: float, calendar_of: Callable[[float], str] | None,
                 worker: int = 0) -> None:
        self.origin_unix = origin_unix
        self.calendar_of = calendar_of or (lambda _t: "")
        self.worker = worker
        self.arrivals: dict[str, dict[str, Any]] = {}
        self.ledger: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.queue_rows: list[list[Any]] = []
        self._latency = StepLatency()
        # Latencies not yet in the histograms: (clock, step) -> seconds. The hot path only appends;
        # `latency` records them into the HDR histograms when something reads them (the end of the
        # run).
        self._pending: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)
        self.requests = 0
        self.errors = 0
        self._windows: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)

    # ---- arrivals -------------------------------------------------------------------------
    def calendar_iso(self, unix: float) -> str:
        """Calendar time (profile zone) at wall time `unix`, or '' in wall-clock runs."""
        return self.calendar_of(unix - self.origin_unix)

    def arrival_scheduled(self, applicant_id: str, journey: str, intended_unix: float, *,
                          patience_s: float | None = None) -> None:
        """An arrival's time came (it is about to be handed to a user or dropped); `patience_s`
        is its own patience (arrivals.csv leaves it empty when not given)."""
        self.counts["scheduled"] += 1
        self.arrivals[applicant_id] = {"applicant_id": applicant_id, "journey": journey,
                                       "intended": intended_unix, "patience_s": patience_s,
                                       "started": None, "finished": None, "outcome": "",
                                       "ended_step": "",
                                       "attempts": 0, "worker": self.worker}

    def arrival_dropped(self, applicant_id: str, reason: str = "") -> None:
        """No idle user was free: the arrival is dropped at once, never delayed.

        `reason` is one of `DROP_REASONS` (pool_cap, spawn_lag, cpu); it is
        counted as `dropped_REASON` and written in arrivals.csv's `drop_reason`.
        """
        self.counts["dropped"] += 1
        if reason:
            self.counts[f"dropped_{reason}"] += 1
        self.arrivals[applicant_id].update(outcome="dropped", drop_reason=reason)

    def arrival_started(self, applicant_id: str, unix: float) -> None:
        """A user took the arrival and starts its journey."""
        self.counts["started"] += 1
        self.arrivals[applicant_id]["started"] = unix

    def arrival_finished(self, applicant_id: str, outcome: str, ended_step: str, attempts: int,
                         unix: float) -> None:
        """The journey ended: completed, abandoned or failed, on `ended_step`."""
        self.counts[outcome] += 1
        self.arrivals[applicant_id].update(finished=unix, outcome=outcome, ended_step=ended_step,
                                           attempts=attempts)

    # ---- ledger -------------------------------------------------------------------------------
    def ledger_row(self, applicant_id: str, kind: str, ref: str, *, account_id: str = "",
                   email: str = "",
                   quantity: int | str = "", amount: int | str = "", status: str, unix: float,
                   **evidence: Any) -> None:
        """Add or update the client's view of an account, order, payment or stamp.

        `evidence` holds what the server told the client (`LEDGER_EVIDENCE`: the HTTP status
        that acknowledged the step, the payment id, the quantity in the order's answer, the
        serial numbers seen, the Idempotency-Keys sent); a field once told is kept.

            >>> r = Recorder(origin_unix=0.0, calendar_of=None)
            >>> r.ledger_row("0-1", "stamp", "", status="sent", unix=1.0, idempotency_keys="k1")
            >>> r.ledger_row("0-1", "stamp", "stp_1", status="queued", unix=2.0,
            ...              idempotency_keys="k1", http_status=202)
            >>> [(x["ref"], x["status"], x["http_status"]) for x in r.ledger_rows()]
            [('stp_1', 'queued', 202)]
        """
        # = ledger_key({...}) without building the dict (a journey writes ~16 rows)
        keys = str(evidence.get("idempotency_keys") or "").split(None, 1)
        key = (applicant_id, kind, keys[0] if keys else ref)
        row = self.ledger.get(key)
        if row is None:
            # every evidence column from the start, as in ledger.csv: in memory and on disk the
            # rows read the same ("no http_status column" means an old file to `acknowledged`)
            row = self.ledger[key] = {"applicant_id": applicant_id, "account_id": account_id,
                                      "email": email,
                                      "kind": kind, "ref": ref, "quantity": quantity,
                                      "amount": amount,
                                      **_NO_EVIDENCE}
        row["status"] = status
        row["at"] = unix  # Unix seconds until written out: ledger_rows() formats it (ISO UTC)
        # a field once told is kept: only told values ("" and None are not) overwrite
        if account_id not in _UNTOLD:
            row["account_id"] = account_id
        if ref not in _UNTOLD:
            row["ref"] = ref
        if quantity not in _UNTOLD:
            row["quantity"] = quantity
        if amount not in _UNTOLD:
            row["amount"] = amount
        for name, value in evidence.items():
            if name in _NO_EVIDENCE and value not in _UNTOLD:
                row[name] = value

    # ---- latency ------------------------------------------------------------------------------
    def _window(self, unix: float, step: str) -> dict[str, Any]:
        w = self._windows[int(max(0.0, unix - self.origin_unix) // HISTORY_WINDOW_S)]
        slot = w.get(step)
        if slot is None:
            slot = w[step] = {"service": [], "intended": [], "errors": 0}
        return slot

    @property
    def latency(self) -> StepLatency:
        """The HDR histograms per step and clock, with every latency recorded so far."""
        if self._pending:
            lat, pending = self._latency, self._pending
            self._pending = defaultdict(list)
            for (clock, step), values in pending.items():
                lat.record_many(clock, step, values)
        return self._latency

    def request_done(self, step: str, sent_unix: float, seconds: float, ok: bool) -> None:
        """One request of `step`, `seconds` from its actual send (service clock)."""
        self.requests += 1
        self._pending["service", step].append(seconds)
        slot = self._window(sent_unix + seconds, step)
        slot["service"].append(seconds)
        if not ok:
            self.errors += 1
            slot["errors"] += 1

    def step_done(self, step: str, end_unix: float, seconds: float) -> None:
        """One step ended, `seconds` after the applicant intended to start it."""
        self._pending["intended", step].append(seconds)
        self._window(end_unix, step)["intended"].append(seconds)

    # ---- queue -------------------------------------------------------------------------------
    def queue_sample(self, unix: float, m: dict[str, Any]) -> None:
        """One `GET /admin/metrics` sample -> a queue.csv row."""
        # a target may answer wrong-typed JSON: never crash the monitor
        def obj(x: Any) -> dict[str, Any]:
            return x if isinstance(x, dict) else {}
        res = obj(obj(m).get("resources"))
        iss, pay, gates = obj(res.get("issuer")), obj(res.get("payments")), obj(obj(m).get("gates"))

        def gate(name: str) -> str:
            g = obj(gates.get(name))
            return f"rate:{g.get('rate_per_s')}" if g.get("mode") == "rate" else g.get("mode", "")
        self.queue_rows.append([iso_utc(unix), self.calendar_iso(unix), iss.get("queue_depth"),
                                iss.get("busy"),
                                iss.get("workers"), iss.get("completed"), iss.get("failed"),
                                int(bool(iss.get("paused"))), pay.get("queue_depth"),
                                pay.get("busy"),
                                pay.get("workers"), gate("registration"), gate("ordering"),
                                gate("stamping")])

    # ---- files -------------------------------------------------------------------------------
    def arrival_rows(self) -> list[list[Any]]:
        """arrivals.csv rows, in intended order."""
        out = []
        for a in sorted(self.arrivals.values(), key=lambda a: a["intended"]):
            out.append([a["applicant_id"], a["journey"], iso_utc(a["intended"]),
                        iso_utc(a["started"]),
                        iso_utc(a["finished"]), self.calendar_iso(a["intended"]),
                        a["outcome"] or "abandoned",
                        a["ended_step"], a["attempts"], a.get("worker", self.worker),
                        a.get("drop_reason", ""), _seconds(a.get("patience_s"))])
        return out

    def ledger_rows(self) -> list[dict[str, Any]]:
        """ledger.csv rows as dicts (the client side of reconciliation), `at` as UTC ISO text.

        >>> r = Recorder(origin_unix=0.0, calendar_of=None)
        >>> r.ledger_row("0-1", "order", "ord_1", quantity=2, status="created", unix=1.5)
        >>> r.ledger_rows()[0]["at"]
        '1970-01-01T00:00:01.500Z'
        """
        return [{**r, "at": iso_utc(r["at"])} if isinstance(r["at"], (int, float)) else dict(r)
                for r in self.ledger.values()]

    def history_rows(self) -> list[list[Any]]:
        """latency_history.csv rows: per 10 s window and step."""
        # p50, p95, p99 in ms
        def pct(xs: list[float]) -> list[Any]:
            if not xs:
                return ["", "", ""]
            return [round(v * 1000, 3) for v in linear_percentiles(xs, HISTORY_PERCENTILES)]
        out = []
        for w in sorted(self._windows):
            start = self.origin_unix + w * HISTORY_WINDOW_S
            for step in STEPS:
                slot = self._windows[w].get(step)
                if not slot:
                    continue
                s, i = slot["service"], slot["intended"]
                out.append([iso_utc(start), self.calendar_iso(start), step, len(s), slot["errors"],
                            *pct(s), *pct(i)])
        return out

    # ---- across processes ------------------------------------------------------------------
    def export(self) -> dict[str, Any]:
        """Everything this process recorded, as plain data (for a worker to send to the master).

        Queue samples are not included: in a distributed run only the master samples the target.
        The inverse is `absorb`; see its docstring for an example.
        """
        windows = [[w, step, slot["service"], slot["intended"], slot["errors"]]
                   for w, table in self._windows.items() for step, slot in table.items()]
        return {"worker": self.worker, "arrivals": list(self.arrivals.values()),
                "ledger": self.ledger_rows(),
                "counts": dict(self.counts), "requests": self.requests, "errors": self.errors,
                "windows": windows,
                "latency": self.latency.encode(), "hdr_counts": self.latency.counts()}

    def absorb(self, data: dict[str, Any]) -> None:
        """Add another process's `export()` into this recorder, exactly.

        Arrival rows and ledger rows are united (an applicant id seen twice raises
        `IntegrityError`: ids carry the worker index, so that would be duplicated data),
        counts and raw latency-history samples add up, and the HDR histograms are
        decoded and added; each decoded histogram must hold the count the sender
        declared and each merged one the sum, else `IntegrityError`::

            >>> a = Recorder(origin_unix=0.0, calendar_of=None, worker=0)
            >>> b = Recorder(origin_unix=0.0, calendar_of=None, worker=1)
            >>> a.arrival_scheduled("0-000001", "new_applicant", 1.0)
            >>> b.arrival_scheduled("1-000001", "stamp_only", 2.0)
            >>> b.request_done("login", 2.0, 0.05, True)
            >>> m = Recorder(origin_unix=0.0, calendar_of=None)
            >>> m.absorb(a.export()); m.absorb(b.export())
            >>> (m.counts["scheduled"], m.requests, m.latency.count("login"),
            ...  [r[9] for r in m.arrival_rows()])
            (2, 1, 1, [0, 1])
        """
        from floor.errors import IntegrityError

        who = f"worker {data.get('worker')}"
        for a in data["arrivals"]:
            if a["applicant_id"] in self.arrivals:
                aid = a["applicant_id"]
                raise IntegrityError(f"{who} sent applicant {aid} that another worker sent too; "
                                     "each worker needs its own index (restart the run)")
            self.arrivals[a["applicant_id"]] = dict(a)
        for r in data["ledger"]:
            self.ledger[ledger_key(r)] = dict(r)
        for k, n in data["counts"].items():
            self.counts[k] += int(n)
        self.requests += int(data["requests"])
        self.errors += int(data["errors"])
        for w, step, service, intended, errors in data["windows"]:
            slot = self._windows[int(w)].get(step)
            if slot is None:
                slot = self._windows[int(w)][step] = {"service": [], "intended": [], "errors": 0}
            slot["service"].extend(service)
            slot["intended"].extend(intended)
            slot["errors"] += int(errors)
        before = self.latency.counts()
        incoming = StepLatency.decode(data["latency"])
        declared = data.get("hdr_counts", {})
        got = incoming.counts()
        if declared and got != declared:
            raise IntegrityError(f"{who}: its latency histograms decode to counts {got}, but it "
                                 f"declared {declared}; a message was damaged (rerun)")
        self.latency.merge(incoming)
        after = self.latency.counts()
        for clock, table in after.items():
            for step, n in table.items():
                want = before.get(clock, {}).get(step, 0) + got.get(clock, {}).get(step, 0)
                if n != want:
                    raise IntegrityError(f"merged {step}.{clock} histogram holds {n} values, "
                                         f"expected {want}")

    def write_files(self, out: Path) -> None:
        """Write arrivals.csv, ledger.csv, queue.csv, latency/*.hdr and latency_history.csv into
        `out`."""
        writers.write_table(out, ARRIVALS, self.arrival_rows())
        writers.write_table(out, LEDGER, ([r.get(c, "") for c in LEDGER_COLUMNS]
                                          for r in self.ledger_rows()))
        writers.write_table(out, QUEUE, self.queue_rows)
        for clock, table in self.latency.encode().items():
            for step, text in table.items():
                writers.write_histogram(out, step, clock, text)
        writers.write_table(out, LATENCY_HISTORY, self.history_rows())


def linear_percentiles(xs: list[float], pcts: tuple[float, ...]) -> list[float]:
    """`np.percentile(xs, pcts)` (its default, linear method), bit for bit, on a sorted list.

    numpy's call costs ~100 us on a window of a few hundred latencies and 15 ms on its first
    call in a process; a rehearsal's history has two per window and step. numpy's
    interpolation is copied exactly: below the midpoint a + (b - a)t, from it b - (b - a)(1 - t)
    (`tests/test_hot_path_reference.py` holds it to numpy's).

        >>> linear_percentiles([4.0, 1.0, 3.0, 2.0], (0, 50, 95, 100))
        [1.0, 2.5, 3.8499999999999996, 4.0]
    """
    s = sorted(xs)
    last = len(s) - 1
    out = []
    for q in pcts:
        v = last * (q / 100)
        lo = math.floor(v)
        if lo >= last:
            out.append(float(s[last]))
            continue
        a, b = s[lo], s[lo + 1]
        t, d = v - lo, s[lo + 1] - s[lo]
        out.append(float(b - d * (1 - t) if t >= 0.5 else a + d * t))
    return out


def finite(x: float | None) -> float | None:
    """`x` if it is a finite number, else None (JSON has no NaN)."""
    return x if x is not None and math.isfinite(x) else None
