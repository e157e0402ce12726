"""Prefect settings for an embedded, quiet, offline run (measured: see README "Prefect"): applied before
Prefect is imported, and only where the user has not set them."""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
import urllib.request
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
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)  # Prefect does not create parents
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)


# Prefect's own temporary server, started the way Prefect starts it (uvicorn on loopback, UI and
# services off), but by us and at the very start of the command: its ~3-6 s start-up then overlaps
# our imports and the pre-read of the inputs, and our process never imports Prefect's server
# package (2.6 s) just to launch it. Measured in README "Prefect".
SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}


class TemporaryPrefectApi:
    """A Prefect API server for one command, on a free loopback port, stopped at exit."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
            env={**os.environ, **SERVER_ENV}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        # Registered before Prefect is imported, so Prefect's own exit handlers (which flush events
        # to this server) run first.
        atexit.register(self.stop)
        os.environ["PREFECT_API_URL"] = self.url

    def wait_ready(self) -> None:
        timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the temporary Prefect API server exited with code {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the temporary Prefect API server did not start within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_temporary_api() -> TemporaryPrefectApi | None:
    """Start a temporary API unless one is configured (PREFECT_API_URL) or temporary servers are off."""
    if os.environ.get("PREFECT_API_URL") or os.environ.get("PREFECT_SERVER_EPHEMERAL_ENABLED", "").lower() in (
            "false", "0"):
        return None
    return TemporaryPrefectApi()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
