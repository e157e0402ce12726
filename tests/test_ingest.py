"""docs/inputs.md#input-logs, docs/inputs.md#bad-input-and-quarantine, docs/inputs.md#fine-print-on-types-and-formats: reading the four logs, quarantine with every reason, duplicates, accounting."""

from __future__ import annotations

import gzip
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from exportaudit.cli import main
from tests.conftest import (archive_record, delivery_record, export_record,
                            query, write_csv, write_jsonl)
from transforms.timestamps import UTC_US


def ingest(tmp_path: Path, exports, deliveries, archives, custody=None) -> int:
    argv = ["ingest", "--db", str(tmp_path / "w.duckdb"), "--exports", *map(str, exports),
            "--deliveries", *map(str, deliveries), "--archives", *map(str, archives)]
    if custody:
        argv += ["--custody-checks", *map(str, custody)]
    return main(argv)


def minimal_logs(folder: Path) -> dict[str, Path]:
    return {
        "exports": write_jsonl(folder / "exports.jsonl", [export_record()]),
        "deliveries": write_jsonl(folder / "deliveries.jsonl", [delivery_record()]),
        "archives": write_jsonl(folder / "archives.jsonl", [archive_record()]),
    }


def quarantine_reasons(db: Path) -> dict[int, list[str]]:
    return {row: reasons for row, reasons in query(db, "select source_row, reason_codes from quarantine")}


def accounting_adds_up(db: Path) -> None:
    for read, accepted, quarantined, duplicate in query(
            db, "select rows_read, rows_accepted, rows_quarantined, rows_duplicate from ingested_files"):
        assert read == accepted + quarantined + duplicate


BAD_EXPORTS = [
    (export_record(export_id=None), "missing_required_field"),
    ({k: v for k, v in export_record().items() if k != "release_record_ref"}, "missing_required_field"),
    (export_record(release_record_ref=""), "missing_required_field"),
    (export_record(export_id=42), "wrong_type"),
    (export_record(verification_state="Verified"), "unknown_enum_value"),
    (export_record(updated_at="2026-11-01T00:00:00"), "naive_timestamp"),
    (export_record(updated_at="2026-11-01 00:00:00Z"), "invalid_timestamp"),
    (export_record(updated_at="2026-11-01T00:00:00z"), "invalid_timestamp"),
    (export_record(updated_at="2026-02-30T00:00:00Z"), "invalid_timestamp"),
    (export_record(export_digest="sha256:" + "A" * 64), "malformed_digest"),
    (export_record(export_digest="sha256:abc"), "malformed_digest"),
    (export_record(generated_at=1700000000), "wrong_type"),
    ("{not json", "malformed_json"),
    ("[1, 2]", "malformed_json"),
    ('"just a string"', "malformed_json"),
]


@pytest.mark.parametrize(("record", "reason"), BAD_EXPORTS)
def test_each_bad_export_is_quarantined_with_its_reason(tmp_path, logs_dir, record, reason):
    logs = minimal_logs(logs_dir)
    write_jsonl(logs["exports"], [export_record(export_id="ok"), record])
    assert ingest(tmp_path, [logs["exports"]], [logs["deliveries"]], [logs["archives"]]) == 0
    db = tmp_path / "w.duckdb"
    assert reason in quarantine_reasons(db)[2]
    assert query(db, "select export_id from exports") == [("ok",)]
    accounting_adds_up(db)


BAD_DELIVERIES = [
    (delivery_record(http_status="404"), "wrong_type"),
    (delivery_record(http_status=404.0), "wrong_type"),
    (delivery_record(http_status=700), "out_of_range"),
    (delivery_record(http_status=99), "out_of_range"),
    (delivery_record(retry_after_seconds=31_536_001), "out_of_range"),
    (delivery_record(retry_after_seconds=-1), "out_of_range"),
    (delivery_record(http_status=123456789012345678901234), "out_of_range"),
    (delivery_record(outcome="ok"), "unknown_enum_value"),
    (delivery_record(connector_visibility="PUBLIC"), "unknown_enum_value"),
    (delivery_record(connector_kind="  \t "), "missing_required_field"),
    (delivery_record(destination={"name": "x"}), "wrong_type"),
    (delivery_record(attempted_at="2026-11-19"), "invalid_timestamp"),
]


@pytest.mark.parametrize(("record", "reason"), BAD_DELIVERIES)
def test_each_bad_delivery_is_quarantined_with_its_reason(tmp_path, logs_dir, record, reason):
    logs = minimal_logs(logs_dir)
    write_jsonl(logs["deliveries"], [delivery_record(attempt_id="ok"), record])
    assert ingest(tmp_path, [logs["exports"]], [logs["deliveries"]], [logs["archives"]]) == 0
    assert reason in quarantine_reasons(tmp_path / "w.duckdb")[2]


