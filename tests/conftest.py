"""Shared test helpers: tiny inline logs written to temp dirs, and warehouse readers."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from pathlib import Path

import duckdb
import pytest

os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

# CI runs the same hypothesis examples every time (a submission must not fail by luck);
# local runs keep exploring new ones.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def export_record(**overrides) -> dict:
    record = {
        "export_id": "exp-1", "release_record_ref": "rel-1", "verification_id": "ver-1",
        "verification_state": "verified", "export_digest": DIGEST_A,
        "generated_at": "2026-11-01T00:00:00Z", "updated_at": "2026-11-01T00:00:00Z",
    }
    return {**record, **overrides}


def delivery_record(**overrides) -> dict:
    record = {
        "attempt_id": "att-1", "export_id": "exp-1", "destination": "grc-webhook", "connector_kind": "webhook",
        "attempted_at": "2026-11-19T00:00:00Z", "outcome": "failed", "http_status": 503,
        "endpoint": "https://grc.example.com/hook",
    }
    return {**record, **overrides}


def archive_record(**overrides) -> dict:
    record = {
        "reference_id": "ref-1", "export_id": "exp-1", "archive_uri": "s3://vault/exp-1",
        "archive_provider": "aws_s3_object_lock", "archived_digest": DIGEST_A, "lock_mode": "compliance",
        "retain_until": "2034-01-01T00:00:00Z", "legal_hold": False, "archived_at": "2026-11-02T00:00:00Z",
    }
    return {**record, **overrides}


def custody_record(**overrides) -> dict:
    record = {"reference_id": "ref-1", "checked_at": "2026-11-19T00:00:00Z", "object_present": True}
    return {**record, **overrides}


def write_jsonl(path: Path, records: list, gz: bool = False) -> Path:
    lines = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(lines, mtime=0) if gz else lines)
    return path


def write_csv(path: Path, records: list[dict], gz: bool = False) -> Path:
    fields = list(dict.fromkeys(k for r in records for k in r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: ("true" if v is True else "false" if v is False else v) for k, v in r.items()})
    data = buffer.getvalue().encode()
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def run_argv(db: Path, out: Path, logs: dict[str, list[str]], as_of: str, *extra: str) -> list[str]:
    """`exportaudit run` arguments for logs given as {"exports": [...], "custody_checks": [...], ...}."""
    args = ["run", "--db", str(db), "--out", str(out), "--as-of", as_of, *extra]
    for log, paths in logs.items():
        args += ["--" + log.replace("_", "-"), *paths]
    return args


_HOLD_WAREHOUSE = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1], read_only=sys.argv[3] == "read-only")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold_warehouse(db: Path, seconds: float, read_only: bool):
    """Another process holding the warehouse file (an analyst, or a run) for `seconds`."""
    import subprocess
    import sys
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_WAREHOUSE, str(db), str(seconds),
                               "read-only" if read_only else "read-write"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def query(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def all_text_in_db(db: Path) -> str:
    """Every value of every table and view, as one text: for secret scans."""
    with duckdb.connect(str(db), read_only=True) as con:
        names = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main'").fetchall()]
        chunks = []
        for name in names:
            chunks.append(json.dumps(con.execute(f'select * from "{name}"').fetchall(), default=str))
        return "\n".join(chunks)


@pytest.fixture
def logs_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    return folder


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """One temporary Prefect API for the whole session (the harness takes ~10 s to start)."""
    import os
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from exportaudit.prefect_env import configure_prefect
    configure_prefect()
    from prefect.testing.utilities import prefect_test_harness
    with prefect_test_harness(server_startup_timeout=120):
        yield


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def live_api():
    """Start `exportaudit api` on 127.0.0.1 in a subprocess; yields a function db -> base URL."""
    import subprocess
    import sys
    import time
    import urllib.request

    processes = []

    def start(db: Path, token: str = "") -> str:
        port = free_port()
        env = {**os.environ, "EXPORTAUDIT_API_TOKEN": token}
        process = subprocess.Popen([sys.executable, "-m", "exportaudit.cli", "api", "--db", str(db),
                                    "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        processes.append(process)
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):  # bounded: up to ~30 s for the interpreter and imports
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1):
                    return base
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(process.stderr.read().decode())
                time.sleep(0.1)
        raise RuntimeError("API did not start")

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def prefect_env(prefect_server) -> dict:
    """Environment for a subprocess that reports to the session's temporary Prefect API."""
    from prefect.settings import PREFECT_API_URL
    return {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONDONTWRITEBYTECODE": "1"}
