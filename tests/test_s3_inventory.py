"""docs/real-sources.md#s3-inventory-reports: S3 Inventory reports — integrity first, then rows (CSV and Parquet)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from exportaudit.readers import UnreadableInput
from exportaudit.sources.s3_inventory import (
    check_reports,
    find_manifests,
    inventory_reports_frame,
    read_report_rows,
)

ALL_VERSIONS_SCHEMA = ("Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, "
                       "StorageClass, ObjectLockRetainUntilDate, ObjectLockMode, ObjectLockLegalHoldStatus")
CURRENT_SCHEMA = ("Bucket, Key, Size, LastModifiedDate, ObjectLockRetainUntilDate, ObjectLockMode, "
                  "ObjectLockLegalHoldStatus")
CREATED_MS = "1714557600000"  # 2024-05-01T10:00:00Z
CREATED = datetime(2024, 5, 1, 10, tzinfo=timezone.utc)

# ---------------------------------------------------------------------------------------------
# Fixture builders (also used by tests/test_derived_custody.py)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def csv_line(fields: list[str]) -> str:
    """Every field double-quoted, as S3 Inventory writes them."""
    return ",".join('"' + f.replace('"', '""') + '"' for f in fields)


def csv_gz(rows: list[list[str]] | list[str], trailing_blank_lines: int = 2) -> bytes:
    lines = [row if isinstance(row, str) else csv_line(row) for row in rows]
    return gzip.compress(("\n".join(lines) + "\n" * (1 + trailing_blank_lines)).encode("utf-8"))


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def write_inventory(root: Path, data_files: list[bytes], *, source_bucket: str = "evidence-bucket",
                    file_schema: str = ALL_VERSIONS_SCHEMA, file_format: str = "CSV",
                    created_ms: str = CREATED_MS, config: str = "daily", folder: str = "2024-05-01T10-00Z",
                    checksum_suffix: str = "\n", suffix: str = ".csv.gz") -> Path:
    """The documented layout: <dest>/<source-bucket>/<config>/<ts>/manifest.json (+ .checksum),
    data files under <dest>/<source-bucket>/<config>/data/; files[].key from the destination root."""
    base = f"inventory/{source_bucket}/{config}"
    entries = []
    for index, data in enumerate(data_files):
        key = f"{base}/data/{folder}-{index}{suffix}"
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
        entries.append({"key": key, "size": len(data), "MD5checksum": md5(data)})
    manifest = {
        "sourceBucket": source_bucket,
        "destinationBucket": "arn:aws:s3:::inventory-destination",
        "version": "2016-11-30",
        "creationTimestamp": created_ms,
        "fileFormat": file_format,
        "fileSchema": file_schema,
        "files": entries,
    }
    manifest_path = root / base / folder / "manifest.json"
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(manifest, indent=2).encode()
    manifest_path.write_bytes(data)
    (manifest_path.parent / "manifest.checksum").write_text(md5(data) + checksum_suffix)
    return manifest_path


def all_versions_row(key: str, version: str = "", latest: str = "true", delete_marker: str = "false",
                     retain: str = "2031-01-01T00:00:00.000Z", mode: str = "COMPLIANCE", hold: str = "OFF",
                     bucket: str = "evidence-bucket") -> list[str]:
    size = "" if delete_marker == "true" else "1024"
    return [bucket, key, version, latest, delete_marker, size, "2024-04-22T01:11:06.000Z", "3c3c18", "STANDARD",
            retain, mode, hold]


def one_report_rows(manifest: Path) -> pl.DataFrame:
    [report] = check_reports([manifest])
    return read_report_rows(report)


# ---------------------------------------------------------------------------------------------
# CSV values


def test_csv_rows_keys_booleans_dates_and_lock_values(tmp_path):
    manifest = write_inventory(tmp_path, [csv_gz([
        all_versions_row("exports/a+b%2Bc.tar", "v1"),  # space, literal +
        all_versions_row("exports/r%C3%A9sum%C3%A9%2Fx.tar", "", latest="TRUE", mode="Compliance", hold="On"),
        all_versions_row("exports/gone.tar", "v3", delete_marker="true", retain="", mode="", hold=""),
        all_versions_row("exports/gov.tar", "v4", latest="False", retain="2030-06-01T00:00:00Z", mode="governance",
                         hold="on"),
    ])])
    rows = one_report_rows(manifest)
    assert rows["key"].to_list() == ["exports/a b+c.tar", "exports/résumé/x.tar", "exports/gone.tar",
                                     "exports/gov.tar"]
    assert rows["version_id"].to_list() == ["v1", None, "v3", "v4"]
    assert rows["is_latest"].to_list() == [True, True, True, False]
    assert rows["is_delete_marker"].to_list() == [False, False, True, False]
    assert rows["object_lock_mode"].to_list() == ["COMPLIANCE", "COMPLIANCE", None, "GOVERNANCE"]
    assert rows["object_lock_legal_hold_status"].to_list() == ["OFF", "ON", None, "ON"]
    assert rows["object_lock_retain_until_date"].to_list() == [
        datetime(2031, 1, 1, tzinfo=timezone.utc), datetime(2031, 1, 1, tzinfo=timezone.utc), None,
        datetime(2030, 6, 1, tzinfo=timezone.utc)]
    assert rows["last_modified_date"][0] == datetime(2024, 4, 22, 1, 11, 6, tzinfo=timezone.utc)
    assert rows["size"].to_list() == ["1024", "1024", None, "1024"]  # other columns kept as text
    assert rows["source_row"].to_list() == [1, 2, 3, 4]  # trailing blank lines skipped, not counted
    assert rows["report_time"].unique().to_list() == [CREATED]
    assert rows["reason_codes"].to_list() == [[], [], [], []]
    assert rows["raw_text"].null_count() == 4  # raw text only for quarantined rows


def test_rfc3339_date_variants_are_accepted(tmp_path):
    dates = ["2031-01-01T00:00:00Z", "2031-01-01T00:00:00.123456789Z", "2031-01-01t00:00:00z",
             "2031-01-01 00:00:00+00:00", "2031-01-01T01:00:00+01:00"]
    manifest = write_inventory(tmp_path, [csv_gz([all_versions_row(f"k{i}", f"v{i}", retain=d)
                                                  for i, d in enumerate(dates)])])
    rows = one_report_rows(manifest)
    assert rows["reason_codes"].list.len().to_list() == [0] * 5
    assert rows["object_lock_retain_until_date"].dt.replace_time_zone(None).dt.truncate("1s").to_list() == \
        [datetime(2031, 1, 1)] * 5


def test_quarantine_reasons_each_fire_and_do_not_fire(tmp_path):
    manifest = write_inventory(tmp_path, [csv_gz([
        all_versions_row("ok"),
        csv_line(["evidence-bucket", "short-row", "v"]),  # wrong_column_count (fewer)
        csv_line(all_versions_row("long-row") + ["extra"]),  # wrong_column_count (more)
        all_versions_row(""),  # missing_field: key
        all_versions_row("k", bucket=""),  # missing_field: bucket
        all_versions_row("bad-bool", latest="yes"),
        all_versions_row("bad-date", retain="2031-13-01T00:00:00Z"),
        all_versions_row("naive-date", retain="2031-01-01T00:00:00"),
        all_versions_row("bad-mode", mode="LEGAL"),
        all_versions_row("bad-hold", hold="MAYBE"),
        all_versions_row("two-problems", latest="1", hold="X"),
    ])])
    rows = one_report_rows(manifest)
    assert rows["reason_codes"].to_list() == [
        [], ["wrong_column_count"], ["wrong_column_count"], ["missing_field"], ["missing_field"],
        ["invalid_value"], ["invalid_value"], ["invalid_value"], ["invalid_value"], ["invalid_value"],
        ["invalid_value"],
    ]
    assert rows["reason_details"][3].to_list() == ["missing_field:key"]
    assert rows["reason_details"][10].to_list() == ["invalid_value:is_latest",
                                                     "invalid_value:object_lock_legal_hold_status"]
    assert rows["raw_text"][0] is None
    assert rows["raw_text"][1] == '"evidence-bucket","short-row","v"'
    assert rows["key"][1] is None  # a wrong-count row's values are not trusted


def test_unknown_columns_in_any_order_are_kept_as_extra_text(tmp_path):
    schema = "Size, Key, Bucket, IsLatest, SomethingNew"  # orcabus meets a schema starting with Size
    manifest = write_inventory(tmp_path, [csv_gz([["5", "a%20b", "evidence-bucket", "true", "x"]])],
                               file_schema=schema)
    rows = one_report_rows(manifest)
    assert rows.select("bucket", "key", "size", "is_latest", "extra_fields").row(0) == (
        "evidence-bucket", "a b", "5", True, '{"something_new":"x"}')


def test_two_data_files_are_read_in_order_with_their_keys(tmp_path):
    manifest = write_inventory(tmp_path, [csv_gz([all_versions_row("a", "1")]),
                                          csv_gz([all_versions_row("b", "2"), all_versions_row("c", "3")])])
    rows = one_report_rows(manifest)
    assert rows["key"].to_list() == ["a", "b", "c"]
    assert rows["source_row"].to_list() == [1, 1, 2]
    assert rows["source_file"].str.ends_with("-0.csv.gz").to_list() == [True, False, False]


def test_current_versions_report_flags(tmp_path):
    manifest = write_inventory(tmp_path, [csv_gz([["evidence-bucket", "k", "1", "2024-01-01T00:00:00.000Z",
                                                   "", "", ""]])], file_schema=CURRENT_SCHEMA)
    reports = check_reports([manifest])
    frame = inventory_reports_frame(reports)
    assert frame.select("source_bucket", "report_time", "all_versions", "has_object_lock_mode").row(0) == (
        "evidence-bucket", CREATED, False, True)
    rows = read_report_rows(reports[0])
    assert rows.select("version_id", "is_latest", "object_lock_mode").row(0) == (None, None, None)


# ---------------------------------------------------------------------------------------------
# Parquet


def test_parquet_rows_keep_raw_keys_and_read_timestamps_as_utc(tmp_path):
    frame = pl.DataFrame({
        "bucket": ["evidence-bucket"] * 3,
        "key": ["a+b%2B c", "é/x", ""],
        "version_id": ["v1", None, "v3"],
        "is_latest": [True, True, False],
        "is_delete_marker": [False, False, False],
        "size": [1, 2, 3],
        "last_modified_date": [datetime(2024, 4, 22, 1, 11, 6)] * 3,  # no time zone: UTC
        "object_lock_retain_until_date": pl.Series([datetime(2031, 1, 1)] * 3).dt.replace_time_zone("UTC")
        .dt.cast_time_unit("ms"),
        "object_lock_mode": ["Governance", None, "compliance"],
        "object_lock_legal_hold_status": ["Off", None, "ON"],
    }).with_columns(pl.col("last_modified_date").dt.cast_time_unit("ms"))
    schema = ("message s3.inventory { required binary bucket (STRING); required binary key (STRING); "
              "optional binary version_id (STRING); optional boolean is_latest; optional boolean is_delete_marker; "
              "optional int64 size; optional int64 last_modified_date (TIMESTAMP(MILLIS,true)); "
              "optional int64 object_lock_retain_until_date (TIMESTAMP_MILLIS); "
              "optional binary object_lock_mode (UTF8); optional binary object_lock_legal_hold_status (UTF8);}")
    manifest = write_inventory(tmp_path, [parquet_bytes(frame)], file_format="Parquet", file_schema=schema,
                               suffix=".parquet")
    [report] = check_reports([manifest])
    assert report.all_versions and report.has("object_lock_mode")
    rows = read_report_rows(report)
    assert rows["key"].to_list() == ["a+b%2B c", "é/x", None]  # raw; empty is null
    assert rows["size"].to_list() == ["1", "2", "3"]
    assert rows["last_modified_date"][0] == datetime(2024, 4, 22, 1, 11, 6, tzinfo=timezone.utc)
    assert rows["object_lock_retain_until_date"][0] == datetime(2031, 1, 1, tzinfo=timezone.utc)
    assert rows["object_lock_mode"].to_list() == ["GOVERNANCE", None, "COMPLIANCE"]
    assert rows["object_lock_legal_hold_status"].to_list() == ["OFF", None, "ON"]
    assert rows["reason_codes"].to_list() == [[], [], ["missing_field"]]
    assert rows["raw_text"][2] is not None and rows["raw_text"][0] is None


def test_parquet_epoch_millisecond_integers_are_dates(tmp_path):
    frame = pl.DataFrame({"bucket": ["b"], "key": ["k"], "object_lock_retain_until_date": [1924992000000]})
    manifest = write_inventory(tmp_path, [parquet_bytes(frame)], file_format="Parquet", suffix=".parquet",
                               file_schema="message s3.inventory { required binary bucket; required binary key; "
                                           "optional int64 object_lock_retain_until_date; }")
    rows = one_report_rows(manifest)
    assert rows["object_lock_retain_until_date"][0] == datetime(2031, 1, 1, tzinfo=timezone.utc)
    assert rows["reason_codes"][0].to_list() == []


# ---------------------------------------------------------------------------------------------
# Integrity first


def test_checksum_with_or_without_trailing_newline_is_accepted(tmp_path):
    for suffix, folder in (("\n", "a"), ("", "b"), ("  \r\n", "c")):
        manifest = write_inventory(tmp_path, [csv_gz([all_versions_row("k")])], folder=folder,
                                   checksum_suffix=suffix)
        assert len(check_reports([manifest])) == 1


def test_uppercase_checksum_is_accepted(tmp_path):
    manifest = write_inventory(tmp_path, [csv_gz([all_versions_row("k")])])
    checksum = manifest.parent / "manifest.checksum"
    checksum.write_text(checksum.read_text().strip().upper())
    assert len(check_reports([manifest])) == 1


def test_altered_manifest_byte_is_refused(tmp_path):
    manifest = write_inventory(tmp_path, [csv_gz([all_versions_row("k")])])
    data = bytearray(manifest.read_bytes())
    data[data.index(b"evidence-bucket")] = ord("E")
    manifest.write_bytes(bytes(data))
    with pytest.raises(UnreadableInput) as error:
        check_reports([manifest])
    assert error.value.path == str(manifest)
    assert "manifest.checksum" in error.value.cause


def test_missing_checksum_is_refused(tmp_path):
    manifest = write_inventory(tmp_path, [csv_gz([all_versions_row("k")])])
    (manifest.parent / "manifest.checksum").unlink()
    with pytest.raises(UnreadableInput, match="manifest.checksum is missing"):
        check_reports([manifest])


def test_altered_data_file_byte_is_refused_naming_the_file(tmp_path):
    manifest = write_inventory(tmp_path, [csv_gz([all_versions_row("k")]), csv_gz([all_versions_row("j")])])
    key = json.loads(manifest.read_bytes())["files"][1]["key"]
    data_file = tmp_path / key
    data = bytearray(data_file.read_bytes())
    data[-5] ^= 0xFF  # same size, different bytes
    data_file.write_bytes(bytes(data))
    with pytest.raises(UnreadableInput) as error:
        check_reports([manifest])
    assert error.value.path == str(manifest)
    assert key in error.value.cause and "MD5" in error.value.cause


def test_size_mismatch_and_missing_data_file_are_refused(tmp_path):
    manifest = write_inventory(tmp_path, [csv_gz([all_versions_row("k")])])
    key = json.loads(manifest.read_bytes())["files"][0]["key"]
    (tmp_path / key).write_bytes((tmp_path / key).read_bytes() + b"\x00")
    with pytest.raises(UnreadableInput, match="bytes, the manifest lists"):
        check_reports([manifest])
    (tmp_path / key).unlink()
    with pytest.raises(UnreadableInput, match="was not found"):
        check_reports([manifest])


def test_data_key_resolves_against_the_nearest_ancestor_first(tmp_path):
    manifest = write_inventory(tmp_path, [csv_gz([all_versions_row("far")])])
    key = json.loads(manifest.read_bytes())["files"][0]["key"]
    near = manifest.parent / key  # the same key under the manifest's own directory wins
    near.parent.mkdir(parents=True)
    near.write_bytes((tmp_path / key).read_bytes())
    [report] = check_reports([manifest])
    assert report.files[0].path == near


def test_orc_is_refused_with_a_message_to_configure_csv_or_parquet(tmp_path):
    manifest = write_inventory(tmp_path, [b"ORC..."], file_format="ORC", suffix=".orc",
                               file_schema="struct<bucket:string,key:string>")
    with pytest.raises(UnreadableInput, match="configure .*CSV or Parquet"):
        check_reports([manifest])


def test_every_report_is_checked_before_any_row_is_read(tmp_path):
    good = write_inventory(tmp_path / "one", [csv_gz([all_versions_row("k")])])
    bad = write_inventory(tmp_path / "two", [csv_gz([all_versions_row("k")])])
    (bad.parent / "manifest.checksum").write_text("0" * 32)
    with pytest.raises(UnreadableInput) as error:
        check_reports([good, bad])
    assert error.value.path == str(bad)


def test_bad_creation_timestamp_is_refused(tmp_path):
    manifest = write_inventory(tmp_path, [csv_gz([all_versions_row("k")])], created_ms="2024-05-01")
    with pytest.raises(UnreadableInput, match="creationTimestamp"):
        check_reports([manifest])


def test_directory_search_finds_reports_recursively_and_skips_batch_manifests(tmp_path):
    first = write_inventory(tmp_path, [csv_gz([all_versions_row("k")])], folder="2024-05-01T10-00Z")
    second = write_inventory(tmp_path, [csv_gz([all_versions_row("k")])], folder="2024-05-02T10-00Z",
                             created_ms="1714644000000")
    batch = tmp_path / "batch" / "job-1" / "manifest.json"
    batch.parent.mkdir(parents=True)
    batch.write_text(json.dumps({"Format": "Report_CSV_20180820", "ReportCreationDate": "2024-05-01T00:00:00Z",
                                 "Results": [], "ReportSchema": "Bucket, Key"}))
    assert find_manifests([tmp_path]) == [first, second]
    reports = check_reports([tmp_path])
    assert [r.report_time.day for r in reports] == [1, 2]
    with pytest.raises(UnreadableInput, match="no such file"):
        find_manifests([tmp_path / "nowhere"])


def test_csv_fields_follow_pythons_lenient_csv_reader():
    import csv

    from exportaudit.sources.s3_inventory import csv_field_lists

    lines = ['"a","b""c",""', "a,,b,", "x", '"a"b,c', 'a"b,c', '"unterminated,x', '"",""', ",", '" spaced ",z',
             'b,k,,failed,200,PermanentFailure,"error details: {""failureMessage"":"Task 1 Key not found", '
             '""errorCode"": "404"}"', '"a""",b', '"a""b""",c']
    expected = [next(csv.reader([line])) for line in lines]
    assert csv_field_lists(pl.Series(lines)).to_list() == expected
    assert csv_field_lists(pl.Series([], dtype=pl.Utf8)).to_list() == []