def test_every_reason_is_listed_not_just_the_first(tmp_path, logs_dir):
    logs = minimal_logs(logs_dir)
    bad = export_record(export_id=None, verification_state="nope", export_digest="md5:1",
                        generated_at="2026-01-01T00:00:00", updated_at=7)
    write_jsonl(logs["exports"], [bad])
    ingest(tmp_path, [logs["exports"]], [logs["deliveries"]], [logs["archives"]])
    reasons = set(quarantine_reasons(tmp_path / "w.duckdb")[1])
    assert reasons == {"missing_required_field", "unknown_enum_value", "malformed_digest", "naive_timestamp",
                       "wrong_type"}


def test_csv_types_are_strict(tmp_path, logs_dir):
    logs = minimal_logs(logs_dir)
    rows = [delivery_record(attempt_id="a1", http_status="404"), delivery_record(attempt_id="a2", http_status="4o4"),
            delivery_record(attempt_id="a3", http_status="404.0"), delivery_record(attempt_id="a4", http_status=""),
            delivery_record(attempt_id="a5", http_status="\u0665\u0660\u0660")]  # 500 in Arabic-Indic digits
    csv_path = write_csv(logs_dir / "deliveries.csv", rows)
    archives = write_csv(logs_dir / "archives.csv", [archive_record(reference_id="r1", legal_hold="yes"),
                                                    archive_record(reference_id="r2", legal_hold="true"),
                                                    archive_record(reference_id="r3", legal_hold="")])
    ingest(tmp_path, [logs["exports"]], [csv_path], [archives])
    db = tmp_path / "w.duckdb"
    assert query(db, "select attempt_id, http_status from deliveries order by 1") == [("a1", 404), ("a4", None)]
    assert query(db, "select reference_id, legal_hold from archives order by 1") == [("r2", True), ("r3", None)]
    assert sorted(query(db, "select log, source_row, reason_codes from quarantine")) == [
        ("archives", 1, ["wrong_type"]), ("deliveries", 2, ["wrong_type"]), ("deliveries", 3, ["wrong_type"]),
        ("deliveries", 5, ["wrong_type"])]


def test_codes_are_trimmed_and_lowercased_other_strings_kept(tmp_path, logs_dir):
    logs = minimal_logs(logs_dir)
    write_jsonl(logs["deliveries"], [delivery_record(connector_kind=" S3\n", error_code="\tTimeOut ",
                                                     destination=" Grc Hook ")])
    ingest(tmp_path, [logs["exports"]], [logs["deliveries"]], [logs["archives"]])
    assert query(tmp_path / "w.duckdb", "select connector_kind, error_code, destination from deliveries") == [
        ("s3", "timeout", " Grc Hook ")]


def test_timestamps_are_stored_in_utc_with_microseconds_truncated(tmp_path, logs_dir):
    logs = minimal_logs(logs_dir)
    write_jsonl(logs["exports"], [export_record(updated_at="2026-11-01T05:30:00.1234569+05:30"),
                                  export_record(export_id="e2", updated_at="2026-11-01T00:00-0100"),
                                  export_record(export_id="e3", updated_at="2026-11-01T00:00:00+02")])
    ingest(tmp_path, [logs["exports"]], [logs["deliveries"]], [logs["archives"]])
    rows = query(tmp_path / "w.duckdb", "select export_id, strftime(updated_at, '%Y-%m-%dT%H:%M:%S.%f') from exports order by 1")
    assert rows == [("e2", "2026-11-01T01:00:00.000000"), ("e3", "2026-10-31T22:00:00.000000"),
                    ("exp-1", "2026-11-01T00:00:00.123456")]


def test_exact_and_conflicting_duplicates_within_and_across_files(tmp_path, logs_dir):
    logs = minimal_logs(logs_dir)
    first = write_jsonl(logs_dir / "a.jsonl", [
        delivery_record(attempt_id="same", extra_field="ignored"),
        delivery_record(attempt_id="same", extra_field="differs only outside the contract"),
        delivery_record(attempt_id="clash", http_status=500),
    ])
    second = write_csv(logs_dir / "b.csv", [
        delivery_record(attempt_id="same"),  # same values in CSV: still an exact duplicate
        delivery_record(attempt_id="clash", http_status=502),
    ])
    ingest(tmp_path, [logs["exports"]], [first, second], [logs["archives"]])
    db = tmp_path / "w.duckdb"
    assert query(db, "select attempt_id from deliveries") == [("same",)]
    assert sorted(query(db, "select source_file, source_row, reason_codes from quarantine")) == [
        ("a.jsonl", 3, ["conflicting_duplicate"]), ("b.csv", 2, ["conflicting_duplicate"])]
    assert sorted(query(db, "select file_name, rows_read, rows_accepted, rows_quarantined, rows_duplicate "
                            "from ingested_files where log = 'deliveries'")) == [
        ("a.jsonl", 3, 1, 1, 1), ("b.csv", 2, 0, 1, 1)]


