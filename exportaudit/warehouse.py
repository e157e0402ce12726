"""The DuckDB warehouse (docs/outputs.md#warehouse): connection with a bounded lock wait, tables with
comments on every table and column, and the few reads and writes the run needs.

Tables: the accepted logs (the four main ones, `retry_executions`, `alert_acknowledgements`),
`quarantine`, `ingested_files`, `runs`, `retry_plan`, `archive_health`, `archive_alerts`,
`retry_execution_verdicts`, `alert_ack_status` (rows of every run, keyed by run_id), `evidence_documents`
(both documents of every run), the S3 reports as read (`s3_inventory_reports`,
`s3_inventory_rows`, `s3_batch_reports`, `s3_batch_rows`, docs/real-sources.md), the run `ledger`
(docs/ledger.md, declared in exportaudit/ledger.py), and `latest_*` views of the latest run.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandera.polars as pa
import polars as pl

from exportaudit.contract import LOGS
from exportaudit.ledger import LEDGER_COLUMNS, LEDGER_DESCRIPTION, LEDGER_TABLE
from exportaudit.vocabulary import DEFAULT_DB, GATE_FAILED, SUCCEEDED
from transforms.timestamps import UTC_US
from schemas import archive_alerts, archive_health, archives, custody_checks, deliveries, exports, retry_plan
from schemas import alert_ack_status, alert_acknowledgements, retry_execution_verdicts, retry_executions

LOCK_TIMEOUT_SECONDS = 120.0  # default wait; EXPORTAUDIT_LOCK_TIMEOUT overrides it (read at each connect)

ACCEPTED_SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "exports": exports.schema, "deliveries": deliveries.schema,
    "archives": archives.schema, "custody_checks": custody_checks.schema,
    # docs/executions-and-acknowledgements.md: what the operator's retry worker and alerting system recorded
    "retry_executions": retry_executions.schema, "alert_acknowledgements": alert_acknowledgements.schema,
}
RESULT_SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "retry_plan": retry_plan.schema, "archive_health": archive_health.schema, "archive_alerts": archive_alerts.schema,
    # docs/executions-and-acknowledgements.md#outputs
    "retry_execution_verdicts": retry_execution_verdicts.schema, "alert_ack_status": alert_ack_status.schema,
}


class WarehouseBusy(RuntimeError):
    """Another process held the warehouse file for longer than the lock wait."""


# Tables whose columns are not a Pandera model: (name, description, [(column, type, description)]).
QUARANTINE_COLUMNS = [
    ("run_id", "VARCHAR", "Run that read the record."),
    ("log", "VARCHAR", "Log the record was given as: exports, deliveries, archives, custody_checks, "
                       "retry_executions or alert_acknowledgements; "
                       "s3_inventory or s3_batch_report for a row of an S3 report (docs/real-sources.md)."),
    ("source_file", "VARCHAR", "Base name of the file the record came from."),
    ("source_file_sha256", "VARCHAR", "sha256 of that file."),
    ("source_row", "BIGINT", "JSON line number, or CSV / Parquet data row number (1-based)."),
    ("raw_text", "VARCHAR", "The record as read (CSV and Parquet rows as a JSON object), redacted (docs/security.md#what-is-never-stored-or-printed)."),
    ("reason_codes", "VARCHAR[]", "Every reason code that applies (docs/inputs.md#bad-input-and-quarantine)."),
    ("reason_details", "VARCHAR[]", "Each reason with the field it concerns, e.g. missing_required_field:export_id."),
]
INGESTED_FILES_COLUMNS = [
    ("file_sha256", "VARCHAR", "sha256 of the file's bytes: a file with the same sha256 is not ingested again."),
    ("log", "VARCHAR", "Log the file was given as: a log name, or s3_inventory / s3_batch_report for the "
                       "manifest and data files of an S3 report (Svix attempt files are deliveries)."),
    ("file_name", "VARCHAR", "Base name of the file when it was ingested (an S3 report's data file: its key)."),
    ("format", "VARCHAR", "jsonl, csv or parquet; svix for a Svix attempts file; manifest for an S3 report's "
                          "manifest (no rows: its data files hold them)."),
    ("run_id", "VARCHAR", "Run that ingested it."),
    ("ingested_at", "TIMESTAMPTZ", "When it was ingested (UTC)."),
    ("rows_read", "BIGINT", "Non-blank JSON lines, CSV data rows or Parquet rows."),
    ("rows_accepted", "BIGINT", "Rows stored in the log's table."),
    ("rows_quarantined", "BIGINT", "Rows stored in quarantine."),
    ("rows_duplicate", "BIGINT", "Exact duplicates, counted and not stored again. read = accepted + quarantined + duplicate."),
    ("report_id", "VARCHAR", "For the manifest and data files of an S3 report: the report's id, the sha256 of its "
                             "manifest (a report already ingested is skipped); null for log files."),
]
# S3 reports as read (docs/real-sources.md): one table per report kind and one for its rows.
_ROW_LINEAGE = [
    ("report_id", "VARCHAR", "Report the row belongs to: sha256 of its manifest."),
    ("source_file", "VARCHAR", "Data file the row came from: its key as the manifest lists it (redacted)."),
    ("source_file_sha256", "VARCHAR", "sha256 of that data file's stored bytes."),
    ("source_row", "BIGINT", "1-based line of the decompressed CSV, or Parquet row number."),
    ("report_time", "TIMESTAMPTZ", "The report's time (UTC): rows are used by runs whose as_of is at or after it."),
]
REPORT_TABLES: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "s3_inventory_reports": ("S3 Inventory reports ingested, one row per manifest (docs/real-sources.md#s3-inventory-reports).", [
        ("report_id", "VARCHAR", "sha256 of the manifest's bytes: the report's identity."),
        ("manifest", "VARCHAR", "Path of manifest.json as given to the run (redacted)."),
        ("source_bucket", "VARCHAR", "sourceBucket: the bucket the report lists."),
        ("report_time", "TIMESTAMPTZ", "creationTimestamp (UTC): the derived checks' checked_at."),
        ("file_format", "VARCHAR", "CSV or Parquet."),
        ("data_files", "BIGINT", "Number of files[] entries."),
        ("all_versions", "BOOLEAN", "VersionId is in the schema: the report lists every version, not only "
                                    "current ones."),
        ("has_object_lock_mode", "BOOLEAN", "ObjectLockMode is in the schema (else observed_lock_mode is null)."),
        ("has_object_lock_retain_until_date", "BOOLEAN", "ObjectLockRetainUntilDate is in the schema."),
        ("has_object_lock_legal_hold_status", "BOOLEAN", "ObjectLockLegalHoldStatus is in the schema."),
        ("ingest_run_id", "VARCHAR", "Run that ingested the report."),
        ("ingested_at", "TIMESTAMPTZ", "When it was ingested (UTC)."),
    ]),
    "s3_inventory_rows": ("Rows of S3 Inventory reports as read, typed (docs/real-sources.md#inventory-formats-and-values); "
                          "quarantined rows are in quarantine. Rows matching no archive reference are kept "
                          "and used by nothing.", [
        *_ROW_LINEAGE,
        ("bucket", "VARCHAR", "Bucket."),
        ("key", "VARCHAR", "Key, form-decoded in CSV reports (raw in Parquet)."),
        ("version_id", "VARCHAR", "VersionId; null for the null version (empty) or in a current-versions report."),
        ("is_latest", "BOOLEAN", "IsLatest."),
        ("is_delete_marker", "BOOLEAN", "IsDeleteMarker."),
        ("size", "VARCHAR", "Size, as text."),
        ("last_modified_date", "TIMESTAMPTZ", "LastModifiedDate (UTC)."),
        ("e_tag", "VARCHAR", "ETag."),
        ("storage_class", "VARCHAR", "StorageClass."),
        ("is_multipart_uploaded", "BOOLEAN", "IsMultipartUploaded."),
        ("replication_status", "VARCHAR", "ReplicationStatus."),
        ("encryption_status", "VARCHAR", "EncryptionStatus."),
        ("object_lock_retain_until_date", "TIMESTAMPTZ", "ObjectLockRetainUntilDate (UTC)."),
        ("object_lock_mode", "VARCHAR", "ObjectLockMode, upper-cased: GOVERNANCE or COMPLIANCE; null when empty."),
        ("object_lock_legal_hold_status", "VARCHAR", "ObjectLockLegalHoldStatus, upper-cased: ON or OFF."),
        ("intelligent_tiering_access_tier", "VARCHAR", "IntelligentTieringAccessTier."),
        ("bucket_key_status", "VARCHAR", "BucketKeyStatus."),
        ("checksum_algorithm", "VARCHAR", "ChecksumAlgorithm."),
        ("object_access_control_list", "VARCHAR", "ObjectAccessControlList (base64 JSON, as read)."),
        ("object_owner", "VARCHAR", "ObjectOwner."),
        ("lifecycle_expiration_date", "TIMESTAMPTZ", "LifecycleExpirationDate (UTC)."),
        ("extra_fields", "VARCHAR", "Columns this reader does not know, as a JSON object (redacted); null when none."),
        ("ingest_run_id", "VARCHAR", "Run that ingested the row."),
    ]),
    "s3_batch_reports": ("S3 Batch Operations completion reports ingested, one row per manifest "
                         "(docs/real-sources.md#s3-batch-operations-checksum-reports).", [
        ("report_id", "VARCHAR", "sha256 of the manifest's bytes: the report's identity."),
        ("manifest", "VARCHAR", "Path of manifest.json as given to the run (redacted)."),
        ("report_time", "TIMESTAMPTZ", "ReportCreationDate (UTC): the derived checks' checked_at."),
        ("format", "VARCHAR", "Format, e.g. Report_CSV_20180820."),
        ("result_files", "BIGINT", "Number of Results[] entries."),
        ("ingest_run_id", "VARCHAR", "Run that ingested the report."),
        ("ingested_at", "TIMESTAMPTZ", "When it was ingested (UTC)."),
    ]),
    "s3_batch_rows": ("Result rows of S3 Batch Operations completion reports as read "
                      "(docs/real-sources.md#batch-result-rows); quarantined rows are in quarantine.", [
        *_ROW_LINEAGE,
        ("bucket", "VARCHAR", "Bucket of the task."),
        ("key", "VARCHAR", "Key of the task, form-decoded."),
        ("version_id", "VARCHAR", "VersionId; null for the null version (empty or null)."),
        ("task_status", "VARCHAR", "TaskStatus as written: succeeded or failed."),
        ("http_status", "VARCHAR", "The 3-digit status column (either column 5 or 6), as text."),
        ("error_code", "VARCHAR", "The other of columns 5 and 6; null when empty."),
        ("result_message", "VARCHAR", "ResultMessage (columns 7.. joined by commas), redacted."),
        ("message_error_code", "VARCHAR", "errorCode read leniently from an error details message."),
        ("checksum_algorithm", "VARCHAR", "checksumAlgorithm of a JSON ResultMessage."),
        ("checksum_type", "VARCHAR", "checksumType of a JSON ResultMessage."),
        ("observed_digest", "VARCHAR", "sha256:<hex> of a succeeded SHA256 FULL_OBJECT row; else null."),
        ("not_found", "BOOLEAN", "A failed row whose error code is 404, NoSuchKey or NoSuchVersion."),
        ("ingest_run_id", "VARCHAR", "Run that ingested the row."),
    ]),
}
# Columns an accepted table holds besides its contract fields and lineage, derived at ingest.
DERIVED_COLUMNS: dict[str, tuple[str, ...]] = {"archives": ("s3_bucket", "s3_key", "s3_version_id")}

RUN_METRIC_COLUMNS = [
    "retryable_deliveries", "waiting_deliveries", "held_deliveries", "suppressed_deliveries", "recovered_deliveries",
    "failed_deliveries", "archive_health_alert_count", "archive_health_critical_alert_count",
    "archive_health_warning_alert_count", "verified_exports", "exports_missing_reference", "exports_unrepresented",
    "quarantined_rows", "rows_read",
    # docs/executions-and-acknowledgements.md#metrics-warehouse-report-and-api
    "nonconforming_retry_executions", "retries_not_executed", "unacknowledged_critical_alerts", "overdue_alerts",
]
RUNS_COLUMNS = [
    ("run_id", "VARCHAR", "Id of the run."),
    ("as_of", "TIMESTAMPTZ", "Instant the rules were evaluated at (UTC)."),
    ("started_at", "TIMESTAMPTZ", "When the run started (UTC)."),
    ("finished_at", "TIMESTAMPTZ", "When the run finished (UTC)."),
    ("status", "VARCHAR", f"{SUCCEEDED}, or {GATE_FAILED} when a gate (quarantine ratio, --fail-on) made it exit 3."),
    ("exit_code", "INTEGER", "Exit code of the run."),
    ("retry_plan_evidence_id", "VARCHAR", "evidence_id of the run's retry-plan.json."),
    ("archive_health_evidence_id", "VARCHAR", "evidence_id of the run's archive-health.json."),
    ("quarantine_ratio", "DOUBLE", "Quarantined rows / rows read in this run (0 when none read)."),
    ("run_duration_seconds", "DOUBLE", "Wall time of the run."),
] + [(name, "BIGINT", f"Metric exportaudit_{name} of the run (docs/outputs.md#metrics).") for name in RUN_METRIC_COLUMNS] + [
    ("retry_executions_evidence_id", "VARCHAR", "evidence_id of the run's retry-executions.json "
                                                "(docs/executions-and-acknowledgements.md#outputs)."),
    ("alert_acknowledgements_evidence_id", "VARCHAR", "evidence_id of the run's alert-acknowledgements.json."),
    ("policy_json", "VARCHAR", "Canonical JSON of the policy the run's evidence was computed at: the keys of every "
                               "document's policy block. `exportaudit verify` recomputes the evidence at it "
                               "(docs/ledger.md#exportaudit-verify)."),
]
EVIDENCE_DOCUMENTS_COLUMNS = [
    ("run_id", "VARCHAR", "Run that wrote the document."),
    ("document", "VARCHAR", "retry_plan or archive_health."),
    ("evidence_id", "VARCHAR", "evidence_id of the document."),
    ("as_of", "TIMESTAMPTZ", "as_of of the document (UTC)."),
    ("policy_json", "VARCHAR", "Canonical JSON of the document's policy block."),
    ("dataset_sha256", "VARCHAR", "dataset.sha256 of the document: every file ingested when the run evaluated."),
    ("header", "VARCHAR", "Canonical JSON of the document without its record lists."),
    ("body_bytes", "BIGINT", "Length of the document's canonical JSON, bytes."),
    ("body", "BLOB", "The document's canonical JSON (the run directory's file, byte for byte), zstd-compressed."),
]

# Which run is the latest: the one that finished last (run_id breaks a tie). The one definition,
# used by these views and by every run-history query (exportaudit/history.py).
LATEST_RUN_FIRST = "finished_at desc, run_id desc"
LATEST_VIEWS = {
    "latest_run": ("The latest run.", f"select * from runs order by {LATEST_RUN_FIRST} limit 1"),
    "latest_retry_plan": ("Retry plan of the latest run.",
                          "select * from retry_plan where run_id = (select run_id from latest_run)"),
    "latest_archive_health": ("Archive health export records of the latest run.",
                              "select * from archive_health where run_id = (select run_id from latest_run)"),
    "latest_archive_alerts": ("Archive health alerts of the latest run.",
                              "select * from archive_alerts where run_id = (select run_id from latest_run)"),
    "latest_retry_execution_verdicts": ("Retry execution verdicts of the latest run.",
                                        "select * from retry_execution_verdicts "
                                        "where run_id = (select run_id from latest_run)"),
    "latest_alert_ack_status": ("Alert acknowledgement status of the latest run.",
                                "select * from alert_ack_status where run_id = (select run_id from latest_run)"),
}


def connect(path: str | Path = DEFAULT_DB, read_only: bool = False,
            timeout_seconds: float | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; while another process holds the file, wait (bounded, with a message)."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    if timeout_seconds is None:
        timeout_seconds = float(os.environ.get("EXPORTAUDIT_LOCK_TIMEOUT", LOCK_TIMEOUT_SECONDS))
    timeout = timeout_seconds
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusy(f"{path} is held by another process; gave up after {timeout:.0f} s") from None
            if not announced:
                print(f"exportaudit: {path} is held by another process; waiting up to {timeout:.0f} s ...",
                      file=sys.stderr, flush=True)
                announced = True
            time.sleep(0.25)
    con.execute("SET TimeZone = 'UTC'")
    # Polars holds the night's frames; DuckDB's buffer pool need not grow to 80 % of the machine.
    con.execute(f"SET memory_limit = '{memory_limit()}'")
    return con


def memory_limit() -> str:
    """DuckDB's memory_limit for the warehouse's connections (EXPORTAUDIT_DUCKDB_MEMORY, default 3GB)."""
    return os.environ.get("EXPORTAUDIT_DUCKDB_MEMORY", "3GB")


def release_cached_blocks(con) -> None:
    """Hand back the memory of the table blocks DuckDB keeps cached after reading them (up to its
    memory_limit: ~0.6 GB after snapshotting 1M exports' logs, more after ingest). The rules then
    run in Polars beside it. Lowering the limit evicts the cached blocks (they are on disk); the
    limit is then set back (DuckDB prints the limit rounded: the configured text is set again).
    The limit is the database's: only for a process alone on its connection (the nightly run)."""
    con.execute("SET memory_limit = '64MB'")
    con.execute(f"SET memory_limit = '{memory_limit()}'")


def _duckdb_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ"
    return {pl.Utf8: "VARCHAR", pl.Int64: "BIGINT", pl.Boolean: "BOOLEAN", pl.Float64: "DOUBLE"}[dtype]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _schema_columns(schema: pa.DataFrameSchema) -> list[tuple[str, str, str]]:
    return [(name, _duckdb_type(column.dtype.type), column.description or "")
            for name, column in schema.columns.items()]


def _create_table(con, name: str, description: str, columns: list[tuple[str, str, str]]) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(f'{_ident(c)} {t}' for c, t, _ in columns)})")
    # A warehouse made by an earlier version gains the columns added since (nullable, at the end).
    existing = {row[0] for row in con.execute(
        "select column_name from duckdb_columns() where table_name = ? and schema_name = 'main'", [name]).fetchall()}
    for column, kind, _ in columns:
        if column not in existing:
            con.execute(f"ALTER TABLE {name} ADD COLUMN {_ident(column)} {kind}")
    con.execute(f"COMMENT ON TABLE {name} IS {_quote(description)}")
    for column, _, text in columns:
        con.execute(f"COMMENT ON COLUMN {name}.{_ident(column)} IS {_quote(text)}")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN ... COMMIT, rolled back on any error (or interrupt): a crash leaves nothing half-written."""
    con.execute("BEGIN")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table and view (idempotent), each with its comments."""
    con.execute("BEGIN")
    for name, schema in ACCEPTED_SCHEMAS.items():
        _create_table(con, name, schema.description, _schema_columns(schema))
    _create_table(con, "quarantine", "Records that broke the contract, with every reason (docs/inputs.md#bad-input-and-quarantine); redacted.",
                  QUARANTINE_COLUMNS)
    _create_table(con, "ingested_files", "Every file ever ingested, with its per-file accounting.",
                  INGESTED_FILES_COLUMNS)
    _create_table(con, "runs", "One row per run: as_of, times, status, evidence ids and metric values.", RUNS_COLUMNS)
    for name, (description, columns) in REPORT_TABLES.items():
        _create_table(con, name, description, columns)
    _create_table(con, "evidence_documents", "Both evidence documents of every run, keyed by run_id: the HTTP API "
                  "answers from them when as_of, policy and dataset match (docs/outputs.md#http-api).",
                  EVIDENCE_DOCUMENTS_COLUMNS)
    run_id = ("run_id", "VARCHAR", "Run that produced the row.")
    for name, schema in RESULT_SCHEMAS.items():
        _create_table(con, name, f"{schema.description} Rows of every run, keyed by run_id.",
                      [run_id, *_schema_columns(schema)])
    _create_table(con, LEDGER_TABLE, LEDGER_DESCRIPTION, LEDGER_COLUMNS)  # docs/ledger.md#ledger-entry
    for name, (description, query) in LATEST_VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {query}")
        con.execute(f"COMMENT ON VIEW {name} IS {_quote(description)}")
        _comment_view_columns(con, name, query)
    con.execute("COMMIT")


