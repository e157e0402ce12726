"""An empty string is null in an optional field and missing in a required one, whatever the
field's type and the file's format (docs/inputs.md): `""` in JSON, a blank or quoted-empty CSV
cell, an empty value in a Parquet string column. Duplicates are judged on the stored null."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl
import pytest

from exportaudit.cli import main
from tests.conftest import archive_record, custody_record, delivery_record, export_record, query, write_jsonl

BASE_RECORD = {"exports": export_record, "deliveries": delivery_record, "archives": archive_record,
               "custody_checks": custody_record}


# --- writing one log in each format, with cells kept exactly as given ----------------------------

def _cell(value) -> str:
    return "true" if value is True else "false" if value is False else "" if value is None else str(value)


def _write_csv(path: Path, records: list[dict], quoting: int) -> Path:
    fields = list(dict.fromkeys(k for r in records for k in r))
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=quoting, lineterminator="\n")
    writer.writerow(fields)
    writer.writerows([_cell(r.get(k)) for k in fields] for r in records)
    path.write_text(buffer.getvalue())
    return path


def write_log(folder: Path, log: str, fmt: str, records: list[dict]) -> Path:
    """`fmt`: jsonl (`""`), csv (bare blank cell), csv_quoted (every cell quoted, so `""`), parquet
    (native columns; a field given as "" is a string column)."""
    path = folder / f"{log}.{fmt.removesuffix('_quoted')}"
    if fmt == "jsonl":
        return write_jsonl(path, records)
    if fmt == "csv":
        return _write_csv(path, records, csv.QUOTE_MINIMAL)  # writes "" as a bare blank cell
    if fmt == "csv_quoted":
        return _write_csv(path, records, csv.QUOTE_ALL)
    pl.DataFrame(records).write_parquet(path)
    return path


def ingest_one_log(tmp_path: Path, log: str, fmt: str, records: list[dict]) -> Path:
    """Ingest `records` as the `log` log in format `fmt`, the other logs minimal JSONL; the warehouse."""
    folder = tmp_path / "logs"
    folder.mkdir(exist_ok=True)
    given = {name: write_jsonl(folder / f"base-{name}.jsonl", [make()])
             for name, make in BASE_RECORD.items() if name != "custody_checks"}
    given[log] = write_log(folder, log, fmt, records)
    db = tmp_path / "w.duckdb"
    argv = ["ingest", "--db", str(db)]
    for name, path in given.items():
        argv += ["--" + name.replace("_", "-"), str(path)]
    assert main(argv) == 0
    for read, accepted, quarantined, duplicate in query(
            db, "select rows_read, rows_accepted, rows_quarantined, rows_duplicate from ingested_files"):
        assert read == accepted + quarantined + duplicate
    return db


FORMATS = ["jsonl", "csv", "csv_quoted", "parquet"]

# (log, field): every optional field of the contract, by kind.
OPTIONAL_FIELDS = [
    pytest.param("deliveries", "http_status", id="int-http_status"),
    pytest.param("deliveries", "retry_after_seconds", id="int-retry_after_seconds"),
    pytest.param("archives", "legal_hold", id="bool-legal_hold"),
    pytest.param("custody_checks", "observed_legal_hold", id="bool-observed_legal_hold"),
    pytest.param("exports", "required_retain_until", id="timestamp-required_retain_until"),
    pytest.param("archives", "retain_until", id="timestamp-retain_until"),
    pytest.param("custody_checks", "observed_retain_until", id="timestamp-observed_retain_until"),
    pytest.param("archives", "archived_digest", id="digest-archived_digest"),
    pytest.param("custody_checks", "observed_digest", id="digest-observed_digest"),
    pytest.param("deliveries", "connector_visibility", id="enum-connector_visibility"),
    pytest.param("archives", "lock_mode", id="enum-lock_mode"),
    pytest.param("custody_checks", "observed_lock_mode", id="enum-observed_lock_mode"),
    pytest.param("exports", "verification_id", id="string-verification_id"),
    pytest.param("deliveries", "idempotency_key", id="string-idempotency_key"),
    pytest.param("deliveries", "endpoint", id="string-endpoint"),
    pytest.param("deliveries", "error_code", id="code-error_code"),
]

# (log, field): required fields of each kind; "" in them is missing_required_field.
REQUIRED_FIELDS = [
    pytest.param("exports", "export_id", id="string-export_id"),
    pytest.param("exports", "verification_state", id="enum-verification_state"),
    pytest.param("exports", "export_digest", id="digest-export_digest"),
    pytest.param("exports", "generated_at", id="timestamp-generated_at"),
    pytest.param("custody_checks", "object_present", id="bool-object_present"),
    pytest.param("deliveries", "connector_kind", id="code-connector_kind"),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("log", "field"), OPTIONAL_FIELDS)
def test_empty_string_in_an_optional_field_is_stored_as_null(tmp_path, log, field, fmt):
    db = ingest_one_log(tmp_path, log, fmt, [BASE_RECORD[log](**{field: ""})])
    assert query(db, "select log, reason_details from quarantine") == []
    assert query(db, f"select {field} from {log}") == [(None,)]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("log", "field"), REQUIRED_FIELDS)
def test_empty_string_in_a_required_field_is_missing(tmp_path, log, field, fmt):
    db = ingest_one_log(tmp_path, log, fmt, [BASE_RECORD[log](**{field: ""})])
    assert query(db, f"select count(*) from {log}") == [(0,)]
    assert query(db, "select log, source_row, reason_codes, reason_details from quarantine") == [
        (log, 1, ["missing_required_field"], [f"missing_required_field:{field}"])]


def test_a_non_empty_string_in_an_int_or_bool_field_is_still_a_wrong_type(tmp_path):
    records = [delivery_record(attempt_id="a1", http_status=" "), delivery_record(attempt_id="a2", http_status="404"),
               delivery_record(attempt_id="a3", retry_after_seconds="")]
    db = ingest_one_log(tmp_path, "deliveries", "jsonl", records)
    assert query(db, "select attempt_id from deliveries") == [("a3",)]
    assert sorted(query(db, "select source_row, reason_codes from quarantine")) == [
        (1, ["wrong_type"]), (2, ["wrong_type"])]


def _without(record: dict, field: str) -> dict:
    return {k: v for k, v in record.items() if k != field}


# Pairs of records with one key: "" is stored as null, so it duplicates an absent or null
# value exactly, and conflicts with any other value (defaults are not applied: "" is not "none").
DUPLICATE_CASES = [
    pytest.param(delivery_record(error_code=""), _without(delivery_record(), "error_code"), "duplicate",
                 id="code-empty-vs-absent"),
    pytest.param(delivery_record(http_status=""), delivery_record(http_status=None), "duplicate",
                 id="int-empty-vs-null"),
    pytest.param(delivery_record(http_status=""), delivery_record(http_status=503), "conflict",
                 id="int-empty-vs-value"),
    pytest.param(archive_record(lock_mode=""), _without(archive_record(), "lock_mode"), "duplicate",
                 id="enum-empty-vs-absent"),
    pytest.param(archive_record(lock_mode=""), archive_record(lock_mode="none"), "conflict",
                 id="enum-empty-vs-default"),
    pytest.param(archive_record(legal_hold=""), archive_record(legal_hold=False), "conflict",
                 id="bool-empty-vs-default"),
]


@pytest.mark.parametrize(("first", "second", "expected"), DUPLICATE_CASES)
def test_duplicates_are_judged_on_the_stored_null(tmp_path, first, second, expected):
    log = "deliveries" if "attempt_id" in first else "archives"
    db = ingest_one_log(tmp_path, log, "jsonl", [first, second])
    [(accepted, quarantined, duplicate)] = query(
        db, f"select rows_accepted, rows_quarantined, rows_duplicate from ingested_files "
            f"where file_name = '{log}.jsonl'")
    if expected == "duplicate":
        assert (accepted, quarantined, duplicate) == (1, 0, 1)
    else:
        assert (accepted, quarantined, duplicate) == (0, 2, 0)
        assert query(db, "select distinct reason_codes from quarantine") == [(["conflicting_duplicate"],)]


def test_empty_strings_duplicate_across_formats(tmp_path):
    """A JSON "" and a blank CSV cell are the same stored null: the second file holds a duplicate."""
    folder = tmp_path / "logs"
    folder.mkdir()
    first = write_log(folder, "deliveries", "jsonl", [delivery_record(http_status="", error_code="")])
    second = write_log(folder, "deliveries", "csv_quoted", [delivery_record(http_status="", error_code="")])
    exports = write_jsonl(folder / "e.jsonl", [export_record()])
    archives = write_jsonl(folder / "a.jsonl", [archive_record()])
    db = tmp_path / "w.duckdb"
    assert main(["ingest", "--db", str(db), "--exports", str(exports), "--deliveries", str(first), str(second),
                 "--archives", str(archives)]) == 0
    assert query(db, "select http_status, error_code from deliveries") == [(None, None)]
    assert sorted(query(db, "select file_name, rows_accepted, rows_duplicate from ingested_files "
                            "where log = 'deliveries'")) == [("deliveries.csv", 0, 1), ("deliveries.jsonl", 1, 0)]


def test_the_quoted_empty_csv_cell_really_is_quoted(tmp_path):
    """Guards the fixture: csv_quoted must write `""`, not a bare blank."""
    path = write_log(tmp_path, "deliveries", "csv_quoted", [delivery_record(http_status="")])
    assert ',"",' in path.read_text()
