"""The run directory's schema: every file name, every column list and the clock of each column.

One definition (docs/run-directory.md describes each file): the producers write through these
names and the readers (floor.rundir.files) read through them, so a file or a column is spelled
once::

    >>> ARRIVALS, ARRIVAL_COLUMNS[:3]
    ('arrivals.csv', ('applicant_id', 'journey', 'intended_at'))
    >>> clock("calendar_at"), clock("intended_at"), clock("wait_s")
    ('calendar', 'wall', None)
    >>> hdr_name("stamp", "service")
    'latency/stamp.service.hdr'
"""

from __future__ import annotations

from floor.vocabulary import GATE_MODES, GATES, OUTCOMES, STEPS

__all__ = [
    "ARRIVALS", "ARRIVAL_COLUMNS", "AUDIT", "BATCH_COLUMNS", "CAPACITY", "DRILL",
    "DRILL_SERVER_LEDGER",
    "DRILL_SERVER_RECORDS", "FAILURE_COLUMNS", "FORECAST", "FORECAST_COLUMNS", "GATE_SCHEDULE",
    "HDR_CLOCKS", "HISTORY_COLUMNS", "LATENCY_DIR", "LATENCY_HISTORY", "LEDGER", "LEDGER_COLUMNS",
    "LOCUST_EXCEPTIONS", "LOCUST_FAILURES", "LOCUST_LOG", "LOCUST_STATS", "LOCUST_STATS_HISTORY",
    "MANIFEST", "MAPPING", "PLAN", "PLAN_CHECK", "PLAN_COLUMNS", "PLAN_GATE_MODES", "PROBE",
    "PROBE_BATCHES", "PROBE_COLUMNS", "PROFILE", "QUEUE", "QUEUE_COLUMNS", "QUEUE_GATE_COLUMNS",
    "RECONCILIATION",
    "REPORT_HTML", "REPORT_PDF", "RUN", "RUN_FILES", "SERVER_LEDGER", "SERVER_RECORDS", "STEPS",
    "OUTCOMES", "SUMMARY", "TIMELINE", "TIMELINE_COLUMNS", "WAITING_ROOM", "clock", "hdr_name",
]

# ---------------------------------------------------------------- file names
RUN = "run.json"                            # a rehearsal's parameters
SUMMARY = "summary.json"                    # a rehearsal's outcome
PROFILE = "profile.toml"                    # a copy of the profile used
ARRIVALS = "arrivals.csv"                   # one row per scheduled arrival
LEDGER = "ledger.csv"                       # the client's evidence
QUEUE = "queue.csv"                         # the target's admin metrics, sampled
LATENCY_HISTORY = "latency_history.csv"     # per window and step
LATENCY_DIR = "latency"                     # STEP.service.hdr, STEP.intended.hdr
AUDIT = "audit.json"
SERVER_LEDGER = "server_ledger.json"
SERVER_RECORDS = "server_records.json"
RECONCILIATION = "reconciliation.json"
LOCUST_STATS = "locust_stats.csv"
LOCUST_STATS_HISTORY = "locust_stats_history.csv"
LOCUST_FAILURES = "locust_failures.csv"
LOCUST_EXCEPTIONS = "locust_exceptions.csv"
LOCUST_LOG = "locust.log"
PROBE = "probe.csv"
PROBE_BATCHES = "probe_batches.csv"
CAPACITY = "capacity.json"
PLAN = "plan.json"
TIMELINE = "timeline.csv"
GATE_SCHEDULE = "gate_schedule.json"
WAITING_ROOM = "waiting_room.json"
FORECAST = "forecast.json"
PLAN_CHECK = "plan_check.json"
MAPPING = "mapping.json"
DRILL = "drill.json"
DRILL_SERVER_LEDGER = "drill_server_ledger.json"
DRILL_SERVER_RECORDS = "drill_server_records.json"
MANIFEST = "manifest.json"
REPORT_HTML = "report.html"
REPORT_PDF = "report.pdf"