def _comment_view_columns(con, view: str, query: str) -> None:
    """A latest_* view's columns carry the comments of its table's columns (`select * from <table>`)."""
    table = query.split(" from ", 1)[1].split()[0]
    comments = con.execute("select column_name, comment from duckdb_columns() where table_name = ? "
                           "and schema_name = 'main'", [table]).fetchall()
    for column, comment in comments:
        if comment:
            con.execute(f"COMMENT ON COLUMN {view}.{_ident(column)} IS {_quote(comment)}")


# Frames of at least this many rows go to DuckDB through a Parquet file (see append).
APPEND_THROUGH_PARQUET_ROWS = 100_000


def append(con, table: str, frame: pl.DataFrame) -> None:
    """Insert a Polars frame into a table by column name, in bulk. A long frame is written to a
    Parquet file in `<db>.append.tmp/` and read from there: DuckDB held about 0.35 KB per row of a
    frame scanned through Arrow outside its buffer pool, after the insert and its commit too (2.44M
    alert rows: +0.8 GiB; three such inserts in a row: +2.5 GiB), and +0.1 GiB from Parquet, for
    +0.25 s (docs/outputs.md#working-files-beside-the-warehouse)."""
    if frame.height == 0:
        return
    columns = ", ".join(_ident(c) for c in frame.columns)
    if frame.height >= APPEND_THROUGH_PARQUET_ROWS and pl.Null not in frame.dtypes:
        folder = stage_directory(con, "append")
        try:
            path = folder / f"{table}.parquet"
            frame.write_parquet(path, compression="uncompressed", statistics=False)
            con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM read_parquet(?)", [str(path)])
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    con.register("_append_frame", frame)
    try:
        con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _append_frame")
    finally:
        con.unregister("_append_frame")


