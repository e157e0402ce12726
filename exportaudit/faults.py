"""Crash points for the crash-safety tests: `EXPORTAUDIT_CRASH_AT=<point>` makes the process
SIGKILL itself when it reaches that point, the way a power cut or an OOM kill would. Unset
(always, outside tests), a checkpoint is a dictionary lookup."""

from __future__ import annotations

import os
import signal

CRASH_POINTS = (
    "ingest:inserted-accepted",  # inside the ingest transaction, after the accepted rows
    "rules:start",
    "artifacts:run-directory-half-written",
    "warehouse:inserted-run",  # inside the history transaction, after the run's rows (runs, results, documents)
    "ledger:appended",  # inside the history transaction, after the ledger entry (docs/ledger.md)
    "ledger:files-written",  # ... and after ledger.json and attestation.intoto.json, before COMMIT
    "latest:before-switch",
)


def checkpoint(point: str) -> None:
    if os.environ.get("EXPORTAUDIT_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
