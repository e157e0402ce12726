"""Prefect settings for an embedded, quiet, offline run (measured: see README "Prefect"): applied before
Prefect is imported, and only where the user has not set them."""

from __future__ import annotations

import os
from pathlib import Path

from exportaudit.vocabulary import DEFAULT_DB

DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",  # first start migrates SQLite: 12-15 s here
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # no telemetry (no internet: it would log errors)
    "DO_NOT_TRACK": "1",
    "PREFECT_TASKS_DEFAULT_NO_CACHE": "true",  # never hash big frames for caching
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "PREFECT_LOGGING_LEVEL": "WARNING",  # the run prints its own progress and summary
    # Prefect's console shows no tracebacks: the command line prints one line per error (exit 1/2);
    # the Prefect API (when set) still receives every log.
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
}


def prefect_home(db: str | Path) -> Path:
    """Prefect's state sits beside the warehouse it runs against."""
    return Path(db).resolve().parent / ".prefect"


def configure_prefect(home: str | Path | None = None) -> None:
    """PREFECT_HOME defaults to .prefect beside the default warehouse, data/.prefect (a persistent dir:
    a warm start is ~6 s, a cold one ~15 s)."""
    os.environ.setdefault("PREFECT_HOME", str(Path(home) if home else prefect_home(DEFAULT_DB)))
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