def stage_directory(con, purpose: str = "ingest") -> Path:
    """Where a run's staging files go: next to the warehouse file (`<db>.<purpose>.tmp/`, emptied
    first: a crashed run may have left files), or a temporary directory for an in-memory one.
    The logs' (kept until the rules have run, RunRecords), the S3 reports' and the long appends'
    have their own (docs/outputs.md#working-files-beside-the-warehouse)."""
    rows = con.execute("select path from duckdb_databases() where database_name = current_database()").fetchall()
    if rows and rows[0][0]:
        folder = Path(rows[0][0]).with_name(f"{Path(rows[0][0]).name}.{purpose}.tmp")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder
    return Path(tempfile.mkdtemp(prefix=f"exportaudit-{purpose}-"))


def accepted_records(con, log: str, directory: Path | None = None, this_run: tuple | None = None) -> pl.LazyFrame:
    """Every accepted record of a log, in its stored types (contract fields, and the columns derived
    at ingest: the S3 identity of archives).

    directory: where to snapshot the table as Parquet (DuckDB's COPY streams it in bounded memory,
    read-only connections too); the records are then a scan of that file, so the rules read only
    the columns and row groups they use (projection and predicate pushdown). The caller removes the
    directory once the rules have run. Without one: read whole into memory.

    this_run (with a directory): (ingest.StagedAccepted, run id), the records the current run
    accepted, still in the staging files they were inserted from; they are scanned there, and only
    the records of earlier runs are copied out of the table (none when the table was empty before
    the run). The same records, without writing and reading them once more."""
    fields = LOGS[log].field_names + list(DERIVED_COLUMNS.get(log, ()))
    columns = ", ".join(_ident(f) for f in fields)
    if directory is None:
        return _in_stored_types(con.sql(f"select {columns} from {log}").pl().lazy(), log, fields)
    if this_run is None:
        return _in_stored_types(_snapshot(con, f"select {columns} from {log}", Path(directory) / f"{log}.parquet"),
                                log, fields)
    staged, run_id = this_run
    parts = [pl.scan_parquet(staged.paths).filter(~pl.col("__order").is_in(staged.not_accepted.implode()))
             .select(fields)]
    if staged.had_rows:
        earlier = f"select {columns} from {log} where ingest_run_id is distinct from {_quote(run_id)}"
        parts.insert(0, _snapshot(con, earlier, Path(directory) / f"{log}.parquet"))
    return pl.concat([_in_stored_types(part, log, fields) for part in parts])


