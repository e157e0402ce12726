"""docs/outputs.md#http-api: the HTTP API in-process — both endpoints, policy parameters, bad input, auth."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from exportaudit import warehouse
from exportaudit.api import ARCHIVE_HEALTH_PATH, RETRY_PLAN_PATH, create_app
from exportaudit.cli import main
from exportaudit.ingest import ingest, read_inputs
from tests.conftest import (DIGEST_B, archive_record, custody_record, delivery_record, export_record, run_argv,
                            write_jsonl)

AS_OF = "2026-11-20T06:00:00Z"


def build_logs(folder: Path) -> dict[str, list[str]]:
    return {
        "exports": [str(write_jsonl(folder / "e.jsonl", [export_record(), export_record(export_id="exp-2")]))],
        "deliveries": [str(write_jsonl(folder / "d.jsonl", [
            delivery_record(attempt_id="a1", endpoint="https://u:hunter2@grc.example.com/x?sig=SECRETSIG"),
            *[delivery_record(attempt_id=f"b{i}", export_id="exp-2", http_status=500, idempotency_key="k",
                              attempted_at=f"2026-11-19T0{i}:00:00Z") for i in range(3)],
        ]))],
        "archives": [str(write_jsonl(folder / "a.jsonl", [
            archive_record(), archive_record(reference_id="ref-2", export_id="exp-2", lock_mode="governance",
                                             archived_digest=DIGEST_B)]))],
        "custody_checks": [str(write_jsonl(folder / "c.jsonl", [custody_record(checked_at="2026-11-01T00:00:00Z")]))],
    }


@pytest.fixture
def db(tmp_path, logs_dir) -> Path:
    path = tmp_path / "w.duckdb"
    con = warehouse.connect(path)
    warehouse.ensure_schema(con)
    ingest(con, read_inputs(build_logs(logs_dir)), "run-0", datetime.now(timezone.utc))
    con.close()
    return path


@pytest.fixture
def client(db):
    return TestClient(create_app(db, token=""))


def test_retry_plan_endpoint(client):
    response = client.post(RETRY_PLAN_PATH, json={"as_of": AS_OF, "generated_by": "test"})
    assert response.status_code == 200
    body = response.json()
    plan = body["plan"]
    assert plan["metadata_kind"].endswith("auditor-export-delivery-retry-plan") and plan["generated_by"] == "test"
    assert body["metadata"] == {"metadata_kind": plan["metadata_kind"], "evidence_id": plan["evidence_id"],
                                "as_of": AS_OF, "counts": plan["summary"]}
    assert [(d["export_id"], d["decision"]) for d in plan["decisions"]] == [("exp-1", "retry"), ("exp-2", "retry")]
    assert "hunter2" not in response.text and "SECRETSIG" not in response.text


def test_retry_policy_overrides_and_generated_by_does_not_change_evidence(client):
    base = client.post(RETRY_PLAN_PATH, json={"as_of": AS_OF}).json()
    other_caller = client.post(RETRY_PLAN_PATH, json={"as_of": AS_OF, "generated_by": "someone"}).json()
    assert base["metadata"]["evidence_id"] == other_caller["metadata"]["evidence_id"]
    strict = client.post(RETRY_PLAN_PATH, json={"as_of": AS_OF, "retry_policy": {"max_attempts": 3}}).json()
    assert {d["export_id"]: d["reason_code"] for d in strict["plan"]["decisions"]}["exp-2"] == "attempts_exhausted"
    assert strict["plan"]["policy"]["max_attempts"] == 3
    assert strict["metadata"]["evidence_id"] != base["metadata"]["evidence_id"]
    assert client.post(RETRY_PLAN_PATH).status_code == 200  # no body: defaults, as_of now
    leaky = client.post(RETRY_PLAN_PATH, json={"as_of": AS_OF, "generated_by": "ci token=SEKRET1 https://u:pw@h/x"})
    assert "SEKRET1" not in leaky.text and ":pw@" not in leaky.text


def test_archive_health_endpoint_and_its_parameters(client):
    body = client.get(ARCHIVE_HEALTH_PATH, params={"as_of": AS_OF}).json()
    checks = {(a["reference_id"], a["check"]) for a in body["health"]["alerts"]}
    assert ("ref-2", "governance_mode") in checks and ("ref-1", "check_stale") in checks
    relaxed = client.get(ARCHIVE_HEALTH_PATH, params={"as_of": AS_OF, "accept_governance_mode": "true",
                                                      "max_check_age_days": 30}).json()
    relaxed_checks = {(a["reference_id"], a["check"]) for a in relaxed["health"]["alerts"]}
    assert ("ref-2", "governance_mode") not in relaxed_checks and ("ref-1", "check_stale") not in relaxed_checks
    assert relaxed["health"]["policy"]["accept_governance_mode"] is True


@pytest.mark.parametrize(("method", "kwargs", "field"), [
    ("post", {"json": {"as_of": "2026-11-20T06:00:00"}}, "as_of"),
    ("post", {"json": {"as_of": 5}}, "as_of"),
    ("post", {"json": {"retry_policy": {"max_attempts": 0}}}, "retry_policy.max_attempts"),
    ("post", {"json": {"retry_policy": {"max_attempts": 2.5}}}, "retry_policy.max_attempts"),
    ("post", {"json": {"retry_policy": {"backoff_multiplier": 0.5}}}, "retry_policy.backoff_multiplier"),
    ("post", {"json": {"retry_policy": {"colour": "red"}}}, "retry_policy.colour"),
    # a number as JSON gives it, as a policy file does: no string or boolean converted
    ("post", {"json": {"retry_policy": {"base_delay_minutes": "15"}}}, "retry_policy.base_delay_minutes"),
    ("post", {"json": {"retry_policy": {"backoff_multiplier": True}}}, "retry_policy.backoff_multiplier"),
    ("post", {"json": {"unknown": 1}}, "unknown"),
    ("post", {"content": b"{not json", "headers": {"content-type": "application/json"}}, None),
    ("get", {"params": {"as_of": "yesterday"}}, "as_of"),
    ("get", {"params": {"max_check_age_days": -1}}, "max_check_age_days"),
    ("get", {"params": {"accept_governance_mode": "perhaps"}}, "accept_governance_mode"),
])
def test_bad_input_gets_a_json_4xx_naming_the_field(client, method, kwargs, field):
    path = RETRY_PLAN_PATH if method == "post" else ARCHIVE_HEALTH_PATH
    response = getattr(client, method)(path, **kwargs)
    assert 400 <= response.status_code < 500
    body = response.json()
    assert "error" in body and "Traceback" not in response.text
    if field:
        assert body["field"] == field


def test_auth_when_a_token_is_set(db):
    client = TestClient(create_app(db, token="s3cr3t-token"))
    assert client.get("/healthz").status_code == 200
    assert client.get("/redoc").status_code == 404  # not served
    for path in ("/runs", "/metrics", "/console", "/console/tiles", "/openapi.json", "/docs"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post(RETRY_PLAN_PATH, json={}).status_code == 401
    good = {"Authorization": "Bearer s3cr3t-token"}
    assert client.post(RETRY_PLAN_PATH, json={"as_of": AS_OF}, headers=good).status_code == 200
    assert client.get("/runs", headers=good).status_code == 200
    assert client.get("/openapi.json", headers=good).json()["info"]["title"] == "exportaudit"
    assert client.get("/docs", headers=good).status_code == 200


def test_metrics_runs_healthz_console_and_openapi(client):
    assert client.get("/healthz").json() == {"status": "ok", "warehouse": True}
    assert client.get("/runs").json() == {"runs": [], "totals": {"retry_plan_count": 0, "retryable_deliveries": 0,
                                                                 "archive_health_report_count": 0,
                                                                 "archive_health_alert_count": 0}}
    assert "# TYPE exportaudit_retry_plans_total counter" in client.get("/metrics").text
    page = client.get("/console").text
    assert "Plan Auditor Retry" in page and "Archive Health" in page and RETRY_PLAN_PATH in page
    assert "http://" not in page and "https://" not in page  # no external assets
    spec = client.get("/openapi.json").json()
    fields = spec["components"]["schemas"]["RetryPolicyOverrides"]["properties"]
    assert all(field.get("description") for field in fields.values())


def test_missing_warehouse_is_a_503_not_a_crash(tmp_path):
    client = TestClient(create_app(tmp_path / "none.duckdb", token=""))
    response = client.get("/runs")
    assert response.status_code == 503 and "exportaudit run" in response.json()["error"]


def test_api_answers_equal_the_cli_artifacts(prefect_server, tmp_path, logs_dir):
    logs = build_logs(logs_dir)
    assert main(run_argv(tmp_path / "cli.duckdb", tmp_path / "out", logs, AS_OF)) == 0
    plan_file = json.loads((tmp_path / "out" / "latest" / "retry-plan.json").read_bytes())
    health_file = json.loads((tmp_path / "out" / "latest" / "archive-health.json").read_bytes())
    client = TestClient(create_app(tmp_path / "cli.duckdb", token=""))
    plan = client.post(RETRY_PLAN_PATH, json={"as_of": AS_OF}).json()["plan"]
    health = client.get(ARCHIVE_HEALTH_PATH, params={"as_of": AS_OF}).json()["health"]
    assert plan["evidence_id"] == plan_file["evidence_id"] and plan["decisions"] == plan_file["decisions"]
    assert health["evidence_id"] == health_file["evidence_id"] and health["alerts"] == health_file["alerts"]
    tiles = client.get("/console/tiles").json()
    assert tiles["retry_plan_count"] == 1 and tiles["retryable_deliveries"] == plan_file["summary"]["retryable_deliveries"]
    assert "exportaudit_retryable_deliveries" in client.get("/metrics").text
