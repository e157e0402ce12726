"""S3 Batch Operations completion reports (docs/real-sources.md#s3-batch-operations-checksum-reports): integrity first, then result rows.

Interface
---------
``check_reports(specs) -> list[BatchReport]``
    Each spec is a completion report's ``manifest.json`` (keys ``Format``,
    ``ReportCreationDate``, ``Results``, ``ReportSchema``) or a directory searched
    recursively for ``manifest.json`` files (S3 Inventory manifests met there are
    skipped). Every report is checked before any row is read: the manifest parses,
    ``ReportCreationDate`` is an RFC 3339 instant, and every ``Results[]`` file is found
    (``Key`` resolved against the manifest's directory, then each ancestor; first hit
    wins) with the MD5 of its stored bytes equal to ``MD5Checksum``. Any failure raises
    ``UnreadableInput(manifest_path, cause)``.

``read_file_rows(report, result) -> pl.DataFrame`` / ``read_report_rows(report) -> pl.DataFrame``
    The rows of one Results file / every result row (``ROW_SCHEMA``), Results files in manifest order, rows in file order:
    lineage (``report_id`` = sha256 of the manifest bytes, ``source_file`` = the
    ``Results[].Key``, ``source_row`` = 1-based physical line, ``report_time`` =
    ReportCreationDate), ``bucket``, ``key`` (form-decoded), ``version_id`` (null for the
    null version: empty or ``null``), ``task_status`` (as written), ``http_status`` (the
    3-digit column, text), ``error_code`` (the other column, text; null when empty),
    ``result_message`` (column 7, or columns 7.. joined by commas), ``message_error_code``
    (``errorCode`` read leniently from the message), ``checksum_algorithm``,
    ``checksum_type`` (from a JSON message), ``observed_digest`` (``sha256:<hex>`` for a
    succeeded row whose message is JSON with ``checksumAlgorithm`` SHA256 and
    ``checksumType`` FULL_OBJECT and a SHA-256-long checksum; else null), ``not_found``
    (a failed row whose http_status, error_code or message_error_code is ``404``,
    ``NoSuchKey`` or ``NoSuchVersion``), ``reason_codes`` / ``reason_details`` (only
    ``wrong_column_count``: fewer than 7 fields) and ``raw_text`` (the line, for
    quarantined rows only).

``batch_reports_frame(reports) -> pl.DataFrame``: report_id, manifest, report_time,
``format``, result_files.

Decisions where the documented contract is silent
----------------------------------
- Column order per row: when column 5 is a 3-digit number it is the HTTP status and
  column 6 the error code; otherwise, when column 6 is a 3-digit number, the reverse;
  when neither is, there is no HTTP status and the error code is column 5, or column 6
  when column 5 is empty (ReportSchema's order). When both are 3-digit numbers, column 5
  is the status (the order of every documented example).
- "Either column": a failed row proves absence when **either** of columns 5 and 6, or
  the message's errorCode, equals ``404``, ``NoSuchKey`` or ``NoSuchVersion`` (exact).
- ``task_status`` is compared exactly (``succeeded`` / ``failed``); a row with another
  status gives no check and is not inconclusive (transforms.derived_custody).
- Rows with more than 7 fields: the first six kept, fields 7.. (as unquoted by the CSV
  reading) joined by ``,`` are the ResultMessage.
- checksum_hex present (non-empty) decides, even when it is not 64 hex digits (then no
  digest); checksum_base64 is used only when checksum_hex is absent or empty, and must
  decode (standard alphabet, padded) to 32 bytes.
- A ``manifest.json.md5`` beside the manifest is not documented and not checked.
- A Results file that starts with the gzip magic bytes is decompressed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from exportaudit.readers import UnreadableInput
from exportaudit.sources.s3_inventory import (
    ListedFile,
    checked_listed_file,
    csv_field_lists,
    csv_lines,
    decoded_text,
    find_manifests,
    maybe_gunzip,
    read_listed_file,
    read_manifest,
    rfc3339_instants,
)
from exportaudit.sources.s3_uri import form_decoded_series
from transforms.timestamps import UTC_US

COLUMN_COUNT = 7
NOT_FOUND_CODES = ("404", "NoSuchKey", "NoSuchVersion")
SUCCEEDED, FAILED = "succeeded", "failed"
NULL_VERSION = "null"

ROW_SCHEMA: dict[str, pl.DataType] = {
    "report_id": pl.Utf8,
    "source_file": pl.Utf8,
    "source_row": pl.Int64,
    "report_time": UTC_US,
    "bucket": pl.Utf8,
    "key": pl.Utf8,
    "version_id": pl.Utf8,
    "task_status": pl.Utf8,
    "http_status": pl.Utf8,
    "error_code": pl.Utf8,
    "result_message": pl.Utf8,
    "message_error_code": pl.Utf8,
    "checksum_algorithm": pl.Utf8,
    "checksum_type": pl.Utf8,
    "observed_digest": pl.Utf8,
    "not_found": pl.Boolean,
    "reason_codes": pl.List(pl.Utf8),
    "reason_details": pl.List(pl.Utf8),
    "raw_text": pl.Utf8,
}
REPORT_SCHEMA: dict[str, pl.DataType] = {
    "report_id": pl.Utf8, "manifest": pl.Utf8, "report_time": UTC_US, "format": pl.Utf8, "result_files": pl.Int64,
}
QUARANTINE_REASONS = {"wrong_column_count": "the result row has fewer than 7 fields"}

# errorCode in "error details: {...}" text, however its quotes were (un)escaped.
_MESSAGE_ERROR_CODE = r'(?i)errorCode[\\"\s]*:[\\"\s]*([^"\\,}\s]+)'


@dataclass(frozen=True)
class BatchResultFile:
    listed: ListedFile
    task_execution_status: str | None


@dataclass(frozen=True)
class BatchReport:
    manifest_path: Path
    report_id: str  # sha256 of the manifest's bytes
    report_time: datetime  # ReportCreationDate, UTC
    format: str | None
    report_schema: str | None
    results: tuple[BatchResultFile, ...]


def _report_time(manifest_path: Path, value: object) -> datetime:
    if not isinstance(value, str):
        raise UnreadableInput(manifest_path, "ReportCreationDate is missing from the manifest")
    instant = rfc3339_instants(pl.Series([value], dtype=pl.Utf8)).item()
    if instant is None:
        raise UnreadableInput(manifest_path, f"ReportCreationDate {value[:40]!r} is not an RFC 3339 instant")
    return instant


def check_report(manifest_path: Path) -> BatchReport:
    data, document = read_manifest(manifest_path)
    if not isinstance(document, dict):
        raise UnreadableInput(manifest_path, "the completion report manifest is not a JSON object")
    results = document.get("Results")
    if not isinstance(results, list):
        raise UnreadableInput(manifest_path, "Results is missing from the completion report manifest")
    report_time = _report_time(manifest_path, document.get("ReportCreationDate"))
    files = []
    for index, entry in enumerate(results):
        key = entry.get("Key") if isinstance(entry, dict) else None
        md5 = entry.get("MD5Checksum") if isinstance(entry, dict) else None
        if not isinstance(key, str) or not isinstance(md5, str):
            raise UnreadableInput(manifest_path, f"Results[{index}] lacks a Key or an MD5Checksum")
        status = entry.get("TaskExecutionStatus")
        files.append(BatchResultFile(checked_listed_file(manifest_path, key, md5, None),
                                     status if isinstance(status, str) else None))
    fmt, schema = document.get("Format"), document.get("ReportSchema")
    return BatchReport(
        manifest_path=manifest_path, report_id=hashlib.sha256(data).hexdigest(), report_time=report_time,
        format=fmt if isinstance(fmt, str) else None, report_schema=schema if isinstance(schema, str) else None,
        results=tuple(files),
    )


def check_reports(specs: Sequence[str | Path]) -> list[BatchReport]:
    """Every completion report named by the specs, all checked before any row is read."""
    return [check_report(path) for path in find_manifests(specs, kind="batch")]


def batch_reports_frame(reports: Sequence[BatchReport]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"report_id": r.report_id, "manifest": str(r.manifest_path), "report_time": r.report_time,
          "format": r.format, "result_files": len(r.results)} for r in reports],
        schema=REPORT_SCHEMA,
    )


def _empty_to_null(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr == "").then(None).otherwise(expr)


def sha256_hex(checksum_hex: pl.Expr, checksum_base64: pl.Expr) -> pl.Expr:
    """Lowercase SHA-256 hex from checksum_hex, or from checksum_base64 when hex is absent; null
    when the value is not 32 bytes long."""
    hex_given = _empty_to_null(checksum_hex)
    from_hex = pl.when(hex_given.str.contains(r"^[0-9A-Fa-f]{64}$")).then(hex_given.str.to_lowercase())
    decoded = _empty_to_null(checksum_base64).str.decode("base64", strict=False)
    from_base64 = pl.when(decoded.bin.size() == 32).then(decoded.bin.encode("hex").str.to_lowercase())
    return pl.when(hex_given.is_not_null()).then(from_hex).otherwise(from_base64)


# Six fields without quotes or commas, then a message that starts as a JSON object.
_UNQUOTED_JSON_MESSAGE = r'^(?:[^,"]*,){6}(\{.*)$'


def result_rows(lines: pl.DataFrame) -> pl.DataFrame:
    """Result rows from CSV lines (``source_row``, ``line``), without lineage (pure, vectorised)."""
    fields = pl.col("fields")
    frame = lines.with_columns(fields=csv_field_lists(lines["line"]))
    frame = frame.with_columns(wrong=fields.list.len() < COLUMN_COUNT)
    cell = lambda i: pl.when(~pl.col("wrong")).then(_empty_to_null(fields.list.get(i, null_on_oob=True)))  # noqa: E731
    frame = frame.with_columns(
        c1=cell(0), c2=cell(1), c3=cell(2), c4=cell(3), c5=cell(4), c6=cell(5),
        result_message=pl.when(~pl.col("wrong")).then(
            # A JSON message written without CSV quotes splits at its commas and its quotes are
            # read as CSV quoting: its text is taken from the line as written instead.
            pl.when(fields.list.len() > COLUMN_COUNT).then(pl.col("line").str.extract(_UNQUOTED_JSON_MESSAGE, 1))
            .fill_null(fields.list.slice(6).list.join(","))),
    )
    three_digits = r"^[0-9]{3}$"
    fifth_is_status = pl.col("c5").str.contains(three_digits).fill_null(False)
    sixth_is_status = pl.col("c6").str.contains(three_digits).fill_null(False)
    message = pl.col("result_message")
    frame = frame.with_columns(
        bucket=pl.col("c1"),
        key=pl.col("c2"),
        version_id=pl.when(pl.col("c3") != NULL_VERSION).then(pl.col("c3")),
        task_status=pl.col("c4"),
        http_status=pl.when(fifth_is_status).then(pl.col("c5")).when(sixth_is_status).then(pl.col("c6")),
        error_code=pl.when(fifth_is_status).then(pl.col("c6")).when(sixth_is_status).then(pl.col("c5"))
        .otherwise(pl.coalesce("c5", "c6")),
        result_message=_empty_to_null(message),
        message_error_code=message.str.extract(_MESSAGE_ERROR_CODE, 1),
        checksum_algorithm=message.str.json_path_match("$.checksumAlgorithm"),
        checksum_type=message.str.json_path_match("$.checksumType"),
        __hex=sha256_hex(message.str.json_path_match("$.checksum_hex"),
                         message.str.json_path_match("$.checksum_base64")),
    )
    digest_ok = (
        (pl.col("task_status") == SUCCEEDED) & (pl.col("checksum_algorithm") == "SHA256")
        & (pl.col("checksum_type") == "FULL_OBJECT") & pl.col("__hex").is_not_null()
    )
    codes = [pl.col(c).is_in(NOT_FOUND_CODES).fill_null(False) for c in ("c5", "c6", "message_error_code")]
    frame = frame.with_columns(
        observed_digest=pl.when(digest_ok).then(pl.lit("sha256:") + pl.col("__hex")),
        not_found=(pl.col("task_status") == FAILED).fill_null(False) & pl.any_horizontal(codes),
        reason_details=pl.when(pl.col("wrong")).then(pl.lit(["wrong_column_count"]))
        .otherwise(pl.lit([], dtype=pl.List(pl.Utf8))),
    )
    frame = frame.with_columns(
        reason_codes=pl.col("reason_details"),
        raw_text=pl.when(pl.col("wrong")).then(pl.col("line")),
    )
    keys = form_decoded_series(frame["key"])
    return frame.with_columns(key=keys)


def read_file_rows(report: BatchReport, result: BatchResultFile) -> pl.DataFrame:
    """The rows of one Results file of a checked report (ROW_SCHEMA): ingest streams a file at a time."""
    listed = result.listed
    data = maybe_gunzip(report.manifest_path, listed.key, read_listed_file(report.manifest_path, listed))
    lines = csv_lines(decoded_text(data))
    if lines.height == 0:
        return pl.DataFrame(schema=ROW_SCHEMA)
    return result_rows(lines).with_columns(
        report_id=pl.lit(report.report_id, pl.Utf8), source_file=pl.lit(listed.key, pl.Utf8),
        report_time=pl.lit(report.report_time, UTC_US),
    ).select([pl.col(name).cast(dtype) for name, dtype in ROW_SCHEMA.items()])


def read_report_rows(report: BatchReport) -> pl.DataFrame:
    """Every result row of a checked report (ROW_SCHEMA)."""
    parts = [rows for rows in (read_file_rows(report, result) for result in report.results) if rows.height]
    if not parts:
        return pl.DataFrame(schema=ROW_SCHEMA)
    return pl.concat(parts, how="vertical")
