"""The DuckDB warehouse (docs/outputs.md#warehouse): connection with a bounded lock wait, tables with
comments on every table and column, and the few reads and writes the run needs.

Tables: the four accepted logs, `quarantine`, `ingested_files`, `runs`, `retry_plan`,
`archive_health`, `archive_alerts` (rows of every run, keyed by run_id), and
`latest_*` views of the latest run.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import duckdb
import pandera.polars as pa
import polars as pl

from exportaudit.contract import LOGS
from exportaudit.vocabulary import DEFAULT_DB, GATE_FAILED, SUCCEEDED
from schemas import archive_alerts, archive_health, archives, custody_checks, deliveries, exports, retry_plan

LOCK_TIMEOUT_SECONDS = 120.0  # default wait; EXPORTAUDIT_LOCK_TIMEOUT overrides it (read at each connect)

ACCEPTED_SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "exports": exports.schema, "deliveries": deliveries.schema,
    "archives": archives.schema, "custody_checks": custody_checks.schema,
}
RESULT_SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "retry_plan": retry_plan.schema, "archive_health": archive_health.schema, "archive_alerts": archive_alerts.schema,
}


class WarehouseBusy(RuntimeError):
    """Another process held the warehouse file for longer than the lock wait."""


# Tables whose columns are not a Pandera model: (name, description, [(column, type, description)]).
QUARANTINE_COLUMNS = [
    ("run_id", "VARCHAR", "Run that read the record."),
    ("log", "VARCHAR", "Log the record was given as: exports, deliveries, archives or custody_checks."),
    ("source_file", "VARCHAR", "Base name of the file the record came from."),
    ("source_file_sha256", "VARCHAR", "sha256 of that file."),
    ("source_row", "BIGINT", "JSON line number, or CSV / Parquet data row number (1-based)."),
    ("raw_text", "VARCHAR", "The record as read (CSV and Parquet rows as a JSON object), redacted (docs/security.md#what-is-never-stored-or-printed)."),
    ("reason_codes", "VARCHAR[]", "Every reason code that applies (docs/inputs.md#bad-input-and-quarantine)."),
    ("reason_details", "VARCHAR[]", "Each reason with the field it concerns, e.g. missing_required_field:export_id."),
]
INGESTED_FILES_COLUMNS = [
    ("file_sha256", "VARCHAR", "sha256 of the file's bytes: a file with the same sha256 is not ingested again."),
    ("log", "VARCHAR", "Log the file was given as."),
    ("file_name", "VARCHAR", "Base name of the file when it was ingested."),
    ("format", "VARCHAR", "jsonl, csv or parquet."),
    ("run_id", "VARCHAR", "Run that ingested it."),
    ("ingested_at", "TIMESTAMPTZ", "When it was ingested (UTC)."),
    ("rows_read", "BIGINT", "Non-blank JSON lines, CSV data rows or Parquet rows."),
    ("rows_accepted", "BIGINT", "Rows stored in the log's table."),
    ("rows_quarantined", "BIGINT", "Rows stored in quarantine."),
    ("rows_duplicate", "BIGINT", "Exact duplicates, counted and not stored again. read = accepted + quarantined + duplicate."),
]
RUN_METRIC_COLUMNS = [
    "retryable_deliveries", "waiting_deliveries", "held_deliveries", "suppressed_deliveries", "recovered_deliveries",
    "failed_deliveries", "archive_health_alert_count", "archive_health_critical_alert_count",
    "archive_health_warning_alert_count", "verified_exports", "exports_missing_reference", "exports_unrepresented",
    "quarantined_rows", "rows_read",
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
] + [(name, "BIGINT", f"Metric exportaudit_{name} of the run (docs/outputs.md#metrics).") for name in RUN_METRIC_COLUMNS]

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
    con.execute(f"SET memory_limit = '{os.environ.get('EXPORTAUDIT_DUCKDB_MEMORY', '3GB')}'")
    return con


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
    con.execute(f"COMMENT ON TABLE {name} IS {_quote(description)}")
    for column, _, text in columns:
        con.execute(f"COMMENT ON COLUMN {name}.{_ident(column)} IS {_quote(text)}")


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
    run_id = ("run_id", "VARCHAR", "Run that produced the row.")
    for name, schema in RESULT_SCHEMAS.items():
        _create_table(con, name, f"{schema.description} Rows of every run, keyed by run_id.",
                      [run_id, *_schema_columns(schema)])
    for name, (description, query) in LATEST_VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {query}")
        con.execute(f"COMMENT ON VIEW {name} IS {_quote(description)}")
    con.execute("COMMIT")


def append(con, table: str, frame: pl.DataFrame) -> None:
    """Insert a Polars frame into a table by column name (bulk, through Arrow)."""
    if frame.height == 0:
        return
    columns = ", ".join(_ident(c) for c in frame.columns)
    con.register("_append_frame", frame)
    try:
        con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _append_frame")
    finally:
        con.unregister("_append_frame")


def append_accepted(con, log: str, valid: pl.DataFrame, file_sha256s: list[str], run_id: str) -> None:
    """Insert the valid records whose status is accepted, adding their lineage in SQL: DuckDB
    scans the frame where it lies, so the (big) accepted subset is never copied in Polars."""
    fields = LOGS[log].field_names
    files = pl.DataFrame({"file_index": list(range(len(file_sha256s))), "sha256": file_sha256s},
                         schema={"file_index": pl.Int32, "sha256": pl.Utf8})
    columns = ", ".join(_ident(c) for c in [*fields, "extra_fields", "source_file_sha256", "source_row", "ingest_run_id"])
    values = ", ".join(f"v.{_ident(c)}" for c in [*fields, "extra_fields"])
    con.register("_valid_frame", valid)
    con.register("_files_frame", files)
    try:
        con.execute(f"INSERT INTO {log} ({columns}) SELECT {values}, f.sha256, v.source_row, ? FROM _valid_frame v "
                    f"JOIN _files_frame f USING (file_index) WHERE v.status = 'accepted'",
                    [run_id])
    finally:
        con.unregister("_valid_frame")
        con.unregister("_files_frame")


def accepted_records(con, log: str) -> pl.LazyFrame:
    """Every accepted record of a log, in its stored types (contract fields only)."""
    fields = LOGS[log].field_names
    schema = ACCEPTED_SCHEMAS[log]
    frame = con.sql(f"select {', '.join(fields)} from {log}").pl()
    return frame.lazy().with_columns(pl.col(f).cast(schema.columns[f].dtype.type) for f in fields)


def accepted_logs(con) -> dict[str, pl.LazyFrame]:
    """Every accepted record of every log: what the rules run over."""
    return {log: accepted_records(con, log) for log in ACCEPTED_SCHEMAS}
