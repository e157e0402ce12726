"""docs/executions-and-acknowledgements.md end to end: two nights in one warehouse, the second given
the retry worker's executions (citing the first night's retry-plan evidence_id) and the alert
acknowledgements; the records, metrics, warehouse tables, report, API answers and gates that follow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from exportaudit import warehouse
from exportaudit.api import ALERT_ACKNOWLEDGEMENTS_PATH, RETRY_EXECUTIONS_PATH, create_app
from exportaudit.cli import main
from exportaudit.evidence import (ALERT_ACKNOWLEDGEMENTS_KIND, NOT_CONTENT_KEYS, RETRY_EXECUTIONS_KIND,
                                  canonical_json)
from exportaudit.gates import gates
from exportaudit.policy import Policy
from tests.conftest import (DIGEST_B, archive_record, custody_record, delivery_record, export_record, query,
                            run_argv, write_csv, write_jsonl)

T1, T2 = "2026-11-20T06:00:00Z", "2026-11-21T06:00:00Z"
UNKNOWN_PLAN = "f" * 64
STALE_ALERT = "0123456789abcdef"


def first_night_logs(folder: Path) -> dict[str, list[str]]:
    exports = write_jsonl(folder / "exports.jsonl", [export_record(export_id=f"exp-{n}") for n in (1, 2, 3, 4)])
    deliveries = write_csv(folder / "deliveries.csv", [
        delivery_record(attempt_id="a1", export_id="exp-1"),  # retry, eligible
        delivery_record(attempt_id="a2", export_id="exp-2", http_status=404),  # suppress, permanent_error
        delivery_record(attempt_id="a3", export_id="exp-3", attempted_at="2026-11-20T05:00:00Z", http_status=429,
                        retry_after_seconds=7200),  # wait until 07:00
        delivery_record(attempt_id="a4", export_id="exp-4"),  # retry, eligible: never executed
        delivery_record(attempt_id="a5", export_id="exp-1", destination="evidence-bucket", connector_kind="s3",
                        outcome="delivered", http_status=200),  # not in the plan
    ])
    archives = write_jsonl(folder / "archives.jsonl", [
        archive_record(reference_id="ref-1", export_id="exp-1"),
        archive_record(reference_id="ref-2", export_id="exp-2", archived_digest=DIGEST_B),  # digest_mismatch
        archive_record(reference_id="ref-4", export_id="exp-4", lock_mode="governance"),  # governance_mode
    ])  # exp-3 has no reference: missing_reference
    custody = write_jsonl(folder / "custody.jsonl", [custody_record(reference_id=r) for r in ("ref-1", "ref-2",
                                                                                              "ref-4")])
    return {"exports": [str(exports)], "deliveries": [str(deliveries)], "archives": [str(archives)],
            "custody_checks": [str(custody)]}


D, M, G = "da4a6041fc298728", "06ccc7a9570d2640", "b3b46bbea6891ee5"  # digest_mismatch, missing_reference, governance


def alert_id(export_id: str, reference_id: str | None, check: str) -> str:
    import hashlib
    return hashlib.sha256(f"{export_id}|{reference_id or ''}|{check}".encode()).hexdigest()[:16]


N = alert_id("exp-1", "ref-5", "not_immutable")  # first raised on night 2


def execution(execution_id: str, plan: str, export_id: str, destination: str, executed_at: str, result: str,
              attempt_id: str | None = None, worker: str | None = "w-1") -> dict:
    return {"execution_id": execution_id, "plan_evidence_id": plan, "export_id": export_id,
            "destination": destination, "executed_at": executed_at, "result": result, "attempt_id": attempt_id,
            "worker": worker}


def ack(ack_id: str, alert: str, at: str, by: str, expires_at: str | None = None, comment: str | None = None) -> dict:
    return {"ack_id": ack_id, "alert_id": alert, "acknowledged_at": at, "acknowledged_by": by,
            "expires_at": expires_at, "comment": comment}


def second_night_logs(folder: Path, p1: str) -> dict[str, list[str]]:
    executions = write_jsonl(folder / "retry_executions.jsonl", [
        execution("x1", p1, "exp-1", "grc-webhook", "2026-11-20T07:00:00Z", "delivered", "a6"),
        execution("x2", p1, "exp-2", "grc-webhook", "2026-11-20T07:30:00Z", "delivered"),
        execution("x3", p1, "exp-3", "grc-webhook", "2026-11-20T06:30:00Z", "failed", worker=None),
        execution("x4", UNKNOWN_PLAN, "exp-4", "grc-webhook", "2026-11-20T08:00:00Z", "skipped"),
        execution("x5", p1, "exp-1", "evidence-bucket", "2026-11-20T08:30:00Z", "skipped"),
        execution("x6", p1, "exp-1", "grc-webhook", "2026-11-20T09:00:00Z", "failed", "a2", worker="<b>w</b>"),
        execution("x7", p1, "exp-1", "grc-webhook", "2026-11-20T09:30:00Z", "delivered", "a-missing",
                  worker="https://u:hunter2@worker.example.com/run?token=WORKERSECRET"),
        execution("x8", p1, "exp-4", "grc-webhook", "2026-11-22T00:00:00Z", "delivered", "a4"),  # after T2
    ])
    acks = write_jsonl(folder / "alert_acknowledgements.jsonl", [
        ack("k1", D, "2026-11-20T07:00:00Z", "alice", comment="see https://t.example.com/T-1?sig=ACKSECRET"),
        ack("k2", M, "2026-11-20T07:00:00Z", "alice", expires_at="2026-11-20T08:00:00Z"),
        ack("k3a", G, "2026-11-20T07:00:00Z", "bob"),  # older, still in force
        ack("k3b", G, "2026-11-20T09:00:00Z", "carol", expires_at="2026-11-20T10:00:00Z"),  # newer, lapsed
        ack("k4", STALE_ALERT, "2026-11-20T07:00:00Z", "dave"),  # in force, no such alert: stale
        ack("k5", D, "2026-11-22T00:00:00Z", "eve"),  # after T2: ignored
        ack("k6", "fedcba9876543210", "2026-11-20T07:00:00Z", "frank", expires_at="2026-11-20T08:00:00Z"),  # lapsed
    ])
    deliveries = write_jsonl(folder / "deliveries-2.jsonl", [
        delivery_record(attempt_id="a6", export_id="exp-1", attempted_at="2026-11-20T07:00:00Z", outcome="delivered",
                        http_status=200)])
    archives = write_jsonl(folder / "archives-2.jsonl", [
        archive_record(reference_id="ref-5", export_id="exp-1", lock_mode="none",
                       archived_at="2026-11-20T12:00:00Z")])  # not_immutable, first raised on night 2
    custody = write_jsonl(folder / "custody-2.jsonl", [custody_record(reference_id="ref-5",
                                                                      checked_at="2026-11-20T13:00:00Z")])
    return {"deliveries": [str(deliveries)], "archives": [str(archives)], "custody_checks": [str(custody)],
            "retry_executions": [str(executions)], "alert_acknowledgements": [str(acks)]}


def cli_logs(logs: dict[str, list[str]]) -> dict[str, list[str]]:
    """run_argv turns log names into options; the acknowledgements option is --alert-acks."""
    return {("alert_acks" if log == "alert_acknowledgements" else log): paths for log, paths in logs.items()}


def read_latest(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (out / "latest").iterdir()}


def two_nights(folder: Path, logs_folder: Path) -> dict:
    db, out = folder / "w.duckdb", folder / "out"
    assert main(run_argv(db, out, first_night_logs(logs_folder), T1)) == 0
    night1 = read_latest(out)
    p1 = json.loads(night1["retry-plan.json"])["evidence_id"]
    second = logs_folder / "second"
    second.mkdir(exist_ok=True)
    assert main(run_argv(db, out, cli_logs(second_night_logs(second, p1)), T2)) == 0
    return {"db": db, "out": out, "p1": p1, "night1": night1, "night2": read_latest(out)}


@pytest.fixture(scope="module")
def nights(prefect_server, tmp_path_factory) -> dict:
    """Two nights in one warehouse; then the same two nights, from the same files, in another."""
    folder = tmp_path_factory.mktemp("slice")
    (folder / "logs").mkdir()
    first = two_nights(folder / "a", folder / "logs")
    again = two_nights(folder / "b", folder / "logs")
    return {**first, "again": again}


def doc(night: dict, name: str) -> dict:
    return json.loads(night[name])


def content(document: dict) -> bytes:
    return canonical_json({k: v for k, v in document.items() if k not in NOT_CONTENT_KEYS})


# ------------------------------------------------------------------ records, field by field
def test_second_night_execution_verdicts_field_by_field(nights):
    p1 = nights["p1"]
    executions = doc(nights["night2"], "retry-executions.json")
    assert executions["metadata_kind"] == RETRY_EXECUTIONS_KIND
    assert executions["policy"] == {"execution_grace_minutes": 60}
    fields = ["execution_id", "plan_evidence_id", "export_id", "destination", "executed_at", "result", "attempt_id",
              "worker", "verdict", "severity", "plan_decision", "plan_next_attempt_at"]
    redacted_worker = executions["executions"][6]["worker"]
    assert "hunter2" not in redacted_worker and "WORKERSECRET" not in redacted_worker
    assert [[record[f] for f in fields] for record in executions["executions"]] == [
        ["x3", p1, "exp-3", "grc-webhook", "2026-11-20T06:30:00Z", "failed", None, None,
         "before_next_attempt", "warning", "wait", "2026-11-20T07:00:00Z"],
        ["x1", p1, "exp-1", "grc-webhook", "2026-11-20T07:00:00Z", "delivered", "a6", "w-1",
         "conforming", None, "retry", "2026-11-19T00:15:00Z"],
        ["x2", p1, "exp-2", "grc-webhook", "2026-11-20T07:30:00Z", "delivered", None, "w-1",
         "against_decision", "critical", "suppress", None],
        ["x4", UNKNOWN_PLAN, "exp-4", "grc-webhook", "2026-11-20T08:00:00Z", "skipped", None, "w-1",
         "unknown_plan", "warning", None, None],
        ["x5", p1, "exp-1", "evidence-bucket", "2026-11-20T08:30:00Z", "skipped", None, "w-1",
         "not_in_plan", "critical", None, None],
        ["x6", p1, "exp-1", "grc-webhook", "2026-11-20T09:00:00Z", "failed", "a2", "<b>w</b>",
         "attempt_mismatch", "critical", "retry", "2026-11-19T00:15:00Z"],
        ["x7", p1, "exp-1", "grc-webhook", "2026-11-20T09:30:00Z", "delivered", "a-missing", redacted_worker,
         "attempt_not_logged", "warning", "retry", "2026-11-19T00:15:00Z"],
    ]
    assert all(list(record) == sorted(fields) for record in executions["executions"])  # canonical: keys sorted
    # exp-4's retry was never executed under P1 (x4 cites another plan; x8 is after as_of)
    assert executions["not_executed"] == [{"export_id": "exp-4", "destination": "grc-webhook",
                                           "plan_evidence_id": p1, "next_attempt_at": "2026-11-19T00:15:00Z"}]
    assert executions["summary"] == {"verdicts": {"unknown_plan": 1, "not_in_plan": 1, "against_decision": 1,
                                                  "before_next_attempt": 1, "attempt_mismatch": 1,
                                                  "attempt_not_logged": 1, "conforming": 1},
                                     "retry_not_executed": 1}


def test_second_night_acknowledgement_status_field_by_field(nights):
    acks = doc(nights["night2"], "alert-acknowledgements.json")
    health = doc(nights["night2"], "archive-health.json")
    assert acks["metadata_kind"] == ALERT_ACKNOWLEDGEMENTS_KIND and acks["policy"] == {"ack_sla_hours": 24}
    assert [a["alert_id"] for a in acks["alerts"]] == [a["alert_id"] for a in health["alerts"]]  # alert order
    fields = ["alert_id", "severity", "check", "export_id", "reference_id", "ack_status", "acknowledged_by",
              "acknowledged_at", "ack_expires_at", "first_seen_at", "overdue"]
    got = {a["alert_id"]: [a[f] for f in fields] for a in acks["alerts"]}
    assert got == {
        D: [D, "critical", "digest_mismatch", "exp-2", "ref-2", "acknowledged", "alice", "2026-11-20T07:00:00Z",
            None, T1, False],
        M: [M, "critical", "missing_reference", "exp-3", None, "expired", None, None, None, T1, True],
        G: [G, "warning", "governance_mode", "exp-4", "ref-4", "acknowledged", "bob", "2026-11-20T07:00:00Z",
            None, T1, False],
        N: [N, "critical", "not_immutable", "exp-1", "ref-5", "unacknowledged", None, None, None, T2, False],
    }
    assert acks["stale_acknowledgements"] == [{"ack_id": "k4", "alert_id": STALE_ALERT, "acknowledged_by": "dave",
                                               "acknowledged_at": "2026-11-20T07:00:00Z"}]
    assert acks["summary"] == {"acknowledged": 2, "expired": 1, "unacknowledged": 1, "overdue": 1, "stale": 1}


def test_first_night_has_no_executions_and_every_alert_unacknowledged(nights):
    executions = doc(nights["night1"], "retry-executions.json")
    assert executions["executions"] == [] and executions["not_executed"] == []
    assert executions["summary"]["verdicts"] == {v: 0 for v in executions["summary"]["verdicts"]}
    acks = doc(nights["night1"], "alert-acknowledgements.json")
    assert {(a["alert_id"], a["ack_status"], a["first_seen_at"], a["overdue"]) for a in acks["alerts"]} == {
        (D, "unacknowledged", T1, False), (M, "unacknowledged", T1, False), (G, "unacknowledged", T1, False)}


def test_documents_follow_the_evidence_rules_and_are_byte_identical_when_repeated(nights):
    import hashlib
    for name in ("retry-executions.json", "alert-acknowledgements.json"):
        for night in ("night1", "night2"):
            raw = nights[night][name]
            document = json.loads(raw)
            assert raw == canonical_json(document)
            assert document["evidence_id"] == hashlib.sha256(content(document)).hexdigest()
            assert document["schema_version"] == "exportaudit.evidence.v1"
            repeated = nights["again"][night][name]
            assert content(json.loads(repeated)) == content(document)  # same data, as_of, policy, history
            assert json.loads(repeated)["run_id"] != document["run_id"]


# ------------------------------------------------------------------ metrics, warehouse, report
def test_metrics_in_json_prometheus_and_runs_table(nights):
    metrics = json.loads(nights["night2"]["metrics.json"])["metrics"]
    expected = {"nonconforming_retry_executions": 6, "retries_not_executed": 1, "unacknowledged_critical_alerts": 2,
                "overdue_alerts": 1}
    assert {k: metrics["exportaudit_" + k] for k in expected} == expected
    prom = nights["night2"]["metrics.prom"].decode()
    for name, value in expected.items():
        assert f"# TYPE exportaudit_{name} gauge" in prom and f"\nexportaudit_{name} {value}\n" in prom
    executions = doc(nights["night2"], "retry-executions.json")
    acks = doc(nights["night2"], "alert-acknowledgements.json")
    [row] = query(nights["db"], "select nonconforming_retry_executions, retries_not_executed, "
                                "unacknowledged_critical_alerts, overdue_alerts, retry_executions_evidence_id, "
                                "alert_acknowledgements_evidence_id from latest_run")
    assert row == (6, 1, 2, 1, executions["evidence_id"], acks["evidence_id"])


def test_warehouse_tables_views_and_comments(nights):
    db = nights["db"]
    runs = [r[0] for r in query(db, f"select run_id from runs order by {warehouse.LATEST_RUN_FIRST}")]
    assert query(db, "select run_id, count(*) from retry_execution_verdicts group by all") == [(runs[0], 7)]
    assert sorted(query(db, "select run_id, count(*) from alert_ack_status group by all")) == sorted(
        [(runs[0], 4), (runs[1], 3)])
    assert query(db, "select execution_id, verdict from latest_retry_execution_verdicts order by execution_id")[0] \
        == ("x1", "conforming")
    assert query(db, f"select ack_status, overdue from latest_alert_ack_status where alert_id = '{M}'") \
        == [("expired", True)]
    assert query(db, "select count(*) from retry_executions") == [(8,)]
    assert query(db, "select count(*) from alert_acknowledgements") == [(7,)]
    for table in ("retry_executions", "alert_acknowledgements", "retry_execution_verdicts", "alert_ack_status",
                  "latest_retry_execution_verdicts", "latest_alert_ack_status"):
        [(comment,)] = query(db, f"select comment from duckdb_tables() where table_name = '{table}' union all "
                                 f"select comment from duckdb_views() where view_name = '{table}'")
        assert comment, table
    for table in ("retry_executions", "alert_acknowledgements", "retry_execution_verdicts", "alert_ack_status"):
        columns = query(db, f"select column_name, comment from duckdb_columns() where table_name = '{table}'")
        assert columns and all(comment for _, comment in columns), table
    stored = json.dumps(query(db, "select * from retry_executions"), default=str) + json.dumps(
        query(db, "select * from alert_acknowledgements"), default=str)
    assert "hunter2" not in stored and "WORKERSECRET" not in stored and "ACKSECRET" not in stored


def test_report_has_both_sections_and_escaped_tiles(nights):
    markdown = nights["night2"]["report.md"].decode()
    html = nights["night2"]["report.html"].decode()
    for text in ("## Retry worker executions", "## Alert acknowledgements", "| Nonconforming retry executions | 6 |",
                 "| Retries not executed | 1 |", "| Unacknowledged critical alerts | 2 |", "| Overdue alerts | 1 |",
                 "### Stale acknowledgements"):
        assert text in markdown, text
    for text in ("<h2>Retry worker executions</h2>", "<h2>Alert acknowledgements</h2>", "Overdue alerts</span><b>1</b>",
                 "&lt;b&gt;w&lt;/b&gt;"):
        assert text in html, text
    assert "<b>w</b>" not in html and "WORKERSECRET" not in html


# ------------------------------------------------------------------ API
def api_document(db: Path, path: str, key: str, as_of: str) -> dict:
    response = TestClient(create_app(db, token="")).get(path, params={"as_of": as_of})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {key, "metadata"}
    assert body["metadata"] == {"metadata_kind": body[key]["metadata_kind"], "evidence_id": body[key]["evidence_id"],
                                "as_of": as_of, "counts": body[key]["summary"]}
    return body[key]


@pytest.mark.parametrize("path, key, name", [
    (RETRY_EXECUTIONS_PATH, "executions", "retry-executions.json"),
    (ALERT_ACKNOWLEDGEMENTS_PATH, "acknowledgements", "alert-acknowledgements.json"),
])
def test_api_answers_equal_the_run_and_replay_the_past(nights, path, key, name):
    answer = api_document(nights["db"], path, key, T2)
    assert content(answer) == content(doc(nights["night2"], name))  # same evidence_id and records
    assert answer["run_id"].startswith("api-") and answer["inputs"] == []
    # as_of of the first night, after the second: the old records (the dataset, hence the id, has grown)
    past = api_document(nights["db"], path, key, T1)
    night1 = doc(nights["night1"], name)
    for field in ("summary", "policy", "as_of", *(k for k in night1 if isinstance(night1[k], list)
                                                  and k != "inputs")):
        assert past[field] == night1[field], field


def test_api_bad_as_of_is_a_json_422(nights):
    client = TestClient(create_app(nights["db"], token=""))
    for path in (RETRY_EXECUTIONS_PATH, ALERT_ACKNOWLEDGEMENTS_PATH):
        response = client.get(path, params={"as_of": "2026-11-21 06:00"})
        assert response.status_code == 422 and response.json()["field"] == "as_of"


def test_console_tiles_hold_the_latest_runs_follow_up_metrics(nights):
    tiles = TestClient(create_app(nights["db"], token="")).get("/console/tiles").json()
    assert {k: tiles[k] for k in ("nonconforming_retry_executions", "retries_not_executed",
                                  "unacknowledged_critical_alerts", "overdue_alerts")} == {
        "nonconforming_retry_executions": 6, "retries_not_executed": 1, "unacknowledged_critical_alerts": 2,
        "overdue_alerts": 1}


# ------------------------------------------------------------------ gates, ingest
def summaries(**verdicts) -> dict:
    base = {v: 0 for v in ("unknown_plan", "not_in_plan", "against_decision", "before_next_attempt",
                           "attempt_mismatch", "attempt_not_logged", "conforming")}
    return {"verdicts": {**base, **verdicts}, "retry_not_executed": 0}


NO_ALERTS = {"critical_alerts": 0, "warning_alerts": 0}
NO_ACKS = {"acknowledged": 0, "expired": 0, "unacknowledged": 0, "overdue": 0, "stale": 0}


@pytest.mark.parametrize("executions, acks, failing_levels", [
    (summaries(conforming=3), NO_ACKS, []),
    (summaries(not_in_plan=1), NO_ACKS, ["critical", "warning"]),
    (summaries(against_decision=1), NO_ACKS, ["critical", "warning"]),
    (summaries(attempt_mismatch=1), NO_ACKS, ["critical", "warning"]),
    (summaries(unknown_plan=1), NO_ACKS, ["warning"]),
    (summaries(before_next_attempt=1), NO_ACKS, ["warning"]),
    (summaries(attempt_not_logged=1), NO_ACKS, ["warning"]),
    ({**summaries(), "retry_not_executed": 2}, NO_ACKS, ["warning"]),
    (summaries(), {**NO_ACKS, "overdue": 1}, ["warning"]),
    (summaries(), {**NO_ACKS, "unacknowledged": 4, "expired": 1, "stale": 2}, []),
])
def test_fail_on_counts_verdicts_not_executed_and_overdue_alerts(executions, acks, failing_levels):
    for level in ("never", "warning", "critical"):
        failed = gates(Policy(), level, 0.0, NO_ALERTS, executions, acks)
        assert bool(failed) == (level in failing_levels), (level, failed)


def test_second_night_fails_the_gates_by_its_findings(nights):
    executions = doc(nights["night2"], "retry-executions.json")["summary"]
    acks = doc(nights["night2"], "alert-acknowledgements.json")["summary"]
    failed = gates(Policy(), "critical", 0.0, NO_ALERTS, executions, acks)
    assert failed == ["--fail-on critical: 3 retry execution finding(s) of severity critical"]
    failed = gates(Policy(), "warning", 0.0, NO_ALERTS, executions, acks)
    assert failed == ["--fail-on warning: 7 retry execution finding(s) of severity warning or critical",
                      "--fail-on warning: 1 overdue alert(s)"]


def test_the_new_logs_are_validated_quarantined_and_deduplicated_like_the_others(tmp_path, capsys):
    executions = write_jsonl(tmp_path / "executions.jsonl", [
        execution("x1", "p", "exp-1", "grc-webhook", "2026-11-20T07:00:00Z", "delivered", "a1"),
        execution("x1", "p", "exp-1", "grc-webhook", "2026-11-20T07:00:00Z", "delivered", "a1"),  # exact duplicate
        execution("x2", "p", "exp-1", "grc-webhook", "2026-11-20T07:00:00", "retried"),  # naive time, bad enum
        {"execution_id": "x3", "plan_evidence_id": "p"},  # missing required fields
    ])
    acks = write_csv(tmp_path / "acks.csv", [
        {"ack_id": "k1", "alert_id": D, "acknowledged_at": "2026-11-20T07:00:00Z", "acknowledged_by": "Bearer abc.def",
         "expires_at": "", "comment": "https://x.example.com/?token=QSECRET"},
        {"ack_id": "k1", "alert_id": D, "acknowledged_at": "2026-11-20T07:00:00Z", "acknowledged_by": "someone else",
         "expires_at": "", "comment": ""},  # conflicting duplicate
    ])
    db = tmp_path / "w.duckdb"
    assert main(["ingest", "--db", str(db), "--retry-executions", str(executions), "--alert-acks", str(acks)]) == 0
    assert query(db, "select log, rows_read, rows_accepted, rows_quarantined, rows_duplicate from ingested_files "
                     "order by log") == [("alert_acknowledgements", 2, 0, 2, 0), ("retry_executions", 4, 1, 2, 1)]
    reasons = query(db, "select log, source_row, reason_codes from quarantine order by log, source_row")
    assert reasons == [("alert_acknowledgements", 1, ["conflicting_duplicate"]),
                       ("alert_acknowledgements", 2, ["conflicting_duplicate"]),
                       ("retry_executions", 3, ["naive_timestamp", "unknown_enum_value"]),
                       ("retry_executions", 4, ["missing_required_field"])]
    raw = json.dumps(query(db, "select raw_text from quarantine"))
    assert "QSECRET" not in raw and "abc.def" not in raw


# ------------------------------------------------------------------ the sample's second night
def test_sample_second_night_plants_every_verdict_and_acknowledgement_case(prefect_server, tmp_path):
    from exportaudit.sample import write_sample
    from exportaudit.sample.second_night import ACK_CASES, EXECUTION_CASES, write_second_night

    files = write_sample(tmp_path / "sample")
    db, out = tmp_path / "w.duckdb", tmp_path / "out"
    assert main(run_argv(db, out, {log: [str(path)] for log, path in files.items()}, T1)) == 0
    second = write_second_night(db, tmp_path / "second")
    assert write_second_night(db, tmp_path / "again") and all(  # deterministic given the first night
        (tmp_path / "again" / p.name).read_bytes() == p.read_bytes() for p in second.values())
    logs = {"retry_executions": [str(second["retry_executions"])],
            "alert_acknowledgements": [str(second["alert_acknowledgements"])]}
    assert main(run_argv(db, out, cli_logs(logs), T2)) == 0
    executions = json.loads((out / "latest" / "retry-executions.json").read_bytes())
    assert {e["execution_id"]: e["verdict"] for e in executions["executions"]} == {
        execution_id: verdict for verdict, execution_id in EXECUTION_CASES.items()}
    assert executions["summary"]["retry_not_executed"] > 0
    acks = json.loads((out / "latest" / "alert-acknowledgements.json").read_bytes())
    by_ack = {a["ack_id"]: a for a in query(db, "select ack_id, alert_id from alert_acknowledgements")
              for a in [dict(zip(("ack_id", "alert_id"), a))]}
    status = {a["alert_id"]: a for a in acks["alerts"]}
    assert status[by_ack[ACK_CASES["acknowledged"]]["alert_id"]]["ack_status"] == "acknowledged"
    assert status[by_ack[ACK_CASES["expired"]]["alert_id"]]["ack_status"] == "expired"
    lapsed_critical = status[by_ack[ACK_CASES["overdue"]]["alert_id"]]
    assert (lapsed_critical["ack_status"], lapsed_critical["overdue"]) == ("expired", True)
    assert [s["ack_id"] for s in acks["stale_acknowledgements"]] == [ACK_CASES["stale"]]
    assert "planted-ticket-token" not in json.dumps(query(db, "select comment from alert_acknowledgements"))


def test_policy_keys_have_their_own_sections_and_are_validated(tmp_path):
    from exportaudit.policy import PolicyError, load_policy
    assert Policy().section("executions") == {"execution_grace_minutes": 60}
    assert Policy().section("acknowledgements") == {"ack_sla_hours": 24}
    policy_file = tmp_path / "p.toml"
    policy_file.write_text("execution_grace_minutes = 0.5\nack_sla_hours = 48\n")
    assert load_policy(policy_file).section("executions") == {"execution_grace_minutes": 0.5}
    assert load_policy(policy_file).section("acknowledgements") == {"ack_sla_hours": 48}
    for text, key in (("execution_grace_minutes = -1", "execution_grace_minutes"),
                      ('ack_sla_hours = "1"', "ack_sla_hours")):
        policy_file.write_text(text + "\n")
        with pytest.raises(PolicyError, match=key):
            load_policy(policy_file)


def test_a_later_as_of_checks_the_second_nights_plan_and_judges_later_executions(nights):
    """At a third as_of (through the API, no run): the previous plan is the second night's, which no
    execution cites, and x8 (after the second night) is judged now."""
    t3 = "2026-11-22T06:00:00Z"
    answer = api_document(nights["db"], RETRY_EXECUTIONS_PATH, "executions", t3)
    plan2 = doc(nights["night2"], "retry-plan.json")
    expected = sorted((r["export_id"], r["destination"]) for r in plan2["decisions"] if r["decision"] == "retry")
    assert expected == [("exp-3", "grc-webhook"), ("exp-4", "grc-webhook")]
    assert [(r["export_id"], r["destination"], r["plan_evidence_id"]) for r in answer["not_executed"]] == [
        (*delivery, plan2["evidence_id"]) for delivery in expected]
    x8 = answer["executions"][-1]
    assert (x8["execution_id"], x8["verdict"], x8["plan_decision"]) == ("x8", "conforming", "retry")


def test_a_warehouse_from_before_the_slice_gets_a_503_not_a_crash(nights, tmp_path):
    import shutil
    db = tmp_path / "old.duckdb"
    shutil.copy(nights["db"], db)
    con = warehouse.connect(db)
    con.execute("drop view latest_retry_execution_verdicts; drop table retry_execution_verdicts; "
                "drop table retry_executions")
    con.close()
    response = TestClient(create_app(db, token="")).get(RETRY_EXECUTIONS_PATH, params={"as_of": T2})
    assert response.status_code == 503 and "exportaudit run" in response.json()["error"]