def test_an_invalid_record_does_not_make_a_valid_one_conflict(tmp_path, logs_dir):
    logs = minimal_logs(logs_dir)
    write_jsonl(logs["deliveries"], [delivery_record(), delivery_record(outcome="bogus")])
    ingest(tmp_path, [logs["exports"]], [logs["deliveries"]], [logs["archives"]])
    db = tmp_path / "w.duckdb"
    assert query(db, "select attempt_id from deliveries") == [("att-1",)]
    assert query(db, "select reason_codes from quarantine") == [(["unknown_enum_value"],)]


def test_conflict_with_an_earlier_run_quarantines_only_the_new_record(tmp_path, logs_dir):
    logs = minimal_logs(logs_dir)
    ingest(tmp_path, [logs["exports"]], [logs["deliveries"]], [logs["archives"]])
    later = write_jsonl(logs_dir / "later.jsonl", [delivery_record(http_status=500), delivery_record(attempt_id="new")])
    ingest(tmp_path, [logs["exports"]], [later], [logs["archives"]])
    same_again = write_jsonl(logs_dir / "again.jsonl", [delivery_record(), delivery_record(attempt_id="new2")])
    ingest(tmp_path, [logs["exports"]], [same_again], [logs["archives"]])
    db = tmp_path / "w.duckdb"
    assert query(db, "select attempt_id, http_status from deliveries order by 1") == [
        ("att-1", 503), ("new", 503), ("new2", 503)]
    assert query(db, "select source_file, reason_codes from quarantine") == [("later.jsonl", ["conflicting_duplicate"])]
    assert query(db, "select rows_duplicate from ingested_files where file_name = 'again.jsonl'") == [(1,)]


def test_a_runs_disagreeing_records_all_conflict_even_one_equal_to_an_earlier_runs(tmp_path, logs_dir):
    """"When the valid records of one key disagree, every one of them is quarantined, none counted as a
    duplicate": the copy equal to the accepted record conflicts with the run's other copy."""
    logs = minimal_logs(logs_dir)
    ingest(tmp_path, [logs["exports"]], [logs["deliveries"]], [logs["archives"]])
    equal = write_jsonl(logs_dir / "equal.jsonl", [delivery_record(), delivery_record(attempt_id="other")])
    different = write_jsonl(logs_dir / "different.jsonl", [delivery_record(http_status=500)])
    ingest(tmp_path, [logs["exports"]], [equal, different], [logs["archives"]])
    db = tmp_path / "w.duckdb"
    assert query(db, "select attempt_id, http_status from deliveries order by 1") == [("att-1", 503), ("other", 503)]  # the earlier one stays
    assert sorted(query(db, "select source_file, reason_codes from quarantine")) == [
        ("different.jsonl", ["conflicting_duplicate"]), ("equal.jsonl", ["conflicting_duplicate"])]
    assert query(db, "select sum(rows_duplicate) from ingested_files where file_name like '%equal%' "
                     "or file_name like '%different%'") == [(0,)]


def test_reingesting_the_same_file_adds_nothing(tmp_path, logs_dir, capsys):
    logs = minimal_logs(logs_dir)
    ingest(tmp_path, [logs["exports"]], [logs["deliveries"]], [logs["archives"]])
    copy = logs_dir / "renamed-copy.jsonl"
    copy.write_bytes(logs["deliveries"].read_bytes())
    db = tmp_path / "w.duckdb"
    before = query(db, "select (select count(*) from deliveries), (select count(*) from ingested_files), "
                       "(select count(*) from quarantine)")
    capsys.readouterr()
    ingest(tmp_path, [logs["exports"]], [copy, logs["deliveries"]], [logs["archives"]])
    assert "skipped" in capsys.readouterr().out
    after = query(db, "select (select count(*) from deliveries), (select count(*) from ingested_files), "
                      "(select count(*) from quarantine)")
    assert before == after


