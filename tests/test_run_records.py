"""The night's rules read the records this run accepted from the staging files they were inserted
from (ingest.RunRecords, warehouse.accepted_records `this_run`): exactly the records the warehouse
holds, earlier runs' included, duplicates and conflicts left out; the files go with the snapshots."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
from polars.testing import assert_frame_equal

from exportaudit import evaluation, warehouse
from exportaudit.ingest import RunRecords, ingest, read_inputs
from tests.conftest import archive_record, custody_record, delivery_record, export_record, write_csv, write_jsonl

NOW = datetime(2026, 11, 20, 6, tzinfo=timezone.utc)


def test_records_read_from_staging_equal_the_warehouses(tmp_path, logs_dir):
    con = warehouse.connect(tmp_path / "w.duckdb")
    warehouse.ensure_schema(con)
    exports = [export_record(), export_record(export_id="exp-2")]
    first = {"exports": [str(write_jsonl(logs_dir / "e1.jsonl", exports))],
             "deliveries": [str(write_jsonl(logs_dir / "d1.jsonl", [delivery_record(), delivery_record(attempt_id="a2")]))]}
    ingest(con, read_inputs(first), "run-1", NOW)
    second = {
        "deliveries": [  # new records, a duplicate and a conflict of run 1's, a duplicate and a conflict within the run
            str(write_jsonl(logs_dir / "d2.jsonl", [
                delivery_record(), delivery_record(attempt_id="a2", http_status=500), delivery_record(attempt_id="n1"),
                delivery_record(attempt_id="n2", outcome="bogus"), delivery_record(attempt_id="c1", http_status=429)])),
            str(write_csv(logs_dir / "d3.csv", [delivery_record(attempt_id="n1"), delivery_record(attempt_id="c1"),
                                                delivery_record(attempt_id="n3", endpoint="https://u:p@h.example/x?s=1")])),
        ],
        "archives": [str(write_jsonl(logs_dir / "a1.jsonl", [  # a log the warehouse did not hold yet
            archive_record(), archive_record(reference_id="ref-2", archive_uri="s3://vault/key%20two?versionId=v1")]))],
        "custody_checks": [str(write_jsonl(logs_dir / "c1.jsonl", [custody_record(), custody_record()]))],
    }
    kept = RunRecords("run-2")
    ingest(con, read_inputs(second), "run-2", NOW, kept=kept)
    assert set(kept.logs) == {"deliveries", "archives", "custody_checks"}
    assert kept.logs["deliveries"].had_rows and not kept.logs["archives"].had_rows
    staging = {path.parent for staged in kept.logs.values() for path in staged.paths}
    records = evaluation.accepted(con, evaluation.NIGHT_ANSWERS, NOW, run_records=kept)
    try:
        for log in ("exports", "deliveries", "archives", "custody_checks"):
            from_staging = records[log].collect()
            from_table = warehouse.accepted_records(con, log).collect()
            assert_frame_equal(from_staging.sort(pl.all()), from_table.sort(pl.all()))
        assert sorted(records["deliveries"].collect()["attempt_id"]) == ["a2", "att-1", "n1", "n3"]
    finally:
        records.close()
        con.close()
    assert staging and not any(folder.exists() for folder in staging)


def test_a_failed_ingest_keeps_nothing(tmp_path, logs_dir):
    con = warehouse.connect(tmp_path / "w.duckdb")
    warehouse.ensure_schema(con)
    path = write_jsonl(logs_dir / "d1.jsonl", [delivery_record()])
    sources = read_inputs({"deliveries": [str(path)]})
    path.write_text("changed after the check\n")  # the file no longer is the one checked: the ingest fails
    kept = RunRecords("run-1")
    try:
        ingest(con, sources, "run-1", NOW, kept=kept)
    except Exception:
        pass
    else:
        raise AssertionError("the ingest of a changed file succeeded")
    finally:
        con.close()
    assert kept.logs == {} and not (tmp_path / "w.duckdb.ingest.tmp").exists()
