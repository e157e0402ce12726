"""Ingesting S3 reports into the warehouse (docs/real-sources.md#common-rules-for-reports): S3 Inventory
reports and S3 Batch Operations completion reports, as read, into their own tables.

- **Integrity first** (`read_real_sources`): every report given is checked (manifest checksum,
  every data file found with its size and MD5) before anything is written; the first failure
  raises `UnreadableInput` naming the manifest (exit 2). Svix attempt files are found and
  checked for readability at the same time; they are delivery inputs (exportaudit.sources.svix).
- **A report is identified by its manifest's sha256** (`report_id`): one already ingested is
  skipped, its files listed as skipped. Its data files are read as part of it, even when
  another report listed the same bytes.
- **Streaming**: one data file at a time is read, redacted and split; its accepted rows are
  staged as Parquet beside the warehouse and inserted with one statement per table at the end
  (many small inserts in one transaction keep DuckDB's uncommitted rows in memory: measured
  7.2 GiB at 10M inventory rows; benchmarks/results/inventory.md).
- **Rows**: accepted rows land in `s3_inventory_rows` / `s3_batch_rows`; a row the reader flags
  (`wrong_column_count`, `missing_field`, `invalid_value`) goes to `quarantine` (log
  `s3_inventory` / `s3_batch_report`) with its file, row number, redacted raw text and reasons.
  A row equal in every column to an earlier row of the same report is an exact duplicate:
  counted, stored once.
- **Accounting** (`ingested_files`, and the evidence `inputs`): one entry per manifest (format
  `manifest`, no rows: its data files hold them) and one per data file (rows read = accepted
  + quarantined + duplicate), each carrying the report_id. The dataset identity of the
  evidence (every file_sha256 of ingested_files) so counts every manifest and data file.
- **Redaction**: every kept text value (rows, extra fields, quarantined raw text, file names)
  goes through exportaudit.redact, like any input.

Everything is written in one transaction: a report is in the warehouse completely or not at all.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path, PurePosixPath

import polars as pl

from exportaudit import warehouse
from exportaudit.ingest import FileAccount
from exportaudit.redact import redact_str, redacted_column
from exportaudit.sources import s3_batch, s3_inventory, svix

INVENTORY_LOG, BATCH_LOG = "s3_inventory", "s3_batch_report"
MANIFEST_FORMAT = "manifest"
# Options of the command line, by the name the flow and the schedule use (docs/outputs.md#command-line).
REAL_SOURCE_OPTIONS = ("s3_inventory", "s3_batch_report", "svix_attempts")
_NOT_VALUES = ("report_id", "source_file", "source_file_sha256", "source_row", "report_time", "reason_codes",
               "reason_details", "raw_text", "ingest_run_id")


class RealSources:
    """S3 reports checked and Svix attempt files found, before anything is written; handed to the
    flow as one explicit argument. Slots only: Prefect gives up at once on recording it as a
    parameter instead of copying what it holds."""

    __slots__ = ("inventory", "batch", "svix")

    def __init__(self, inventory: Sequence[s3_inventory.InventoryReport] = (),
                 batch: Sequence[s3_batch.BatchReport] = (), svix_sources: Sequence = ()):
        self.inventory, self.batch, self.svix = list(inventory), list(batch), list(svix_sources)


def read_real_sources(paths: dict[str, list[str]] | None) -> RealSources:
    """Integrity of every S3 report given, and every Svix file found and decoded up front;
    UnreadableInput (exit 2) on the first problem, before anything is written."""
    paths = paths or {}
    return RealSources(
        inventory=s3_inventory.check_reports(paths.get("s3_inventory") or []),
        batch=s3_batch.check_reports(paths.get("s3_batch_report") or []),
        svix_sources=svix.svix_sources(paths.get("svix_attempts") or []),
    )


def log_sources(decoded: list, sources: RealSources | None) -> list:
    """The input sources of the logs for ingest: the files of the log options, then the Svix
    attempt files as delivery sources."""
    return [*decoded, *(sources.svix if sources else [])]


def _redacted_text(frame: pl.DataFrame) -> pl.DataFrame:
    """docs/security.md applied to every text column kept (ids and digests are hex: unchanged)."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.Utf8 and name != "report_id"]
    return frame.with_columns(redacted_column(frame[name]).alias(name) for name in text)


def _file_name(key: str) -> str:
    return redact_str(PurePosixPath(key).name or key)