@pytest.mark.parametrize("kind", ["jsonl", "ndjson", "jsonl.gz", "ndjson.gz", "csv", "csv.gz", "parquet"])
def test_every_format_reads_the_same_records(tmp_path, logs_dir, kind):
    logs = minimal_logs(logs_dir)
    records = [delivery_record(attempt_id=f"a{i}", http_status=500 + i, retry_after_seconds=i) for i in range(3)]
    path = logs_dir / f"deliveries-x.{kind}"
    if kind.startswith(("jsonl", "ndjson")):
        write_jsonl(path, records, gz=kind.endswith(".gz"))
    elif kind.startswith("csv"):
        write_csv(path, records, gz=kind.endswith(".gz"))
    else:
        pl.DataFrame(records).write_parquet(path)
    assert ingest(tmp_path, [logs["exports"]], [path], [logs["archives"]]) == 0
    assert query(tmp_path / "w.duckdb", "select attempt_id, http_status, retry_after_seconds from deliveries "
                                        "order by 1") == [("a0", 500, 0), ("a1", 501, 1), ("a2", 502, 2)]


def test_parquet_native_types(tmp_path, logs_dir):
    logs = minimal_logs(logs_dir)
    good = pl.DataFrame({"reference_id": ["r1"], "export_id": ["exp-1"], "archive_uri": ["s3://v/k"],
                         "archive_provider": ["aws_s3_object_lock"], "legal_hold": [True],
                         "archived_at": pl.Series(["2026-11-02T00:00:00Z"]).str.to_datetime(time_zone="UTC").cast(UTC_US)})
    naive = good.with_columns(reference_id=pl.lit("r2"), archived_at=pl.col("archived_at").dt.replace_time_zone(None))
    wrong = good.with_columns(reference_id=pl.lit("r3"), legal_hold=pl.lit(1))
    text = good.with_columns(reference_id=pl.lit("r4"), archived_at=pl.lit("2026-11-02T01:00:00+01:00"))
    paths = []
    for i, frame in enumerate([good, naive, wrong, text]):
        paths.append(logs_dir / f"archives-{i}.parquet")
        frame.write_parquet(paths[-1])
    ingest(tmp_path, [logs["exports"]], [logs["deliveries"]], paths)
    db = tmp_path / "w.duckdb"
    assert query(db, "select reference_id, legal_hold from archives order by 1") == [("r1", True), ("r4", True)]
    assert sorted(query(db, "select source_file, reason_codes from quarantine")) == [
        ("archives-1.parquet", ["naive_timestamp"]), ("archives-2.parquet", ["wrong_type"])]


def test_directory_and_glob_inputs(tmp_path, logs_dir):
    logs = minimal_logs(logs_dir)
    folder = logs_dir / "deliveries"
    folder.mkdir()
    write_jsonl(folder / "1.jsonl", [delivery_record(attempt_id="d1")])
    write_csv(folder / "2.csv", [delivery_record(attempt_id="d2")])
    (folder / "notes.txt").write_text("not a log")
    globbed = logs_dir / "globbed"
    globbed.mkdir()
    write_jsonl(globbed / "x-1.jsonl", [archive_record(reference_id="g1")])
    write_jsonl(globbed / "x-2.jsonl", [archive_record(reference_id="g2")])
    assert ingest(tmp_path, [logs["exports"]], [folder], [str(globbed / "x-*.jsonl")]) == 0
    db = tmp_path / "w.duckdb"
    assert query(db, "select attempt_id from deliveries order by 1") == [("d1",), ("d2",)]
    assert query(db, "select reference_id from archives order by 1") == [("g1",), ("g2",)]


def test_blank_lines_and_empty_files_are_not_records(tmp_path, logs_dir):
    (logs_dir / "e.jsonl").write_text("\n" + json.dumps(export_record()) + "\n\n   \n")
    (logs_dir / "empty.csv").write_bytes(b"")
    (logs_dir / "empty.jsonl.gz").write_bytes(b"")
    (logs_dir / "empty.parquet").write_bytes(b"")
    assert ingest(tmp_path, [logs_dir / "e.jsonl"], [logs_dir / "empty.csv"], [logs_dir / "empty.jsonl.gz"],
                  [logs_dir / "empty.parquet"]) == 0
    db = tmp_path / "w.duckdb"
    assert query(db, "select source_row from exports") == [(2,)]
    assert sorted(query(db, "select rows_read from ingested_files")) == [(0,), (0,), (0,), (1,)]


@pytest.mark.parametrize("problem", ["missing", "truncated_gzip", "not_parquet", "unknown_suffix", "parquet_named_jsonl",
                                     "gzip_named_csv", "parquet_in_gzip"])