# The files a run writes: one of them in a directory means a run was there (latency/*.hdr too).
RUN_FILES = frozenset({
    RUN, SUMMARY, PROFILE, ARRIVALS, LEDGER, QUEUE, LATENCY_HISTORY, AUDIT, SERVER_LEDGER,
    SERVER_RECORDS, RECONCILIATION, LOCUST_STATS, LOCUST_STATS_HISTORY, LOCUST_FAILURES,
    LOCUST_EXCEPTIONS, PROBE, PROBE_BATCHES, CAPACITY, PLAN, TIMELINE, GATE_SCHEDULE, WAITING_ROOM,
    FORECAST, PLAN_CHECK, MAPPING, DRILL, DRILL_SERVER_LEDGER, DRILL_SERVER_RECORDS})

HDR_CLOCKS = ("service", "intended")  # from the actual send; from the arrival's intended start


def hdr_name(step: str, kind: str) -> str:
    """The name of a step's HDR histogram, relative to the run directory."""
    return f"{LATENCY_DIR}/{step}.{kind}.hdr"


# ---------------------------------------------------------------- columns
ARRIVAL_COLUMNS = ("applicant_id", "journey", "intended_at", "started_at", "finished_at",
                   "calendar_intended_at", "outcome", "ended_step", "attempts", "worker",
                   "drop_reason", "patience_s")
LEDGER_COLUMNS = ("applicant_id", "account_id", "email", "kind", "ref", "quantity", "amount",
                  "status", "at", "http_status", "payment_id", "quantity_told", "serial_number",
                  "document_serial", "idempotency_keys")
QUEUE_GATE_COLUMNS = tuple(f"gate_{g}" for g in GATES)  # the mode a target reports; rate:R
QUEUE_COLUMNS = ("at", "calendar_at", "issuer_queue", "issuer_busy", "issuer_workers",
                 "issuer_completed", "issuer_failed", "issuer_paused", "payments_queue",
                 "payments_busy", "payments_workers", *QUEUE_GATE_COLUMNS)
HISTORY_COLUMNS = ("window_start_at", "calendar_window_start_at", "step", "count", "errors",
                   "p50_ms", "p95_ms", "p99_ms", "intended_p50_ms", "intended_p95_ms",
                   "intended_p99_ms")
PROBE_COLUMNS = ("concurrency", "step", "requests", "errors", "error_ratio", "throughput_per_s",
                 "p50_ms", "p95_ms", "p99_ms", "duration_s")
BATCH_COLUMNS = ("concurrency", "phase", "start_unix", "duration_s", "stamps", "server_stamps",
                 "requests", "errors", "server_busy_share", "server_queue", "late_s")
# The timeline of `surgecast forecast`; `surgecast plan` writes these first, then PLAN_COLUMNS.
FORECAST_COLUMNS = (
    "calendar_at", "arrived_cum", "served_cum", "lost_cum", "in_system",
    "stamped_cum", "bypass_cum", "served_stamps_per_s", "issuer_capacity_stamps_per_s",
    "arrivals_per_s", "room_registration", "room_ordering", "room_stamping",
    "orbit_registration", "orbit_ordering", "orbit_stamping",
    "payments_queue", "issuer_queue", "paid_unstamped", "ghost_work", "stage",
)
PLAN_COLUMNS = ("demand_per_s", "retry_per_s", "capacity_per_s", "served_per_s", "queue", "wait_s",
                "abandoned_per_s", "turned_away_per_s", "utilisation", "capacity_stamps_per_s",
                "queue_stamps")
TIMELINE_COLUMNS = FORECAST_COLUMNS + PLAN_COLUMNS
FAILURE_COLUMNS = ("Method", "Name", "Error", "Occurrences")  # Locust's own locust_failures.csv

# A plan stage's gate modes: what a target understands, and the planner's booked and paced gates.
PLAN_GATE_MODES = (*GATE_MODES, "booked", "paced")


# ---------------------------------------------------------------- clocks
def clock(column: str) -> str | None:
    """Which clock a column uses: 'calendar' (ISO 8601 with the profile's offset), 'wall'
    (UTC, ISO 8601 with Z) or None (not a time; durations end in their unit, `_s`, `_ms`)."""
    if column.startswith("calendar_"):
        return "calendar"
    if column.endswith("_at") or column == "at":
        return "wall"
    return None
