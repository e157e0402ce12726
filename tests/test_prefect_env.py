"""The command's own temporary Prefect API: started only when no API is configured, on loopback,
and stopped when the command ends (README "Prefect")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from exportaudit import prefect_env
from tests.conftest import archive_record, delivery_record, export_record, run_argv, write_jsonl


def test_no_temporary_api_when_one_is_configured(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert prefect_env.start_temporary_api() is None


def test_no_temporary_api_when_temporary_servers_are_off(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_ENABLED", "false")
    assert prefect_env.start_temporary_api() is None


def test_prefect_home_is_created_with_its_parents(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    home = tmp_path / "not" / "yet" / ".prefect"
    prefect_env.configure_prefect(home)
    assert home.is_dir()


def _servers_of(home: Path) -> list[str]:
    """uvicorn processes started with this PREFECT_HOME in their environment."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"uvicorn" in cmdline and f"PREFECT_HOME={home}".encode() in environ:
            found.append(proc.name)
    return found


def test_a_run_without_an_api_starts_its_own_and_stops_it(tmp_path):
    home = tmp_path / "prefect-home"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
    logs = {"exports": [str(write_jsonl(tmp_path / "e.jsonl", [export_record()]))],
            "deliveries": [str(write_jsonl(tmp_path / "d.jsonl", [delivery_record()]))],
            "archives": [str(write_jsonl(tmp_path / "a.jsonl", [archive_record()]))]}
    argv = run_argv(tmp_path / "w.duckdb", tmp_path / "reports", logs, "2026-11-20T06:00:00Z")
    result = subprocess.run([sys.executable, "-m", "exportaudit.cli", *argv],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "reports" / "latest" / "retry-plan.json").is_file()
    assert _servers_of(home) == []  # the server went with the command