def test_unreadable_file_stops_before_anything_is_written(tmp_path, logs_dir, capsys, problem):
    logs = minimal_logs(logs_dir)
    bad = {
        "missing": logs_dir / "nothere.jsonl",
        "truncated_gzip": logs_dir / "cut.jsonl.gz",
        "not_parquet": logs_dir / "junk.parquet",
        "unknown_suffix": logs_dir / "archives.txt",
        "parquet_named_jsonl": logs_dir / "bad.jsonl",  # not the format its name says
        "gzip_named_csv": logs_dir / "bad.csv",
        "parquet_in_gzip": logs_dir / "bad.jsonl.gz",
    }[problem]
    parquet = io.BytesIO()
    pl.DataFrame({"reference_id": ["r1"]}).write_parquet(parquet)
    if problem == "parquet_named_jsonl":
        bad.write_bytes(parquet.getvalue())
    elif problem == "gzip_named_csv":
        bad.write_bytes(gzip.compress(b"reference_id\nr1\n"))
    elif problem == "parquet_in_gzip":
        bad.write_bytes(gzip.compress(parquet.getvalue()))
    elif problem == "truncated_gzip":
        bad.write_bytes(gzip.compress(b'{"a": 1}\n' * 1000)[:40])
    elif problem == "not_parquet":
        bad.write_bytes(b"this is not parquet at all")
    elif problem == "unknown_suffix":
        bad.write_text("{}")
    code = ingest(tmp_path, [logs["exports"]], [logs["deliveries"]], [logs["archives"], bad])
    err = capsys.readouterr().err
    assert code == 2
    assert bad.name in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "w.duckdb").exists()


def test_redaction_happens_before_anything_is_stored(tmp_path, logs_dir):
    logs = minimal_logs(logs_dir)
    secrets = ["hunter2", "SIGVALUE", "AKIAABCDEFGHIJKLMNOP", "tok3n", "vault.internal", "10.9.8.7", "grc.private.example"]
    write_jsonl(logs["deliveries"], [
        delivery_record(attempt_id="a1", endpoint="https://svc:hunter2@api.example.com/x?X-Amz-Signature=SIGVALUE"),
        delivery_record(attempt_id="a2", endpoint="https://10.9.8.7/hook", note="Authorization: Bearer tok3n"),
        delivery_record(attempt_id="a3", endpoint="https://grc.private.example/x", connector_visibility="private"),
        delivery_record(attempt_id="a4", endpoint="https://grc.private.example/y", connector_visibility="private",
                        outcome="broken"),
        '{"attempt_id": "a5", "endpoint": "https://u:hunter2@vault.internal/x" AKIAABCDEFGHIJKLMNOP',
    ])
    write_jsonl(logs["archives"], [archive_record(archive_uri="s3://vault/k?X-Amz-Credential=AKIAABCDEFGHIJKLMNOP")])
    ingest(tmp_path, [logs["exports"]], [logs["deliveries"]], [logs["archives"]])
    from tests.conftest import all_text_in_db
    text = all_text_in_db(tmp_path / "w.duckdb")
    assert "api.example.com" in text  # public hosts stay
    for secret in secrets:
        assert secret not in text, secret


def test_jsonl_is_decoded_the_same_whatever_the_chunk_size(tmp_path, logs_dir, monkeypatch):
    from exportaudit import readers
    lines = [json.dumps(delivery_record(attempt_id=f"a{i}")) for i in range(40)]
    lines[7] = "not json"
    lines[20] = ""
    lines[21] = "   "
    path = logs_dir / "d.jsonl"
    path.write_bytes(("\r\n".join(lines) + "\n").encode() + b'{"attempt_id": "bad\xff"}')
    from exportaudit.contract import LOGS
    whole = readers.decode_file(readers.load_file("deliveries", path), LOGS["deliveries"]).records
    monkeypatch.setattr(readers, "JSONL_CHUNK_BYTES", 50)
    chunked_file = readers.decode_file(readers.load_file("deliveries", path), LOGS["deliveries"])
    assert chunked_file.records.equals(whole)
    assert whole["source_row"].to_list() == [n for n in range(1, 42) if n not in (21, 22)]
    assert whole.filter(pl.col("record_error").is_not_null())["source_row"].to_list() == [8]
    assert whole.filter(pl.col("invalid_utf8"))["source_row"].to_list() == [41]
    raw = chunked_file.raw_texts(pl.Series([41, 8, 1]))
    assert raw.to_list() == ['{"attempt_id": "bad\ufffd"}', "not json", lines[0]]


