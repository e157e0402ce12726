"""docs/outputs.md#http-api: a request for the as_of and policy of a recorded run, on the dataset
that run evaluated and without generated_by, is answered with that run's stored evidence
document, byte for byte; any other request is computed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from exportaudit import answers, evaluation, history, warehouse
from exportaudit.api import ARCHIVE_HEALTH_PATH, RETRY_PLAN_PATH, create_app
from exportaudit.cli import main
from exportaudit.evidence import canonical_json
from exportaudit.ingest import ingest, read_inputs
from exportaudit.policy import Policy
from tests.conftest import delivery_record, query, run_argv, write_jsonl
from tests.test_api import build_logs
from transforms.timestamps import parse_instant

AS_OF = "2026-11-20T06:00:00Z"
OTHER_AS_OF = "2026-11-21T06:00:00Z"
FILES = {"plan": "retry-plan.json", "health": "archive-health.json"}


@pytest.fixture(scope="module")
def night(prefect_server, tmp_path_factory) -> Path:
    """A warehouse after one `exportaudit run` at AS_OF, and its run directory (folder/out/latest)."""
    folder = tmp_path_factory.mktemp("stored")
    (folder / "logs").mkdir()
    logs = build_logs(folder / "logs")
    assert main(run_argv(folder / "w.duckdb", folder / "out", logs, AS_OF)) == 0
    (folder / "logs.json").write_text(json.dumps(logs))
    return folder


@pytest.fixture
def db(night, tmp_path) -> Path:
    """A copy of the night's warehouse, for tests that change it."""
    shutil.copy(night / "w.duckdb", tmp_path / "w.duckdb")
    return tmp_path / "w.duckdb"


def request(client: TestClient, name: str, as_of: str = AS_OF, **policy):
    if name == "plan":
        body = {"as_of": as_of, **({"retry_policy": policy} if policy else {})}
        return client.post(RETRY_PLAN_PATH, json=body)
    return client.get(ARCHIVE_HEALTH_PATH, params={"as_of": as_of, **policy})


def no_evaluation(monkeypatch):
    def refuse(*_, **__):
        raise AssertionError("recomputed")
    monkeypatch.setattr(evaluation, "evaluate", refuse)


def run_ids(db: Path) -> list[str]:
    return [r[0] for r in query(db, f"select run_id from runs order by {warehouse.LATEST_RUN_FIRST}")]


@pytest.mark.parametrize("name", ["plan", "health"])
def test_stored_run_answer_is_the_run_file_byte_for_byte(night, monkeypatch, name):
    no_evaluation(monkeypatch)  # served from the warehouse: the rules never run
    file_bytes = (night / "out" / "latest" / FILES[name]).read_bytes()
    response = request(TestClient(create_app(night / "w.duckdb", token="")), name)
    assert response.status_code == 200
    document = json.loads(file_bytes)
    expected_head = canonical_json({"metadata": {"metadata_kind": document["metadata_kind"],
                                                 "evidence_id": document["evidence_id"], "as_of": AS_OF,
                                                 "counts": document["summary"]}})
    assert response.content == expected_head[:-1] + b',"' + name.encode() + b'":' + file_bytes + b"}"
    assert document["run_id"] == run_ids(night / "w.duckdb")[0]  # keeps the run's run_id, generated_at, ...
    assert document["generated_by"] == "exportaudit run"


@pytest.mark.parametrize("name", ["plan", "health"])
def test_stored_answer_equals_a_computed_one_but_for_the_run_keys(night, name):
    client = TestClient(create_app(night / "w.duckdb", token=""))
    stored = request(client, name).json()
    computed = client.post(RETRY_PLAN_PATH, json={"as_of": AS_OF, "generated_by": "someone"}).json() \
        if name == "plan" else None
    if computed is None:  # health takes no generated_by: compute it the API's way, directly
        con = warehouse.connect(night / "w.duckdb", read_only=True)
        try:
            computed = {"health": answers.archive_health_answer(con, parse_instant(AS_OF), Policy()).as_dict()}
        finally:
            con.close()
    else:
        assert computed["plan"]["generated_by"] == "someone"  # generated_by given: computed
    assert computed[name]["run_id"].startswith("api-") and not stored[name]["run_id"].startswith("api-")
    run_keys = ("run_id", "generated_at", "generated_by", "inputs")
    assert {k: v for k, v in stored[name].items() if k not in run_keys} == \
           {k: v for k, v in computed[name].items() if k not in run_keys}


