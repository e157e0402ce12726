"""docs/real-sources.md end to end: `exportaudit run` with --s3-inventory, --s3-batch-report and
--svix-attempts gives the custody checks, alerts and plan records they imply; a partial or altered
report stops the run before anything is written; a report is ingested once; every input is optional."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exportaudit.cli import main
from tests.conftest import archive_record, custody_record, export_record, query, write_jsonl
from tests.test_s3_batch import DOC_FAILED_404, SHA_HEX, sha_message, write_batch
from tests.test_s3_inventory import all_versions_row, csv_gz, write_inventory
from tests.test_svix import attempt

AS_OF = "2024-05-03T00:00:00Z"  # two days after both reports (2024-05-01T10:00Z)
EXPORT_DIGEST = "sha256:" + SHA_HEX  # the SHA-256 the batch report computes for the intact copy
BUCKET = "evidence-bucket"
REFS = {  # reference_id -> archive_uri
    "ref-ok": f"s3://{BUCKET}/exports/ok.tar?versionId=v1",
    "ref-gone": f"s3://{BUCKET}/exports/gone.tar?versionId=v3",
    "ref-open": f"s3://{BUCKET}/exports/open.tar",
    "ref-lost": f"s3://{BUCKET}/exports/lost.tar?versionId=v9",
    "ref-slow": f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/exports/slow%20one.tar?versionId=v5&X-Amz-Signature=SIG",
}
EXPECTED_FINDINGS = {
    "ref-ok": set(),  # present, compliance, SHA-256 equal to the export digest
    "ref-gone": {"object_missing", "digest_unverifiable"},  # a delete marker is the key's latest; v3 not listed
    "ref-open": {"not_immutable", "digest_mismatch"},  # no lock in the inventory; another SHA-256
    "ref-lost": {"object_missing", "digest_unverifiable"},  # not listed; the checksum job got 404
    "ref-slow": {"digest_unverifiable"},  # listed and locked; the checksum task failed with a 500 (proves nothing)
}


def write_night(root: Path) -> dict[str, list[str]]:
    root.mkdir(parents=True, exist_ok=True)
    exports = write_jsonl(root / "exports.jsonl", [
        export_record(export_id=f"exp-{ref}", export_digest=EXPORT_DIGEST, generated_at="2024-04-01T00:00:00Z",
                      updated_at="2024-04-01T00:00:00Z", required_retain_until="2030-01-01T00:00:00Z")
        for ref in REFS])
    archives = write_jsonl(root / "archives.jsonl", [
        archive_record(reference_id=ref, export_id=f"exp-{ref}", archive_uri=uri, archived_digest=None,
                       lock_mode="compliance", retain_until="2034-01-01T00:00:00Z", archived_at="2024-04-02T00:00:00Z")
        for ref, uri in REFS.items()])
    custody = write_jsonl(root / "custody.jsonl", [custody_record(reference_id="ref-ok", source="manual-audit",
                                                                  checked_at="2024-04-20T00:00:00Z")])
    inventory = write_inventory(root / "s3", [csv_gz([
        all_versions_row("exports/ok.tar", "v1", retain="2031-01-01T00:00:00.000Z"),
        all_versions_row("exports/gone.tar", "v4", delete_marker="true", retain="", mode="", hold=""),
        all_versions_row("exports/gone.tar", "v2", latest="false"),
        all_versions_row("exports/open.tar", "v7", retain="", mode="", hold="OFF"),
        all_versions_row("exports/slow+one.tar", "v5"),
        all_versions_row("exports/unrelated.tar", "v8"),
        [BUCKET, "exports/short-row.tar"],  # quarantined: wrong_column_count
    ])])
    other_sha = "f" * 64
    batch = write_batch(root / "s3", {
        "succeeded": [f"{BUCKET},exports/ok.tar,v1,succeeded,200,,{sha_message()}",
                      f"{BUCKET},exports/open.tar,,succeeded,200,,{sha_message(checksum_hex=other_sha.upper())}"],
        "failed": [DOC_FAILED_404.replace("gone.tar,,", "exports/lost.tar,v9,"),
                   f'{BUCKET},exports/slow%20one.tar,v5,failed,500,InternalError,"error details: internal"',
                   f"{BUCKET},exports/x.tar,failed"],  # quarantined: wrong_column_count
    })
    svix = root / "svix" / "page-0001.json"
    svix.parent.mkdir(parents=True, exist_ok=True)
    svix.write_text(json.dumps({"data": [
        attempt(id="atmpt_1", msgId="msg_1", endpointId="ep_grc", timestamp="2024-05-02T23:00:00Z",
                status=2, statusText="fail", responseStatusCode=503, msg={"eventId": "exp-ref-ok"}),
        attempt(id="atmpt_2", msgId="msg_2", endpointId="ep_grc", timestamp="2024-05-02T22:00:00Z",
                status=2, statusText="fail", responseStatusCode=0, response="request timed out",
                msg={"eventId": "exp-ref-open"}),
        attempt(id="atmpt_3", endpointId="ep_grc", msg=...),  # no msg.eventId: missing_field
        attempt(id="atmpt_4", endpointId="ep_grc", status=1, statusText="pending"),  # attempt_not_final
    ], "iterator": None, "prevIterator": None, "done": True}))
    return {"--exports": [str(exports)], "--archives": [str(archives)], "--custody-checks": [str(custody)],
            "--s3-inventory": [str(inventory)], "--s3-batch-report": [str(batch)], "--svix-attempts": [str(svix.parent)]}


def run(tmp_path: Path, inputs: dict[str, list[str]], as_of: str = AS_OF) -> int:
    argv = ["run", "--db", str(tmp_path / "w.duckdb"), "--out", str(tmp_path / "reports"), "--as-of", as_of]
    for flag, paths in inputs.items():
        argv += [flag, *paths]
    return main(argv)


def latest(tmp_path: Path, name: str) -> dict:
    return json.loads((tmp_path / "reports" / "latest" / name).read_bytes())


def table_counts(db: Path) -> dict[str, int]:
    names = [r[0] for r in query(db, "select table_name from information_schema.tables where table_schema = 'main' "
                                     "and table_type = 'BASE TABLE'")]
    return {name: query(db, f'select count(*) from "{name}"')[0][0] for name in names}


@pytest.fixture(scope="module")
def night(tmp_path_factory, prefect_server):
    tmp_path = tmp_path_factory.mktemp("real-night")
    inputs = write_night(tmp_path / "in")
    code = run(tmp_path, inputs)
    return tmp_path, inputs, code


def test_derived_checks_give_the_implied_alerts(night):
    tmp_path, _, code = night
    assert code == 3  # the svix quarantine (2 of 4) and the short rows push the quarantine ratio over 0.05
    health = latest(tmp_path, "archive-health.json")
    found = {ref: set() for ref in REFS}
    for alert in health["alerts"]:
        found[alert["reference_id"]].add(alert["check"])
    assert found == EXPECTED_FINDINGS
    summary = health["summary"]
    assert summary["derived_custody_checks"] == {"s3_inventory": 5, "s3_batch_checksum": 3}
    assert summary["inconclusive_batch_results"] == 1
    assert health["policy"]["s3_inventory_prefixes"] == [""]
    # the archive URI's query is redacted, its version id kept as the S3 identity
    assert "SIG" not in json.dumps(health)
    db = tmp_path / "w.duckdb"
    assert query(db, "select s3_bucket, s3_key, s3_version_id from archives where reference_id = 'ref-slow'") == [
        (BUCKET, "exports/slow one.tar", "v5")]


def test_svix_attempts_are_delivery_attempts(night):
    tmp_path, _, _ = night
    plan = latest(tmp_path, "retry-plan.json")
    records = {(r["export_id"], r["destination"]): r for r in plan["decisions"]}
    ok = records[("exp-ref-ok", "ep_grc")]
    assert (ok["connector_kind"], ok["error_class"], ok["decision"], ok["reason_code"]) == (
        "svix", "unavailable", "retry", "eligible")
    assert ok["idempotency_key_present"] is True and "s3cret" not in (ok["endpoint"] or "")
    timeout = records[("exp-ref-open", "ep_grc")]
    assert (timeout["last_error_code"], timeout["error_class"], timeout["decision"]) == ("timeout", "ambiguous", "retry")
    reasons = {row[0]: row[1] for row in query(
        tmp_path / "w.duckdb", "select source_row, reason_codes from quarantine where log = 'deliveries'")}
    assert "missing_field" in reasons[3] and "attempt_not_final" in reasons[4]


def test_report_rows_accounting_and_quarantine(night):
    tmp_path, _, _ = night
    db = tmp_path / "w.duckdb"
    inputs = {(i["log"], i["name"]): i for i in latest(tmp_path, "archive-health.json")["inputs"]}
    inventory_file = next(i for (log, name), i in inputs.items() if log == "s3_inventory" and name != "manifest.json")
    assert (inventory_file["rows_read"], inventory_file["rows_accepted"], inventory_file["rows_quarantined"]) == (7, 6, 1)
    assert inputs[("s3_inventory", "manifest.json")]["rows_read"] == 0
    assert query(db, "select count(*) from s3_inventory_rows") == [(6,)]
    assert query(db, "select count(*) from s3_batch_rows") == [(4,)]
    assert sorted(query(db, "select log, reason_codes from quarantine where log like 's3_%'")) == [
        ("s3_batch_report", ["wrong_column_count"]), ("s3_inventory", ["wrong_column_count"])]
    # the dataset counts every log file, manifest and data file
    dataset = latest(tmp_path, "archive-health.json")["dataset"]
    # 3 log files, the inventory's manifest and data file, the batch's manifest and 2 result files, 1 Svix file
    assert dataset["files"] == query(db, "select count(*) from ingested_files")[0][0] == 3 + 2 + 3 + 1


def test_every_report_table_and_column_is_commented(night):
    tmp_path, _, _ = night
    db = tmp_path / "w.duckdb"
    for table in ("s3_inventory_reports", "s3_inventory_rows", "s3_batch_reports", "s3_batch_rows"):
        assert query(db, f"select comment from duckdb_tables() where table_name = '{table}'")[0][0]
        assert not query(db, f"select column_name from duckdb_columns() where table_name = '{table}' "
                             "and (comment is null or comment = '')")


def test_a_report_is_ingested_once(night):
    tmp_path, inputs, _ = night
    db = tmp_path / "w.duckdb"
    before = table_counts(db)
    run(tmp_path, inputs)
    after = table_counts(db)
    for table in ("s3_inventory_rows", "s3_batch_rows", "s3_inventory_reports", "s3_batch_reports", "quarantine",
                  "ingested_files", "archives", "deliveries"):
        assert after[table] == before[table], table
    assert all(i["skipped"] for i in latest(tmp_path, "archive-health.json")["inputs"])


def test_every_input_is_optional(night):
    tmp_path, _, _ = night
    before = latest(tmp_path, "archive-health.json")
    assert run(tmp_path, {}) == 0  # no file: the warehouse's records are evaluated again; 0 rows read, ratio 0
    after = latest(tmp_path, "archive-health.json")
    assert after["inputs"] == []
    assert (after["dataset"], after["evidence_id"]) == (before["dataset"], before["evidence_id"])


@pytest.mark.parametrize("victim", ["inventory data", "inventory manifest", "batch results", "batch manifest"])
def test_an_altered_report_stops_the_run_before_anything_is_written(night, tmp_path, victim, capsys):
    night_dir, _, _ = night
    db = night_dir / "w.duckdb"
    inputs = write_night(tmp_path / "in")
    s3 = tmp_path / "in" / "s3"
    files = {
        "inventory data": next(s3.glob("inventory/**/data/*.csv.gz")),
        "inventory manifest": Path(inputs["--s3-inventory"][0]),
        "batch results": next(s3.glob("reports/**/results/*.csv")),
        "batch manifest": Path(inputs["--s3-batch-report"][0]),
    }
    target = files[victim]
    data = bytearray(target.read_bytes())
    if victim == "batch manifest":  # no checksum file guards it: an altered MD5Checksum no longer matches
        data = bytearray(data.replace(b'"MD5Checksum": "', b'"MD5Checksum": "0', 1))
    else:
        data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    counts, mtime = table_counts(db), db.stat().st_mtime_ns
    capsys.readouterr()
    argv = ["run", "--db", str(db), "--out", str(tmp_path / "reports"), "--as-of", AS_OF]
    for flag, paths in inputs.items():
        argv += [flag, *paths]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "manifest.json" in err[0], err
    assert (table_counts(db), db.stat().st_mtime_ns) == (counts, mtime)
    assert not (tmp_path / "reports").exists()