def test_slicing_the_batch_changes_nothing(tmp_path, logs_dir, monkeypatch):
    from exportaudit import ingest as ingest_module
    logs = minimal_logs(logs_dir)
    write_jsonl(logs["deliveries"], [
        delivery_record(attempt_id="a"), delivery_record(attempt_id="b", outcome="bad"), delivery_record(attempt_id="a"),
        delivery_record(attempt_id="c"), delivery_record(attempt_id="c", http_status=500), delivery_record(attempt_id="d"),
        "junk", delivery_record(attempt_id="e", endpoint="https://u:pw@h.example/x?sig=1")])
    tables = "select attempt_id, endpoint from deliveries order by 1"
    quarantine = "select source_row, reason_codes from quarantine order by 1"
    accounting = "select rows_read, rows_accepted, rows_quarantined, rows_duplicate from ingested_files order by log"
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    ingest(tmp_path / "one", [logs["exports"]], [logs["deliveries"]], [logs["archives"]])
    monkeypatch.setattr(ingest_module, "SLICE_ROWS", 2)
    ingest(tmp_path / "two", [logs["exports"]], [logs["deliveries"]], [logs["archives"]])
    for sql in (tables, quarantine, accounting):
        assert query(tmp_path / "one" / "w.duckdb", sql) == query(tmp_path / "two" / "w.duckdb", sql)
    assert query(tmp_path / "two" / "w.duckdb", tables) == [("a", "https://grc.example.com/hook"),
                                                           ("d", "https://grc.example.com/hook"),
                                                           ("e", "https://h.example/x?REDACTED")]


def test_csv_and_parquet_are_decoded_the_same_whatever_the_batch_size(tmp_path, logs_dir, monkeypatch):
    from exportaudit import readers
    from exportaudit.contract import LOGS
    records = [delivery_record(attempt_id=f"a{i}", endpoint=f"https://h.example/{i}?sig=x") for i in range(30)]
    records[3]["destination"] = "two\nlines, \"quoted\""
    records[11]["outcome"] = "broken"
    csv_path = logs_dir / "d.csv"
    pl.DataFrame(records).write_csv(csv_path)
    parquet_path = logs_dir / "d.parquet"
    pl.DataFrame(records).write_parquet(parquet_path)
    for path in (csv_path, parquet_path):
        whole = readers.decode_file(readers.load_file("deliveries", path), LOGS["deliveries"])
        monkeypatch.setattr(readers, "CSV_CHUNK_BYTES", 40)
        monkeypatch.setattr(readers, "PARQUET_BATCH_ROWS", 4)
        batched = readers.decode_file(readers.load_file("deliveries", path), LOGS["deliveries"])
        assert len(list(batched.batches())) > 3
        assert batched.records.equals(whole.records)
        assert whole.records["source_row"].to_list() == list(range(1, 31))
        assert batched.raw_texts(pl.Series([4, 12])).to_list() == whole.raw_texts(pl.Series([4, 12])).to_list()
        monkeypatch.undo()


class _ListSource:
    """An InputSource of inline decoded frames (as another source, e.g. Svix attempts, gives them)."""

    def __init__(self, frames, fail_after=None, sha="f" * 64):
        self.log, self.name, self.format, self.sha256 = "deliveries", "svix.jsonl", "svix", sha
        self.frames, self.fail_after = frames, fail_after

    def batches(self):
        from exportaudit.readers import UnreadableInput
        for index, frame in enumerate(self.frames):
            if self.fail_after is not None and index == self.fail_after:
                raise UnreadableInput(self.name, "broken in the middle")
            yield frame

    def raw_texts(self, source_rows):
        return pl.Series([f"raw {n}" for n in source_rows], dtype=pl.Utf8)


def _decoded(rows: list[dict], first_row: int, reasons: list[list[str]] | None = None) -> pl.DataFrame:
    from exportaudit.contract import LOGS
    log = LOGS["deliveries"]
    frame = pl.DataFrame({
        "source_row": list(range(first_row, first_row + len(rows))), "record_error": [None] * len(rows),
        "invalid_utf8": [False] * len(rows), "extra_fields": [None] * len(rows),
        **{f: [None if r.get(f) is None else str(r[f]) for r in rows] for f in log.field_names},
        **{f"{f}__type_ok": [True] * len(rows) for f in log.field_names},
    }, schema_overrides={"source_row": pl.Int64, "record_error": pl.Utf8, "extra_fields": pl.Utf8,
                         **{f: pl.Utf8 for f in log.field_names}})
    if reasons is not None:
        frame = frame.with_columns(source_reasons=pl.Series(reasons, dtype=pl.List(pl.Utf8)))
    return frame