@pytest.mark.parametrize("name, policy", [("plan", {}), ("plan", {"max_attempts": 3}),
                                          ("health", {}), ("health", {"accept_governance_mode": True})])
def test_another_as_of_or_policy_is_computed_and_correct(night, name, policy):
    as_of = OTHER_AS_OF if not policy else AS_OF
    response = request(TestClient(create_app(night / "w.duckdb", token="")), name, as_of, **policy)
    assert response.status_code == 200
    document = response.json()[name]
    assert document["run_id"].startswith("api-") and document["generated_by"] == "exportaudit api"
    con = warehouse.connect(night / "w.duckdb", read_only=True)
    try:
        direct = (answers.retry_plan_answer if name == "plan" else answers.archive_health_answer)(
            con, parse_instant(as_of), Policy().replace(**policy))
    finally:
        con.close()
    assert document["evidence_id"] == direct["evidence_id"] and document["summary"] == direct["summary"]
    assert document["policy"] == direct["policy"] and document["as_of"] == as_of
    lists = ("decisions",) if name == "plan" else ("exports", "alerts")
    assert all(document[key] == direct.as_dict()[key] for key in lists)


def test_a_policy_override_equal_to_the_servers_is_still_stored(night, monkeypatch):
    no_evaluation(monkeypatch)
    client = TestClient(create_app(night / "w.duckdb", token=""))
    stored = request(client, "plan").json()["plan"]
    same = request(client, "plan", max_attempts=Policy().max_attempts).json()["plan"]
    assert same == stored and not same["run_id"].startswith("api-")
    # An int stays an int (15, not 15.0: the policy is part of the evidence), as in a policy file.
    same = request(client, "plan", base_delay_minutes=Policy().base_delay_minutes).json()["plan"]
    assert same == stored and not same["run_id"].startswith("api-")
    health = request(client, "health", accept_governance_mode="false").json()["health"]
    assert not health["run_id"].startswith("api-")
    health = request(client, "health", max_check_age_days=str(Policy().max_check_age_days)).json()["health"]
    assert not health["run_id"].startswith("api-")


def test_a_file_ingested_after_the_run_makes_it_compute(db, tmp_path):
    client = TestClient(create_app(db, token=""))
    before = request(client, "plan").json()["plan"]
    assert not before["run_id"].startswith("api-")
    con = warehouse.connect(db)
    try:
        new_file = write_jsonl(tmp_path / "d2.jsonl", [delivery_record(attempt_id="late", http_status=503,
                                                                       attempted_at="2026-11-20T05:00:00Z")])
        ingest(con, read_inputs({"deliveries": [str(new_file)]}), "ingest-1", datetime.now(timezone.utc))
    finally:
        con.close()
    after = request(client, "plan").json()["plan"]
    assert after["run_id"].startswith("api-")
    assert after["dataset"]["files"] == before["dataset"]["files"] + 1
    assert after["dataset"]["sha256"] != before["dataset"]["sha256"]
    health = request(client, "health").json()["health"]
    assert health["run_id"].startswith("api-")


def test_the_latest_matching_run_answers(night, db):
    logs = json.loads((night / "logs.json").read_text())
    out = night.parent / (db.parent.name + "-out")
    assert main(run_argv(db, out, logs, AS_OF)) == 0  # same files (skipped), same as_of: same dataset
    latest = run_ids(db)[0]
    plan = request(TestClient(create_app(db, token="")), "plan").json()["plan"]
    assert plan["run_id"] == latest and len(run_ids(db)) == 2
    assert (out / "latest" / "retry-plan.json").read_bytes() == canonical_json(plan)


def test_a_warehouse_without_the_table_is_computed(db):
    con = warehouse.connect(db)
    con.execute("drop table evidence_documents")
    con.close()
    response = request(TestClient(create_app(db, token="")), "plan")
    assert response.status_code == 200 and response.json()["plan"]["run_id"].startswith("api-")