def test_an_empty_data_file_is_a_report_without_rows(tmp_path):
    manifest = write_inventory(tmp_path, [gzip.compress(b""), gzip.compress(b"\n\n")])
    rows = one_report_rows(manifest)
    assert rows.height == 0 and rows.columns[:3] == ["report_id", "source_file", "source_row"]


def test_an_empty_parquet_data_file_is_a_report_without_rows(tmp_path):
    frame = pl.DataFrame(schema={"bucket": pl.Utf8, "key": pl.Utf8, "is_latest": pl.Boolean})
    manifest = write_inventory(tmp_path, [parquet_bytes(frame)], file_format="Parquet", suffix=".parquet",
                               file_schema="message s3.inventory { required binary bucket; required binary key; "
                                           "optional boolean is_latest; }")
    assert one_report_rows(manifest).height == 0


@pytest.mark.parametrize("bad, format_", [
    (csv_gz([all_versions_row("k")])[:-8], "CSV"),  # a truncated gzip stream, listed with its own MD5
    (csv_gz([all_versions_row("k")]) + b"garbage", "CSV"),  # trailing bytes that are no gzip member
    (b"PAR1notreallyparquetPAR1", "Parquet"),  # the second file: every footer is read, not the first only
])
def test_a_listed_file_that_would_fail_to_decode_is_refused_at_the_check(tmp_path, bad, format_):
    """Its MD5 and size match, but its rows could not be read: the run must stop before anything is
    written, so the check decompresses every gzip file and reads every Parquet footer."""
    good = csv_gz([all_versions_row("j")]) if format_ == "CSV" else parquet_bytes(pl.DataFrame({"Key": ["j"]}))
    manifest = write_inventory(tmp_path, [good, bad], file_format=format_,
                               suffix=".csv.gz" if format_ == "CSV" else ".parquet")
    with pytest.raises(UnreadableInput) as error:
        check_reports([manifest])
    assert error.value.path == str(manifest)
    assert "not valid gzip" in error.value.cause or "not readable Parquet" in error.value.cause
