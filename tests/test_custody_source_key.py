"""docs/inputs.md#natural-keys: custody checks are keyed by (reference_id, checked_at, source), and a
null source is a value like any other: two checks without a source at one instant share a key."""

from __future__ import annotations

from datetime import datetime, timezone

from exportaudit import warehouse
from exportaudit.ingest import ingest, read_inputs
from tests.conftest import custody_record, write_jsonl

NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)


def ingest_file(con, path) -> tuple[int, int, int, int]:
    [account] = ingest(con, read_inputs({"custody_checks": [str(path)]}), "run-1", NOW)
    return account.rows_read, account.rows_accepted, account.rows_quarantined, account.rows_duplicate


def test_checks_of_one_instant_from_different_sources_are_different_records(tmp_path):
    con = warehouse.connect(tmp_path / "w.duckdb")
    warehouse.ensure_schema(con)
    path = write_jsonl(tmp_path / "c.jsonl", [custody_record(source="manual-audit"),
                                               custody_record(source="vendor-scan", object_present=False)])
    assert ingest_file(con, path) == (2, 2, 0, 0)
    assert con.execute("select source from custody_checks order by source").fetchall() == [
        ("manual-audit",), ("vendor-scan",)]


def test_a_null_source_is_part_of_the_key(tmp_path):
    con = warehouse.connect(tmp_path / "w.duckdb")
    warehouse.ensure_schema(con)
    same = write_jsonl(tmp_path / "a.jsonl", [custody_record(), custody_record()])
    assert ingest_file(con, same) == (2, 1, 0, 1)
    other = write_jsonl(tmp_path / "b.jsonl", [custody_record(object_present=False)])
    assert ingest_file(con, other) == (1, 0, 1, 0)  # conflicts with the check accepted earlier
