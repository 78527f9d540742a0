"""The run directory's room: its schema, its run ids and manifest, its readers and writers.

    schema    every file name, column list and clock (docs/run-directory.md)
    manifest  run ids, `claim` before writing, `stamp`, `record` in manifest.json, `verify`
    readers   JSON and CSV read whole or refused naming file, line and key
    files     one reader per file (the report, analysis, `rehearse --gates`, the drills)
    writers   one writer per file family (the commands and the fixture generator)

`from floor import rundir` gives the manifest's functions (`rundir.claim`, `rundir.record`, ...);
readers and writers are imported from their modules (they need numpy).
"""

from floor.errors import FieldError
from floor.rundir.manifest import (
    NOT_RUN_FILES,
    RUN_ID_ENV,
    RUN_ID_RE,
    BlendedRun,
    claim,
    exported,
    inherited_run_id,
    new_run_id,
    process_run_id,
    read_manifest,
    record,
    run_files,
    sha256,
    stamp,
    verify,
)
from floor.rundir.schema import MANIFEST, RUN_FILES

__all__ = [
    "MANIFEST", "NOT_RUN_FILES", "FieldError", "RUN_FILES", "RUN_ID_ENV", "RUN_ID_RE", "BlendedRun",
    "claim",
    "exported", "inherited_run_id", "new_run_id", "process_run_id", "read_manifest", "record",
    "run_files", "sha256", "stamp", "verify",
]
