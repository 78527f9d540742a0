"""kill -9 during a burst of stamping: after restart
nothing accepted is lost and the audit balances."""

from __future__ import annotations

import sqlite3
import threading

from testbed_fixtures import FAST, Client, admin, buy, register_and_login, stamp, wait_for

from testbed.process import TestbedServer


def test_kill_9_during_a_stamping_burst_then_restart() -> None:
    args = [*FAST, "--issuer-service", "exponential:0.05", "--set", "payments.service.mean=0.02"]
    with TestbedServer(extra_args=args) as tb:
        c = Client(tb.url)
        applicants = [register_and_login(c) for _ in range(4)]
        for token, _aid, _email in applicants:
            buy(c, token, 30)
        for token, _aid, _email in applicants:
            wait_for(lambda t=token: c.get("/v1/quota", token=t).json["available"] == 30)

        # payments that will still be unconfirmed at the kill
        admin(c, tb, "POST", "/admin/faults", {"payments": "pause"})
        in_flight = [(t, buy(c, t, 2)) for t, _a, _e in applicants]

        accepted: dict[str, list[str]] = {t: [] for t, _a, _e in applicants}
        enough = threading.Event()

        def burst(token: str) -> None:
            client = Client(tb.url, timeout=5)
            for i in range(30):
                try:
                    r = stamp(client, token, f"burst-{i}")
                except OSError:
                    return  # the server died under us
                assert r.status == 202, r.json
                accepted[token].append(r.json["stamp_id"])
                if sum(map(len, accepted.values())) >= 50:
                    enough.set()

        threads = [threading.Thread(target=burst, args=(t,)) for t in accepted]
        for th in threads:
            th.start()
        assert enough.wait(20)
        tb.kill()  # SIGKILL: no shutdown, no flush
        for th in threads:
            th.join(10)
        n_accepted = sum(map(len, accepted.values()))
        assert n_accepted >= 50

        tb.restart()
        c = Client(tb.url)
        before = admin(c, tb, "GET", "/admin/audit").json
        assert before["balanced"], before["checks"]  # balanced even with work still pending
        assert before["totals"]["stamps_pending"] > 0  # the kill did leave accepted jobs unfinished
        assert before["totals"]["payments_pending"] == len(in_flight)
        admin(c, tb, "POST", "/admin/faults", {"payments": "resume"})

        def drained() -> bool:
            t = admin(c, tb, "GET", "/admin/audit").json["totals"]
            return t["stamps_pending"] == 0 and t["payments_pending"] == 0

        wait_for(drained, timeout=30, every=0.2)
        audit = admin(c, tb, "GET", "/admin/audit").json
        assert audit["balanced"], audit["checks"]
        assert audit["totals"]["stamps_failed"] == 0
        # every stamp whose 202 the client saw is done, under the same token (sessions survive)
        for token, ids in accepted.items():
            for sid in ids:
                assert c.get(f"/v1/stamps/{sid}", token=token).json["status"] == "done"
        for token, oid in in_flight:
            assert c.get(f"/v1/orders/{oid}", token=token).json["status"] == "paid"
        ledger = admin(c, tb, "GET", "/admin/ledger").json
        # at most one accepted-but-unanswered job per client thread
        assert n_accepted <= len(ledger["stamps"]) <= n_accepted + len(accepted)
        assert audit["totals"]["quota_credited"] == 4 * 32


def test_passwords_and_tokens_are_not_stored_in_clear() -> None:
    with TestbedServer() as tb:  # the default scrypt cost
        c = Client(tb.url)
        token, account_id, email = register_and_login(c)
        db = sqlite3.connect(f"file:{tb.db_path}?mode=ro", uri=True)
        (stored,) = db.execute(
            "SELECT password_hash FROM accounts WHERE account_id=?", (account_id,)
        ).fetchone()
        assert stored.startswith("scrypt$4096$8$1$") and "rahasia-123" not in stored
        dump = "\n".join(db.iterdump())
        assert "rahasia-123" not in dump and token not in dump
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()
        wrong = c.post("/v1/sessions", json_body={"email": email, "password": "rahasia-124"})
        assert wrong.status == 401 and wrong.json["error"] == "invalid_credentials"
        nobody = c.post(
            "/v1/sessions", json_body={"email": "nobody@example.id", "password": "rahasia-123"}
        )
        assert nobody.status == 401 and nobody.json == wrong.json