def test_stored_documents_table_and_every_column_have_comments(night):
    db = night / "w.duckdb"
    [(table_comment,)] = query(db, "select comment from duckdb_tables() where table_name = 'evidence_documents'")
    assert table_comment
    columns = query(db, "select column_name, comment from duckdb_columns() where table_name = 'evidence_documents'")
    assert [c for c, _ in columns] == [c for c, _, _ in warehouse.EVIDENCE_DOCUMENTS_COLUMNS]
    assert all(comment for _, comment in columns)
    rows = query(db, "select document, evidence_id, policy_json, dataset_sha256, body_bytes from evidence_documents")
    plan = json.loads((night / "out" / "latest" / "retry-plan.json").read_bytes())
    stored = {r[0]: r for r in rows}
    assert set(stored) == {evaluation.RETRY_PLAN, evaluation.ARCHIVE_HEALTH}
    assert stored[evaluation.RETRY_PLAN][1:] == (
        plan["evidence_id"], canonical_json(plan["policy"]).decode(), plan["dataset"]["sha256"],
        len((night / "out" / "latest" / "retry-plan.json").read_bytes()))


class _FailingDocumentInsert:
    """A connection whose insert of the second evidence document fails."""

    def __init__(self, con):
        self._con, self._documents = con, 0

    def execute(self, sql, *args):
        if sql.startswith("insert into evidence_documents"):
            self._documents += 1
            if self._documents == 2:
                raise RuntimeError("disk full")
        return self._con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._con, name)


def _evaluated(con, run_id: str):
    context = evaluation.context(con, run_id=run_id, as_of=parse_instant(OTHER_AS_OF),
                                 generated_at=datetime.now(timezone.utc), generated_by="test", inputs=[])
    evaluated = evaluation.evaluate(evaluation.accepted(con), parse_instant(OTHER_AS_OF), Policy(), context)
    values = {"run_duration_seconds": 0.0, **{k: 0 for k in warehouse.RUN_METRIC_COLUMNS}}
    row = history.run_row(run_id, parse_instant(OTHER_AS_OF), datetime.now(timezone.utc), [], evaluated.plan_doc,
                          evaluated.health_doc, values, [])
    return row, evaluated


def test_documents_are_written_in_the_run_transaction(db):
    con = warehouse.connect(db)
    try:
        row, evaluated = _evaluated(con, "run-failing")
        with pytest.raises(RuntimeError, match="disk full"):
            history.record_run(_FailingDocumentInsert(con), row, evaluated.plan.records, evaluated.health.exports,
                               evaluated.health.alerts, evaluated.documents)
        assert con.execute("select count(*) from runs where run_id = 'run-failing'").fetchall() == [(0,)]
        assert con.execute("select count(*) from evidence_documents where run_id = 'run-failing'").fetchall() \
            == [(0,)]
        history.record_run(con, row, evaluated.plan.records, evaluated.health.exports, evaluated.health.alerts,
                           evaluated.documents)
    finally:
        con.close()
    client = TestClient(create_app(db, token=""))
    plan = request(client, "plan", OTHER_AS_OF).json()["plan"]
    assert plan["run_id"] == "run-failing" and canonical_json(plan) == evaluated.plan_doc.canonical_bytes()


_KILLED_RECORD = """
import sys
from tests.test_api_stored import _evaluated
from exportaudit import history, warehouse
con = warehouse.connect(sys.argv[1])
row, evaluated = _evaluated(con, "run-killed")
history.record_run(con, row, evaluated.plan.records, evaluated.health.exports, evaluated.health.alerts,
                   evaluated.documents)
"""


def test_a_run_killed_inside_its_transaction_leaves_no_documents(db):
    killed = subprocess.run([sys.executable, "-c", _KILLED_RECORD, str(db)], capture_output=True, text=True,
                            cwd=Path(__file__).parent.parent,
                            env={**os.environ, "EXPORTAUDIT_CRASH_AT": "warehouse:inserted-run"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr  # killed after the documents' inserts
    assert query(db, "select count(*) from evidence_documents where run_id = 'run-killed'") == [(0,)]
    assert query(db, "select count(*) from runs where run_id = 'run-killed'") == [(0,)]
    assert query(db, "select count(*) from evidence_documents") == [(2,)]  # the earlier run's, whole