def test_a_source_plugs_in_and_its_own_reasons_quarantine_its_records(tmp_path):
    import duckdb

    from exportaudit import warehouse
    from exportaudit.ingest import ingest as ingest_sources
    NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)
    con = duckdb.connect()
    warehouse.ensure_schema(con)
    first = _decoded([delivery_record(attempt_id="s1"), delivery_record(attempt_id="s2", outcome=None)], 1,
                     [[], ["attempt_not_final:status"]])
    second = _decoded([delivery_record(attempt_id="s1"), delivery_record(attempt_id="s3")], 3, [[], []])
    [account] = ingest_sources(con, [_ListSource([first, second])], "run-1", NOW)
    assert (account.rows_read, account.rows_accepted, account.rows_quarantined, account.rows_duplicate) == (4, 2, 1, 1)
    [(row, codes, details, raw)] = con.execute(
        "select source_row, reason_codes, reason_details, raw_text from quarantine").fetchall()
    assert row == 2 and codes == ["attempt_not_final", "missing_required_field"]
    assert details == ["attempt_not_final:status", "missing_required_field:outcome"] and raw == "raw 2"
    assert [r[0] for r in con.execute("select attempt_id from deliveries order by source_row").fetchall()] == ["s1", "s3"]


def test_a_source_failing_midway_leaves_nothing_written(tmp_path):
    import duckdb

    from exportaudit import warehouse
    from exportaudit.ingest import ingest as ingest_sources
    from exportaudit.readers import UnreadableInput
    NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)
    con = duckdb.connect()
    warehouse.ensure_schema(con)
    frames = [_decoded([delivery_record(attempt_id="s1")], 1), _decoded([delivery_record(attempt_id="s2")], 2)]
    with pytest.raises(UnreadableInput, match="broken in the middle"):
        ingest_sources(con, [_ListSource(frames, fail_after=1)], "run-1", NOW)
    for table in ("deliveries", "quarantine", "ingested_files"):
        assert con.execute(f"select count(*) from {table}").fetchall() == [(0,)]


def test_parquet_raw_texts_are_the_asked_rows_own_cells_across_row_groups(tmp_path):
    from exportaudit import readers
    from exportaudit.contract import LOGS
    path = tmp_path / "d.parquet"
    pl.DataFrame({"attempt_id": [f"a{i}" for i in range(1, 11)], "http_status": list(range(501, 511))}).write_parquet(
        path, row_group_size=3)
    source = readers.decode_file(readers.load_file("deliveries", path), LOGS["deliveries"])
    assert source.raw_texts(pl.Series([8, 2, 10, 4])).to_list() == [
        '{"attempt_id":"a8","http_status":508}', '{"attempt_id":"a2","http_status":502}',
        '{"attempt_id":"a10","http_status":510}', '{"attempt_id":"a4","http_status":504}']


def _typed_parquet(path):
    """A deliveries Parquet file whose columns take many Arrow types (contract fields and extra ones)."""
    import datetime as dt
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq
    n = 7
    utc = dt.timezone.utc
    pq.write_table(pa.table({
        "attempt_id": pa.array([f"a{i}" for i in range(n)]),
        "export_id": pa.array(["exp-1"] * n).dictionary_encode(),
        "destination": pa.array(["grc", None, "", "x", "y", "z", "w"], pa.large_string()),
        "outcome": pa.array(["delivered", "failed", "broken", "failed", "failed", "failed", "delivered"]),
        "attempted_at": pa.array([dt.datetime(2026, 11, 1, i, tzinfo=utc) for i in range(n)], pa.timestamp("ms", "America/New_York")),
        "http_status": pa.array([200, 500, 503, None, 99, 404, 201], pa.uint16()),
        "retry_after_seconds": pa.array([1.5, None, 3, 4, 5, 6, 7], pa.float32()),
        "endpoint": pa.array([b"https://h/x?sig=1", None, "é".encode(), b"", b"a", b"b", b"c"]),
        "amount": pa.array([decimal.Decimal("1.50")] * n, pa.decimal128(5, 2)),
        "day": pa.array([dt.date(2026, 1, 2)] * n), "at": pa.array([dt.time(1, 2, 3)] * n),
        "naive": pa.array([dt.datetime(2026, 1, 1)] * n, pa.timestamp("ns")),
        "tags": pa.array([[1, 2]] * n), "meta": pa.array([{"k": "v"}] * n),
        "labels": pa.array([[("k", 1)]] * n, pa.map_(pa.string(), pa.int64())),
    }), path, row_group_size=3)


