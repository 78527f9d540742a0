"""Distributed rehearsals on Locust's own master/worker mode.

    surgecast rehearse --workers 2 --profile casn2024 --out runs/x     # 2 local worker processes
    surgecast rehearse --master --workers 4 --host http://10.0.0.9:8080 --allow-remote --out runs/y
    surgecast rehearse --worker --master-host 10.0.0.5                        # on each load machine
    locust -f locustfile.py --headless --processes 2 --arrival-rate 20 --duration 60 --out runs/z

Locust moves users and statistics between processes; this module adds the
rehearsal's part, all in Locust custom messages (`runner.register_message` /
`runner.send_message`):

1. At test start the master gives each connected worker an index i of N and the
   resolved settings (`surgecast_setup`; the profile travels as its TOML text, the
   admin token never does). Worker i draws its share 1/N of the arrival rate from
   its own seed stream `SeedSequence(seed).spawn(N)[i]`; its applicant ids are
   `i-NNNNNN`.
2. Each worker makes its set-up accounts, warms its pool and says `surgecast_ready`;
   when all are ready (bounded wait) the master sends one origin (`surgecast_go`),
   so every worker walks its arrivals on the same clock.
3. Every 0.5 s each worker sends `surgecast_status`: busy and idle users, the idle
   users it wants, whether its schedule is done, its outcome counts and the
   threshold samples since the last status. The master's `OpenModelShape` sizes the
   whole pool from the sum (`PoolView`); the master alone plays gates and outages,
   samples queues and evaluates thresholds.
4. At the end the master asks every worker to stop (`surgecast_finish`); each
   stops its users (busy ones finish their journey), flushes its Locust statistics
   and sends its recorder — arrival rows, dropped arrivals, ledger rows, raw
   latency-history samples and the HDR histograms as encoded text — zlib-compressed
   in chunks of at most 256 KiB with a SHA-256 (`surgecast_result`). The master
   merges them exactly (`Recorder.absorb`: rows are united, histograms decoded and
   added, counts checked) and writes one run directory with `scenarios.run.conclude`,
   the same writer as a single-process run. A worker whose results do not come in
   time is named and the run exits 3 (data lost); its absence is written to
   `run.json`/`summary.json` as `lost_workers`.

Chunks round-trip exactly::

    >>> chunks, digest = encode_payload({"rows": list(range(5))}, chunk_bytes=8)
    >>> a = Assembler()
    >>> msgs = [{"seq": i, "total": len(chunks), "sha256": digest, "data": c}
    ...         for i, c in enumerate(chunks)]
    >>> done = [a.add(m) for m in msgs]
    >>> done[-1], a.payload()
    (True, {'rows': [0, 1, 2, 3, 4]})
"""

from __future__ import annotations

from scenarios.dist_master import MasterSide, PoolView  # noqa: F401
from scenarios.dist_wire import (  # noqa: F401 (the protocol's names, re-exported)
    CHUNK_BYTES,
    GO_LEAD_S,
    MSG_ERROR,
    MSG_FINISH,
    MSG_GO,
    MSG_READY,
    MSG_RESULT,
    MSG_SETUP,
    MSG_STATUS,
    READY_WAIT_S,
    RESULTS_GRACE_S,
    STALE_S,
    STATUS_EVERY_S,
    Assembler,
    drain_watch,
    encode_payload,
    feed_watch,
    settings_from_wire,
    settings_to_wire,
    surgecast_version,
)
from scenarios.dist_worker import WorkerSide  # noqa: F401
