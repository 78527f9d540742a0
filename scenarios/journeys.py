"""Applicant journeys against the e-Meterai API, with patience, think times and a retry policy.

Steps (names used in every file): register, login, order, pay, wait_quota, stamp,
poll_stamp, download.

* new_applicant: register, login, order, pay, wait_quota, then per document stamp, poll_stamp,
  download.
* returning_applicant: has an account already (made in the un-timed setup phase before
  the run): login, order, pay, wait_quota, then the documents.
* stamp_only: has an account with paid quota already (setup phase): login, then the documents.

Retry policy per applicant: `refresh` retries at once (the retry storm); `backoff`
waits base x 2^k x jitter (0.5..1.5), at most backoff_max_s, and at least the
server's Retry-After. Retries of one order or stamp reuse its Idempotency-Key
(unless `reuse_keys` is off). An applicant gives up (`abandoned`) when the
journey outlives its patience (`ApplicantPlan.patience_s`, else `patience_s`; the law is
`scenarios.patience`) from its intended start, or a step runs out of
`max_attempts`; a definitive refusal (4xx other than 429, a failed payment or
stamp) ends it as `failed`. `run_journey` returns (outcome, ended_step, requests)::

    >>> build_multipart(b"%PDF-1.4", "surat.pdf", boundary="b")[1][:40]
    b'--b\\r\\nContent-Disposition: form-data; nam'
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent

from scenarios.documents import (  # noqa: F401 (re-exported)
    SERIAL_RE,
    build_multipart,
    document_serial,
    document_title,
    pdf_document,
)
from scenarios.identities import Identity
from scenarios.journey_http import (  # noqa: F401 (re-exported)
    MAX_RESPONSE_BYTES,
    Reply,
    _drop_connections,
    _json,
    _retry_after,
    bounded_request,
)
from scenarios.profile_build import Journeys

RETRYABLE = {0, 408, 425, 429, 500, 502, 503, 504}
DECLINED = "the payment was declined"
GAVE_UP = "gave_up"  # ledger status: the client stopped sending this request without an answer


DEFAULT_JOURNEYS = Journeys(mix={"new_applicant": 1.0}, think_time_s=(0.5, 2.0), patience_s=30.0,
                            poll_interval_s=0.5, retry_mix={"backoff": 1.0}, backoff_base_s=0.5,
                            backoff_max_s=10.0, max_attempts=5, request_timeout_s=10.0)


@dataclass
class Account:
    """An account made before the run for a returning or stamp-only applicant."""

    email: str
    password: str
    account_id: str
    quota: int = 0


@dataclass
class ApplicantPlan:
    """One arrival: who, which journey, when they meant to start, and how they behave."""

    applicant_id: str
    journey: str
    intended_unix: float
    documents: int
    retry_policy: str
    rng: random.Random
    identity: Identity
    account: Account | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    patience_s: float | None = None  # this applicant's own patience (None: the journeys' mean)


class GiveUp(Exception):
    """The journey ends early with `outcome` on `step`."""

    def __init__(self, outcome: str, step: str, why: str = "") -> None:
        super().__init__(f"{outcome} at {step}: {why}")
        self.outcome, self.step, self.why = outcome, step, why


class JourneyRun:
    """Runs one applicant's journey on a Locust FastHttpUser client; see the module docstring.

    `recorder` receives every request, step and ledger row; `watch` (optional) the
    same samples for thresholds; `to_test_s` maps wall time to test seconds.
    """

    def __init__(self, client: Any, plan: ApplicantPlan, cfg: Journeys, recorder: Any, *,
                 watch: Any = None,
                 to_test_s: Any = None, reuse_keys: bool = True, on_refused: Any = None,
                 max_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self.client, self.plan, self.cfg, self.rec = client, plan, cfg, recorder
        self.on_refused = on_refused
        self.max_bytes = max_bytes
        # a watch with no rules takes no samples: skip the calls (and their clock conversions)
        self.watch = watch if getattr(watch, "active", True) else None
        self.to_test_s = to_test_s or (lambda u: u)
        self.reuse_keys = reuse_keys
        self.deadline = plan.intended_unix + (
            cfg.patience_s if plan.patience_s is None else plan.patience_s)
        self.requests = 0
        self.step = ""
        self.step_intended = plan.intended_unix
        self.token = ""
        self.account_id = plan.account.account_id if plan.account else ""
        # the email on this applicant's ledger rows (fixed for the journey)
        self.email = plan.identity.email if plan.journey == "new_applicant" else (
            plan.account.email if plan.account else "")

    # ---- the three journeys ---------------------------------------------------------------
    def run(self) -> tuple[str, str]:
        """Play the journey; return (outcome, ended_step)."""
        return self._play()

    def _play(self) -> tuple[str, str]:
        p = self.plan
        try:
            if p.journey == "new_applicant":
                self.register()
                self.login(p.identity.email, p.identity.password)
                self.buy()
            else:
                if p.account is None:
                    raise GiveUp("failed", "login",
                                 "no account could be prepared for this applicant")
                self.login(p.account.email, p.account.password)
                if p.journey == "returning_applicant":
                    self.buy()
            for i in range(p.documents):
                self.stamp_document(i, last=i == p.documents - 1)
        except GiveUp as g:
            if self.step and g.outcome == "abandoned":
                self._record_step(self.step, time.time())
            return g.outcome, g.step
        return "completed", self.step

    def register(self) -> None:
        """POST /v1/accounts."""
        ident = self.plan.identity
        body = {"nik": ident.nik, "name": ident.name, "email": ident.email, "phone": ident.phone,
                "password": ident.password}
        # 409 email_taken: emails are unique per run, so the account is this applicant's own,
        # made by an earlier attempt whose answer was lost; go on and log in to it.
        r = self.call("register", "POST", "/v1/accounts", json_body=body, ok=(201, 409))
        if r.status_code == 409:
            return  # login records the account (status existing) once it knows its id
        self.account_id = _json(r).get("account_id", "")
        self.ledger("account", self.account_id, status="created", http_status=r.status_code)

    def login(self, email: str, password: str) -> None:
        """POST /v1/sessions."""
        known = bool(self.account_id)
        r = self.call("login", "POST", "/v1/sessions", json_body={"email": email,
                                                                  "password": password},
                      ok=(200, 201))
        body = _json(r)
        self.token = body.get("token", "")
        self.account_id = body.get("account_id", self.account_id)
        if self.plan.journey != "new_applicant" or not known:
            self.ledger("account", self.account_id, status="existing", http_status=r.status_code)

    def buy(self) -> None:
        """order, pay, wait_quota; the ledger keeps what the server acknowledged (status, ids,
        amounts)."""
        n = self.plan.documents
        slot: list[str] = []

        def sent(keys: list[str]) -> None:
            slot[:] = keys
            self.ledger("order", "", quantity=n, status="sent", idempotency_keys=" ".join(keys))
        r = self.call("order", "POST", "/v1/orders", json_body={"quantity": n}, ok=(200, 201),
                      idempotent=True,
                      sent=sent)
        order = _json(r)
        oid = order.get("order_id", "")
        amount = order.get("amount", "")
        self.ledger("order", oid, quantity=n, amount=amount, status=order.get("status", "created"),
                    http_status=r.status_code, quantity_told=order.get("quantity", ""),
                    idempotency_keys=" ".join(slot))
        self.ledger("payment", oid, quantity=n, amount=amount, status="sent")
        try:
            r = self.call("pay", "POST", f"/v1/orders/{oid}/pay", ok=(200, 202))
        except GiveUp:
            self.ledger("payment", oid, quantity=n, amount=amount, status=GAVE_UP)
            raise
        paid = _json(r)
        self.ledger("payment", oid, quantity=n, amount=amount, status=paid.get("status", "paying"),
                    http_status=r.status_code, payment_id=paid.get("payment_id", ""))
        try:
            self.wait_quota(oid, n)
        except GiveUp as g:
            if g.why == DECLINED:
                self.ledger("payment", oid, quantity=n, amount=amount, status="declined")
            raise
        self.ledger("payment", oid, quantity=n, amount=amount, status="credited")

    def wait_quota(self, order_id: str, needed: int) -> None:
        """Poll GET /v1/quota until `needed` e-Meterai are available (every 4th poll checks the
        order)."""
        self._step_start("wait_quota")
        polls = 0
        while True:
            polls += 1
            if polls % 4 == 0:
                r = self.send("wait_quota", "GET", f"/v1/orders/{order_id}", ok=(200,))
                if r.status_code == 200 and _json(r).get("status") == "failed":
                    self._record_step("wait_quota", time.time())
                    raise GiveUp("failed", "wait_quota", DECLINED)
            else:
                r = self.send("wait_quota", "GET", "/v1/quota", ok=(200,))
                if r.status_code == 200 and int(_json(r).get("available", 0) or 0) >= needed:
                    break
            self._pause(self.cfg.poll_interval_s)
        self._step_end("wait_quota", time.time())

    def stamp_document(self, i: int, *, last: bool = False) -> None:
        """stamp (upload), poll_stamp, download for document `i`; the ledger keeps the id, keys and
        serials."""
        pdf = pdf_document(f"{document_title(i)} - {self.plan.identity.name}")
        slot: list[str] = []

        def sent(keys: list[str]) -> None:
            slot[:] = keys
            self.ledger("stamp", "", quantity=1, status="sent", idempotency_keys=" ".join(keys))
        try:
            r = self.call("stamp", "POST", "/v1/stamps", multipart=(pdf, f"dokumen-{i + 1}.pdf"),
                          ok=(200, 201, 202), idempotent=True, sent=sent)
        except GiveUp:
            # the client stops here: anything the server charges for these keys later is unknown to
            # it
            if slot:
                self.ledger("stamp", "", quantity=1, status=GAVE_UP,
                            idempotency_keys=" ".join(slot))
            raise
        body = _json(r)
        sid = body.get("stamp_id", "")
        keys = " ".join(slot)
        self.ledger("stamp", sid, quantity=1, status=body.get("status", "queued"),
                    http_status=r.status_code,
                    idempotency_keys=keys)
        self._step_start("poll_stamp")
        while True:
            r = self.send("poll_stamp", "GET", f"/v1/stamps/{sid}", ok=(200,))
            polled = _json(r) if r.status_code == 200 else {}
            status = polled.get("status")
            if status in ("done", "failed"):
                self.ledger("stamp", sid, quantity=1, status=status, idempotency_keys=keys,
                            serial_number=polled.get("serial_number") or "")
                break
            self._pause(self.cfg.poll_interval_s)
        if status == "failed":
            self._record_step("poll_stamp", time.time())
            raise GiveUp("failed", "poll_stamp", "the issuer failed the stamp")
        self._step_end("poll_stamp", time.time())
        r = self.call("download", "GET", f"/v1/stamps/{sid}/document", ok=(200,), think=not last)
        if not (r.content or b"").startswith(b"%PDF"):
            raise GiveUp("failed", "download", "the document is not a PDF")
        self.ledger("stamp", sid, quantity=1, status="downloaded", idempotency_keys=keys,
                    document_serial=document_serial(r.content or b""))

    # ---- plumbing ---------------------------------------------------------------------------
    def ledger(self, kind: str, ref: str, *, quantity: Any = "", amount: Any = "", status: str,
               **evidence: Any) -> None:
        """Record the client's view of an account, order, payment or stamp (see
        `Recorder.ledger_row`)."""
        self.rec.ledger_row(self.plan.applicant_id, kind, ref, account_id=self.account_id,
                            email=self.email,
                            quantity=quantity, amount=amount, status=status, unix=time.time(),
                            **evidence)

    def _step_start(self, step: str) -> None:
        self.step = step

    def _record_step(self, step: str, end: float) -> None:
        seconds = max(0.0, end - self.step_intended)
        self.rec.step_done(step, end, seconds)
        if self.watch is not None:
            self.watch.step_done(step, self.to_test_s(end), seconds)

    def _step_end(self, step: str, end: float, *, think: bool = True) -> None:
        """A step ended: record its intended-clock latency, then the planned think time before the
        next."""
        self._record_step(step, end)
        if not think:
            self.step_intended = end
            return
        lo, hi = self.cfg.think_time_s
        think = self.plan.rng.uniform(lo, hi)
        self.step_intended = end + think
        self._pause(think, giving_up_ok=True)

    def _pause(self, seconds: float, *, giving_up_ok: bool = False) -> None:
        if seconds <= 0:
            return
        if time.time() + seconds >= self.deadline and not giving_up_ok:
            raise GiveUp("abandoned", self.step, "patience ran out")
        gevent.sleep(min(seconds, max(0.0, self.deadline - time.time())))

    def send(self, step: str, method: str, path: str, *, ok: tuple[int, ...], json_body: Any = None,
             data: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        """Send one request (recorded on the service clock); give up if patience has run out."""
        if time.time() >= self.deadline:
            raise GiveUp("abandoned", step, "patience ran out")
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        self.requests += 1
        sent = time.time()
        t0 = time.perf_counter()
        r = bounded_request(self.client, method, path, name=step, data=data, json_body=json_body,
                            headers=h,
                            deadline_s=self.cfg.request_timeout_s, max_bytes=self.max_bytes)
        seconds = time.perf_counter() - t0
        if 300 <= r.status_code < 400:
            where = (r.headers.get("location") if r.headers is not None else "") or "(no Location)"
            msg = (f"{method} {path} answered HTTP {r.status_code} redirecting to "
                   f"{str(where)[:120]}; surgecast follows no redirect off its target")
            if self.on_refused is not None:
                self.on_refused(msg)
            self.rec.request_done(step, sent, seconds, False)
            raise GiveUp("failed", step, msg)
        good = r.status_code in ok
        self.rec.request_done(step, sent, seconds, good)
        if self.watch is not None:
            self.watch.request(step, self.to_test_s(sent + seconds), seconds, ok=good)
        return r

    def call(self, step: str, method: str, path: str, *, ok: tuple[int, ...], json_body: Any = None,
             multipart: tuple[bytes, str] | None = None, idempotent: bool = False,
             think: bool = True,
             sent: Callable[[list[str]], None] | None = None) -> Any:
        """One step with retries per the applicant's policy; returns the successful response.

        `sent(keys)`, if given, is called before each attempt with every Idempotency-Key sent so
        far.
        """
        self._step_start(step)
        # = uuid.UUID(int=...).hex
        key = f"{self.plan.rng.getrandbits(128):032x}" if idempotent else None
        keys: list[str] = []
        attempt = 0
        while True:
            attempt += 1
            headers: dict[str, str] = {}
            if key is not None:
                headers["Idempotency-Key"] = key
                if key not in keys:
                    keys.append(key)
            if sent is not None:
                sent(keys)
            data = None
            if multipart is not None:
                ctype, data = build_multipart(*multipart)
                headers["Content-Type"] = ctype
            r = self.send(step, method, path, ok=ok, json_body=json_body, data=data,
                          headers=headers)
            if r.status_code in ok:
                self._step_end(step, time.time(), think=think)
                return r
            if r.status_code not in RETRYABLE:
                self._record_step(step, time.time())
                raise GiveUp("failed", step, f"HTTP {r.status_code}")
            if attempt >= self.cfg.max_attempts:
                raise GiveUp("abandoned", step, f"{attempt} attempts")
            if key is not None and not self.reuse_keys:
                key = f"{self.plan.rng.getrandbits(128):032x}"
            if self.plan.retry_policy == "backoff":
                delay = min(self.cfg.backoff_max_s, self.cfg.backoff_base_s * 2 ** (attempt - 1))
                delay = max(delay * self.plan.rng.uniform(0.5, 1.5), _retry_after(r))
                self._pause(delay)
