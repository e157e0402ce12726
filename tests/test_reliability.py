"""Reliability and security of the whole night: lock contention, secrets planted in
every string field, no network but loopback, inputs untouched, determinism under replay."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import subprocess
import sys
import threading
from pathlib import Path

from fastapi.testclient import TestClient

from exportaudit.api import ARCHIVE_HEALTH_PATH, RETRY_PLAN_PATH, create_app
from exportaudit.contract import LOGS, STRING
from exportaudit.cli import main
from tests.conftest import (all_text_in_db, archive_record, custody_record, delivery_record, export_record,
                            hold_warehouse, query, run_argv, write_csv, write_jsonl)

AS_OF = "2026-11-20T06:00:00Z"


def logs_in(folder: Path) -> dict[str, list[str]]:
    return {"exports": [str(write_jsonl(folder / "e.jsonl", [export_record(), export_record(export_id="exp-2")]))],
            "deliveries": [str(write_jsonl(folder / "d.jsonl", [delivery_record(), delivery_record(
                attempt_id="a2", export_id="exp-2", http_status=500)]))],
            "archives": [str(write_jsonl(folder / "a.jsonl", [archive_record()]))],
            "custody_checks": [str(write_jsonl(folder / "c.jsonl", [custody_record()]))]}


def argv(tmp_path: Path, logs: dict, *extra: str, db="w.duckdb", out="out", as_of=AS_OF) -> list[str]:
    return run_argv(tmp_path / db, tmp_path / out, logs, as_of, *extra)


def hold(db: Path, seconds: float) -> subprocess.Popen:
    return hold_warehouse(db, seconds, read_only=True)  # an analyst's read-only connection


# --- lock contention -------------------------------------------------------------------------------
def test_run_waits_for_an_analysts_read_only_connection(prefect_server, tmp_path, logs_dir, capsys, monkeypatch):
    logs = logs_in(logs_dir)
    assert main(argv(tmp_path, logs)) == 0
    monkeypatch.setenv("EXPORTAUDIT_LOCK_TIMEOUT", "120")
    # Held long enough that the run reaches the warehouse while it is held, even on a loaded
    # machine (with 2 s, the run's start-up sometimes outlasted the hold and nothing was waited for).
    holder = hold(tmp_path / "w.duckdb", 6)
    try:
        assert main(argv(tmp_path, logs)) == 0
    finally:
        holder.wait()
    assert "held by another process; waiting" in capsys.readouterr().err
    assert len(query(tmp_path / "w.duckdb", "select run_id from runs")) == 2


def test_run_gives_up_with_exit_1_and_a_clear_message(prefect_server, tmp_path, logs_dir, capsys, monkeypatch):
    logs = logs_in(logs_dir)
    assert main(argv(tmp_path, logs)) == 0
    monkeypatch.setenv("EXPORTAUDIT_LOCK_TIMEOUT", "1")
    holder = hold(tmp_path / "w.duckdb", 60)
    try:
        assert main(argv(tmp_path, logs)) == 1
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert "held by another process" in err and "gave up" in err and "Traceback" not in err
    assert len(query(tmp_path / "w.duckdb", "select run_id from runs")) == 1


def test_two_runs_started_together_both_succeed(prefect_env, tmp_path, logs_dir):
    logs = logs_in(logs_dir)
    command = [sys.executable, "-m", "exportaudit.cli", *argv(tmp_path, logs)]
    first = subprocess.Popen(command, env=prefect_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, env=prefect_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert first.wait(timeout=300) == 0 and second.wait(timeout=300) == 0
    runs = query(tmp_path / "w.duckdb", "select retry_plan_evidence_id from runs")
    assert len(runs) == 2 and runs[0] == runs[1]
    for read, accepted, quarantined, duplicate in query(
            tmp_path / "w.duckdb", "select rows_read, rows_accepted, rows_quarantined, rows_duplicate from ingested_files"):
        assert read == accepted + quarantined + duplicate
    assert query(tmp_path / "w.duckdb", "select count(*) from deliveries") == [(2,)]


# --- secrets in every string field ----------------------------------------------------------------------
SECRETS = {"password": "Pw-9f8e7d", "signature": "SigVal-55aa", "token": "TokVal-77bb", "akia": "AKIAQWERTYUIOPASDFGH",
           "bearer": "BearerVal-31", "pem": "PemBody-42", "private_ip": "10.77.66.55", "internal": "vault-9.internal",
           "corp": "gw.acme.corp", "private_connector": "hidden-gw.example.net"}
PLANTED = (f"https://svc:{SECRETS['password']}@{SECRETS['private_ip']}/x?X-Amz-Signature={SECRETS['signature']}"
           f"#t={SECRETS['token']} Authorization: Bearer {SECRETS['bearer']} {SECRETS['akia']} "
           f"https://{SECRETS['internal']}/y sftp://{SECRETS['corp']}/z "
           f"-----BEGIN PRIVATE KEY-----{SECRETS['pem']}-----END PRIVATE KEY-----")


def planted_logs(folder: Path) -> dict[str, list[str]]:
    def plant(record: dict, log: str) -> dict:
        # every free string field carries every kind of secret; ids keep a readable prefix
        for field in LOGS[log].fields:
            if field.kind == STRING:
                record[field.name] = f"{record.get(field.name) or field.name} {PLANTED}"
        return {**record, "note": PLANTED}

    exports = [plant(export_record(), "exports")]
    deliveries = [plant(delivery_record(), "deliveries"),
                  plant(delivery_record(attempt_id="p", connector_visibility="private",
                                        endpoint=f"https://{SECRETS['private_connector']}/in"), "deliveries"),
                  {**delivery_record(attempt_id="bad", outcome="nope"), "endpoint": PLANTED}]
    deliveries[1]["endpoint"] = f"https://{SECRETS['private_connector']}/in?sig={SECRETS['signature']}"
    archives = [plant(archive_record(), "archives")]
    return {"exports": [str(write_jsonl(folder / "e.jsonl", exports + ["{broken " + PLANTED]))],
            "deliveries": [str(write_csv(folder / "d.csv", deliveries))],
            "archives": [str(write_jsonl(folder / "a.jsonl", archives))],
            "custody_checks": [str(write_jsonl(folder / "c.jsonl", [plant(custody_record(), "custody_checks")]))]}


def test_no_planted_secret_in_any_output(prefect_server, tmp_path, logs_dir, capfd):
    logs = planted_logs(logs_dir)
    assert main(argv(tmp_path, logs, "--fail-on", "never")) in (0, 3)
    texts = [all_text_in_db(tmp_path / "w.duckdb")]
    texts += [p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file()]
    client = TestClient(create_app(tmp_path / "w.duckdb", token=""))
    texts += [client.post(RETRY_PLAN_PATH, json={"as_of": AS_OF}).text,
              client.get(ARCHIVE_HEALTH_PATH, params={"as_of": AS_OF}).text,
              client.get("/runs").text, client.get("/metrics").text]
    from prefect.client.orchestration import get_client
    with get_client(sync_client=True) as prefect_client:
        texts += [json.dumps(a.model_dump(mode="json")) for a in prefect_client.read_artifacts()]
    captured = capfd.readouterr()
    texts += [captured.out, captured.err]
    assert query(tmp_path / "w.duckdb", "select count(*) from quarantine")[0][0] >= 2
    for kind, secret in SECRETS.items():
        assert not any(secret in text for text in texts), kind


# --- boundary: inputs untouched, loopback only ------------------------------------------------------------
_connections: list = []
_recording = threading.Event()


def _audit(event, args):
    if event == "socket.connect" and _recording.is_set():
        _connections.append(args[1])


sys.addaudithook(_audit)


def _is_loopback(address) -> bool:
    if isinstance(address, (str, bytes)):  # a Unix socket
        return True
    return address[0] == "localhost" or ipaddress.ip_address(address[0]).is_loopback


def test_a_run_leaves_inputs_untouched_and_connects_to_loopback_only(prefect_server, tmp_path, logs_dir):
    logs = logs_in(logs_dir)
    paths = [Path(p) for ps in logs.values() for p in ps]
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    _connections.clear()
    _recording.set()
    try:
        assert main(argv(tmp_path, logs)) == 0
    finally:
        _recording.clear()
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths} == before
    assert all(_is_loopback(address) for address in _connections), _connections


# --- determinism under replay ------------------------------------------------------------------------------
def test_replaying_a_past_as_of_gives_the_answer_the_data_had_then(prefect_server, tmp_path, logs_dir):
    day_one = logs_in(logs_dir)
    assert main(argv(tmp_path, day_one, out="day1")) == 0
    later = write_jsonl(logs_dir / "d-later.jsonl", [
        delivery_record(attempt_id="late-1", attempted_at="2026-11-21T00:00:00Z", outcome="delivered"),
        delivery_record(attempt_id="late-2", export_id="exp-3", attempted_at="2026-11-21T01:00:00Z")])
    exports_later = write_jsonl(logs_dir / "e-later.jsonl", [
        export_record(verification_state="superseded", updated_at="2026-11-21T00:00:00Z")])
    day_two = {**day_one, "deliveries": day_one["deliveries"] + [str(later)],
               "exports": day_one["exports"] + [str(exports_later)]}
    assert main(argv(tmp_path, day_two, out="day2", as_of="2026-11-22T06:00:00Z")) == 0
    assert main(argv(tmp_path, day_two, out="replay")) == 0
    for name in ("retry-plan.json", "archive-health.json"):
        then = json.loads((tmp_path / "day1" / "latest" / name).read_bytes())
        replay = json.loads((tmp_path / "replay" / "latest" / name).read_bytes())
        now = json.loads((tmp_path / "day2" / "latest" / name).read_bytes())
        body = ["decisions"] if "decisions" in then else ["exports", "alerts"]
        assert [replay[k] for k in body + ["summary"]] == [then[k] for k in body + ["summary"]]
        assert replay["dataset"] != then["dataset"]  # more files ingested since: a different dataset
        if name == "retry-plan.json":  # the later records do change today's answer
            assert now["decisions"] != then["decisions"]
    assert main(argv(tmp_path, day_two, out="replay2")) == 0
    first = json.loads((tmp_path / "replay" / "latest" / "retry-plan.json").read_bytes())
    second = json.loads((tmp_path / "replay2" / "latest" / "retry-plan.json").read_bytes())
    assert first["evidence_id"] == second["evidence_id"] and first["decisions"] == second["decisions"]