class _ReportWriter:
    """Writes one report kind's reports, rows, quarantine and accounting (inside the caller's transaction)."""

    def __init__(self, con, log: str, reports_table: str, rows_table: str, run_id: str, now: datetime, stage: Path):
        self.con, self.log, self.rows_table, self.run_id, self.now = con, log, rows_table, run_id, now
        self.reports_table = reports_table
        self.row_columns = [c for c, _, _ in warehouse.REPORT_TABLES[rows_table][1]]
        self.accounts: list[FileAccount] = []
        self.stage, self.staged = stage, []

    def insert_staged(self) -> None:
        """The accepted rows of every data file written, in one bulk insert."""
        if not self.staged:
            return
        columns = ", ".join(f'"{c}"' for c in self.row_columns)
        files = ", ".join("'" + str(path).replace("'", "''") + "'" for path in self.staged)
        self.con.execute(f"INSERT INTO {self.rows_table} ({columns}) SELECT {columns} FROM read_parquet([{files}])")

    def report(self, report, already: set[tuple[str, str]], reports_frame: pl.DataFrame,
               data_files: list[tuple[object, str, Callable[[], pl.DataFrame]]]) -> None:
        """One report: listed as skipped when already ingested (by manifest sha256); otherwise its row
        in the reports table, its manifest's accounting row, then its data files (listed file,
        format, rows reader), read a file at a time."""
        if (self.log, report.report_id) in already:
            self.skipped(report.report_id, [(_file_name(listed.key), listed.sha256) for listed, _, _ in data_files])
            return
        already.add((self.log, report.report_id))
        warehouse.append(self.con, self.reports_table, reports_frame.with_columns(
            manifest=pl.lit(redact_str(str(report.manifest_path))), ingest_run_id=pl.lit(self.run_id),
            ingested_at=pl.lit(self.now)))
        self.files_row(report.report_id, report.report_id, "manifest.json", MANIFEST_FORMAT, (0, 0, 0, 0))
        seen = pl.Series([], dtype=pl.UInt64)
        for listed, file_format, read_rows in data_files:
            seen = self.data_file(report.report_id, listed.key, listed.sha256, file_format, read_rows(), seen)

    def files_row(self, report_id: str, sha256: str, name: str, file_format: str, counts: tuple[int, ...]) -> None:
        read, accepted, quarantined, duplicate = counts
        warehouse.append(self.con, "ingested_files", pl.DataFrame([{
            "file_sha256": sha256, "log": self.log, "file_name": name, "format": file_format,
            "run_id": self.run_id, "ingested_at": self.now, "rows_read": read, "rows_accepted": accepted,
            "rows_quarantined": quarantined, "rows_duplicate": duplicate, "report_id": report_id,
        }]))
        self.accounts.append(FileAccount(self.log, name, sha256, False, read, accepted, quarantined, duplicate))

    def skipped(self, manifest_sha256: str, files: Sequence[tuple[str, str]]) -> None:
        self.accounts.append(FileAccount(self.log, "manifest.json", manifest_sha256, True))
        self.accounts += [FileAccount(self.log, name, sha256, True) for name, sha256 in files]

    def data_file(self, report_id: str, key: str, sha256: str, file_format: str, rows: pl.DataFrame,
                  seen: pl.Series) -> pl.Series:
        """Write one data file's rows; returns the value hashes of the report's accepted rows so far."""
        rows = _redacted_text(rows)
        quarantined = rows["reason_codes"].list.len() > 0
        values = [c for c in rows.columns if c not in _NOT_VALUES]
        hashes = rows.select(pl.struct(values).hash(seed=0)).to_series() if values else \
            pl.Series([0] * rows.height, dtype=pl.UInt64)
        candidate = ~quarantined
        first = pl.DataFrame({"h": hashes, "c": candidate}).select(
            pl.col("c") & pl.col("h").is_first_distinct().over("c") & ~pl.col("h").is_in(seen.implode())
        ).to_series() if rows.height else candidate
        duplicate = candidate & ~first
        accepted = rows.filter(first).with_columns(source_file_sha256=pl.lit(sha256), source_file=pl.lit(
            redact_str(key)), ingest_run_id=pl.lit(self.run_id))
        if accepted.height:
            path = self.stage / f"{self.rows_table}-{len(self.staged):06d}.parquet"
            accepted.select(self.row_columns).write_parquet(path, compression="lz4")
            self.staged.append(path)
        bad = rows.filter(quarantined)
        if bad.height:
            warehouse.append(self.con, "quarantine", bad.select(
                run_id=pl.lit(self.run_id), log=pl.lit(self.log), source_file=pl.lit(_file_name(key)),
                source_file_sha256=pl.lit(sha256), source_row="source_row",
                raw_text=redacted_column(bad["raw_text"].fill_null("")), reason_codes="reason_codes",
                reason_details="reason_details",
            ))
        self.files_row(report_id, sha256, _file_name(key), file_format,
                       (rows.height, accepted.height, bad.height, int(duplicate.sum())))
        return pl.concat([seen, hashes.filter(first)])


def _already_ingested(con) -> set[tuple[str, str]]:
    return {(log, report_id) for log, report_id in con.execute(
        "select log, report_id from ingested_files where format = ? and report_id is not null",
        [MANIFEST_FORMAT]).fetchall()}


def ingest_reports(con, sources: RealSources, run_id: str, now: datetime) -> list[FileAccount]:
    """Write every new report of `sources` (checked already) in one transaction; per-file accounts
    for the evidence `inputs`, reports already ingested listed as skipped."""
    already = _already_ingested(con)
    stage = warehouse.stage_directory(con, "reports")
    inventory = _ReportWriter(con, INVENTORY_LOG, "s3_inventory_reports", "s3_inventory_rows", run_id, now, stage)
    batch = _ReportWriter(con, BATCH_LOG, "s3_batch_reports", "s3_batch_rows", run_id, now, stage)
    try:
        with warehouse.transaction(con):
            for report in sources.inventory:
                inventory.report(report, already, s3_inventory.inventory_reports_frame([report]),
                                 [(listed, report.file_format.lower(),
                                   partial(s3_inventory.read_file_rows, report, listed)) for listed in report.files])
            for report in sources.batch:
                batch.report(report, already, s3_batch.batch_reports_frame([report]),
                             [(result.listed, "csv", partial(s3_batch.read_file_rows, report, result))
                              for result in report.results])
            inventory.insert_staged()
            batch.insert_staged()
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return inventory.accounts + batch.accounts


def real_source_paths(**options: list[str] | None) -> dict[str, list[str]]:
    """The real-source options given (command line names without dashes), empty ones left out."""
    return {name: list(paths) for name, paths in options.items() if name in REAL_SOURCE_OPTIONS and paths}