def _snapshot(con, query: str, path: Path) -> pl.LazyFrame:
    quoted = str(path).replace("'", "''")
    con.execute(f"COPY ({query}) TO '{quoted}' (FORMAT parquet, COMPRESSION lz4)")
    return pl.scan_parquet(path)


def _in_stored_types(frame: pl.LazyFrame, log: str, fields: list[str]) -> pl.LazyFrame:
    schema, stored = ACCEPTED_SCHEMAS[log], frame.collect_schema()
    # Cast only the columns whose type differs: a no-op cast would stop predicates being pushed to the scan.
    casts = [pl.col(f).cast(schema.columns[f].dtype.type) for f in fields if stored[f] != schema.columns[f].dtype.type]
    return frame.with_columns(casts) if casts else frame


# What the derived custody checks read of each report table (transforms/derived_custody.py).
REPORT_INPUTS: dict[str, tuple[str, ...]] = {
    "s3_inventory_reports": ("report_id", "report_time", "source_bucket", "all_versions", "has_object_lock_mode"),
    "s3_inventory_rows": ("report_id", "key", "version_id", "is_latest", "is_delete_marker", "object_lock_mode",
                          "object_lock_retain_until_date", "object_lock_legal_hold_status"),
    "s3_batch_rows": ("report_id", "report_time", "bucket", "key", "version_id", "task_status", "observed_digest",
                      "not_found"),
}