def test_parquet_read_by_polars_decodes_as_pyarrow_does(tmp_path, monkeypatch):
    """Polars' own Parquet reader (the fast path) gives the same decoded records and raw texts as
    pyarrow's, type for type, whatever the window size."""
    from exportaudit import readers
    from exportaudit.contract import LOGS
    path = tmp_path / "d.parquet"
    _typed_parquet(path)
    assert readers._polars_reads_alike(path)

    def decoded(batch_rows: int, polars_reader: bool):
        monkeypatch.setattr(readers, "PARQUET_BATCH_ROWS", batch_rows)
        monkeypatch.setattr(readers, "_polars_reads_alike", lambda _: polars_reader)
        source = readers.decode_file(readers.load_file("deliveries", path), LOGS["deliveries"])
        raw = [batch.select(readers.raw_text_of(batch)).to_series().to_list() for batch in source.batches()]
        return source.records, [text for texts in raw for text in texts], source.raw_texts(pl.Series([7, 1, 4, 5]))

    expected_records, expected_raw, expected_asked = decoded(500_000, polars_reader=False)
    assert expected_records.height == 7
    for batch_rows in (2, 500_000):
        records, raw, asked = decoded(batch_rows, polars_reader=True)
        assert records.equals(expected_records)
        assert raw == expected_raw
        assert asked.to_list() == expected_asked.to_list() == [expected_raw[6], expected_raw[0], expected_raw[3],
                                                               expected_raw[4]]


def test_a_parquet_file_polars_would_type_differently_is_read_with_pyarrow(tmp_path):
    """INT96 timestamps: pyarrow reads them as naive nanoseconds, Polars would not; the file is read
    as before (pyarrow) and a naive instant stays a naive timestamp."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    from exportaudit import readers
    from exportaudit.contract import LOGS
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"reference_id": ["r1"], "archived_at": pa.array([dt.datetime(2026, 11, 2, 1, 2, 3)],
                                                                             pa.timestamp("us"))}),
                   path, use_deprecated_int96_timestamps=True)
    assert not readers._polars_reads_alike(path)
    source = readers.decode_file(readers.load_file("archives", path), LOGS["archives"])
    assert source.records["archived_at"].to_list() == ["2026-11-02T01:02:03"]
    assert source.raw_texts(pl.Series([1])).to_list() == ['{"reference_id":"r1","archived_at":"2026-11-02 01:02:03.000000000"}']


def test_parquet_binary_cells_that_are_not_utf8_quarantine_their_row(tmp_path, logs_dir):
    """A Parquet Binary cell is text when it is UTF-8; otherwise its record holds bytes that are not
    UTF-8 (invalid_utf8, raw text with U+FFFD), in an extra column as in a contract field."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    logs = minimal_logs(logs_dir)
    records = [delivery_record(attempt_id=f"a{i}") for i in range(3)]
    table = pa.Table.from_pylist(records).append_column("note", pa.array([b"fine", b"\xff\xfe", None]))
    path = logs_dir / "d.parquet"
    pq.write_table(table, path)
    assert ingest(tmp_path, [logs["exports"]], [path], [logs["archives"]]) == 0
    db = tmp_path / "w.duckdb"
    assert query(db, "select attempt_id, extra_fields from deliveries order by 1") == [
        ("a0", '{"note":"fine"}'), ("a2", '{"note":null}')]
    [(codes, raw_text)] = query(db, "select reason_codes, raw_text from quarantine")
    assert codes == ["invalid_utf8"] and '"attempt_id":"a1"' in raw_text and '"note":"\ufffd\ufffd"' in raw_text


def test_a_uri_field_with_a_space_loses_its_query(tmp_path, logs_dir):
    logs = minimal_logs(logs_dir)
    write_jsonl(logs["archives"], [archive_record(archive_uri="s3://vault/a b.tar?versionId=v1&AWSAccessKeyId=XYZSECRET")])
    write_jsonl(logs["deliveries"], [delivery_record(endpoint="https://api.example.com/in box?token=XYZSECRET")])
    ingest(tmp_path, [logs["exports"]], [logs["deliveries"]], [logs["archives"]])
    db = tmp_path / "w.duckdb"
    assert query(db, "select archive_uri, s3_version_id from archives") == [("s3://vault/a b.tar?REDACTED", "v1")]
    assert query(db, "select endpoint from deliveries") == [("https://api.example.com/in box?REDACTED",)]