def report_records(con, table: str) -> pl.LazyFrame:
    """What the rules read of an S3 report table (docs/real-sources.md). Rows are read only for the
    (bucket, key) pairs some archive reference names: the others are used by nothing, and an
    inventory can list millions of objects."""
    columns = ", ".join(f"t.{_ident(c)}" for c in REPORT_INPUTS[table])
    if table == "s3_inventory_reports" or not con.execute(f"select exists (select 1 from {table})").fetchall()[0][0]:
        # (An empty report table is read as it is: matching it would still gather every archive's
        # distinct (bucket, key), +0.9 GB at 10M archive references.)
        query = f"select {columns} from {table} t"
    else:
        query = (f"select {columns} from {table} t semi join (select distinct s3_bucket, s3_key from archives "
                 f"where s3_bucket is not null) a on t.bucket = a.s3_bucket and t.key = a.s3_key")
    frame = con.sql(query + " order by all").pl()
    return frame.lazy().with_columns(pl.col(name).cast(UTC_US) for name, dtype in frame.schema.items()
                                     if isinstance(dtype, pl.Datetime))


def accepted_logs(con) -> dict[str, pl.LazyFrame]:
    """Every accepted record of every log: what the rules run over."""
    return {log: accepted_records(con, log) for log in ACCEPTED_SCHEMAS}
