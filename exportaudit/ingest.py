"""Ingestion (SPEC 1.5): read every given file first (an unreadable one stops the run before
anything is written), then redact, validate, de-duplicate against the batch and the
warehouse, and write accepted rows, quarantine and per-file accounting in one transaction.

Nothing is lost: for every file, rows read = accepted + quarantined + duplicate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from exportaudit import warehouse
from exportaudit.contract import CODE, LOGS, STRING, Log
from exportaudit.readers import DecodedFile, decode_file, load_file, resolve_paths
from exportaudit.redact import redact_str, redact_text
from transforms.record_validation import validated_records

ACCEPTED, DUPLICATE, CONFLICTING = "accepted", "duplicate", "conflicting_duplicate"


@dataclass
class FileAccount:
    """One input file's accounting in one run (SPEC 4.1 `inputs`)."""
    log: str
    file_name: str
    sha256: str
    skipped: bool  # already ingested (same sha256): nothing read again
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0

    def as_input(self) -> dict:
        record = asdict(self)
        return {"name": record.pop("file_name"), **record}


def read_inputs(paths_by_log: dict[str, list[str]]) -> list[DecodedFile]:
    """Decode every file of every log; raises UnreadableInput on the first file that cannot be read."""
    decoded = []
    for log_name, specs in paths_by_log.items():
        for path in resolve_paths(specs):
            decoded.append(decode_file(load_file(log_name, Path(path)), LOGS[log_name]))
    return decoded


def redacted(records: pl.LazyFrame, log: Log) -> pl.LazyFrame:
    """SPEC 5 applied to every kept string: free-text fields, extra fields and raw text. On deliveries,
    a private connector's hosts are hidden everywhere in its record."""
    private = False
    if log.name == "deliveries":
        private = pl.col("connector_visibility").str.strip_chars().str.to_lowercase() == "private"
    text_columns = [f.name for f in log.fields if f.kind in (STRING, CODE)] + ["raw_text", "extra_fields"]
    return records.with_columns(redact_text(pl.col(name), private).alias(name) for name in text_columns)


def duplicate_status(valid: pl.DataFrame, existing: pl.DataFrame, log: Log) -> pl.Series:
    """accepted / duplicate / conflicting_duplicate for each valid record (SPEC 1.5, 1.6).

    `valid` is in the order files and lines were given; `existing` holds the warehouse's
    accepted records with the same keys. A key already accepted keeps its record: equal
    values are duplicates, different ones conflict. Otherwise, when the batch's records of
    a key agree, the first is accepted and the rest are duplicates; when they disagree, all
    of them conflict.
    """
    key, fields = list(log.natural_key), log.field_names
    fingerprint = pl.struct(fields).hash(seed=0)
    existing_fingerprints = existing.select(*key, existing_fingerprint=fingerprint).unique(subset=key)
    marked = (
        valid.select(*fields)
        .with_row_index("batch_order")
        .with_columns(fingerprint=fingerprint)
        .join(existing_fingerprints, on=key, how="left", maintain_order="left")
        .with_columns(
            variants=pl.col("fingerprint").n_unique().over(key),
            is_first=pl.col("batch_order") == pl.col("batch_order").min().over(key),
        )
    )
    status = (
        pl.when(pl.col("existing_fingerprint").is_not_null())
        .then(pl.when(pl.col("fingerprint") == pl.col("existing_fingerprint")).then(pl.lit(DUPLICATE))
              .otherwise(pl.lit(CONFLICTING)))
        .when(pl.col("variants") > 1).then(pl.lit(CONFLICTING))
        .when(pl.col("is_first")).then(pl.lit(ACCEPTED))
        .otherwise(pl.lit(DUPLICATE))
    )
    return marked.sort("batch_order").select(status.alias("status")).to_series()


def _existing_with_keys(con: duckdb.DuckDBPyConnection, log: Log, keys: pl.DataFrame) -> pl.DataFrame:
    key = list(log.natural_key)
    con.register("_batch_keys", keys.select(key).unique())
    try:
        frame = con.sql(
            f"select t.{', t.'.join(log.field_names)} from {log.name} t semi join _batch_keys using ({', '.join(key)})"
        ).pl()
    finally:
        con.unregister("_batch_keys")
    schema = warehouse.ACCEPTED_SCHEMAS[log.name]
    return frame.with_columns(pl.col(f).cast(schema.columns[f].dtype.type) for f in log.field_names)


def _checked_batch(files: list[DecodedFile], log: Log) -> pl.DataFrame:
    frames = [
        f.records.with_columns(
            source_file=pl.lit(redact_str(f.file.path.name)), source_file_sha256=pl.lit(f.file.sha256),
        )
        for f in files
    ]
    batch = pl.concat(frames, how="diagonal_relaxed")
    return validated_records(redacted(batch.lazy(), log), log).collect()


def ingest_log(con, log: Log, files: list[DecodedFile], run_id: str, now: datetime) -> None:
    """Write one log's new files: accepted rows, quarantine rows and ingested_files rows."""
    batch = _checked_batch(files, log)
    is_valid = batch["reason_codes"].list.len() == 0
    valid, invalid = batch.filter(is_valid), batch.filter(~is_valid)
    status = duplicate_status(valid, _existing_with_keys(con, log, valid), log)
    valid = valid.with_columns(status=status)

    schema = warehouse.ACCEPTED_SCHEMAS[log.name]
    accepted = valid.filter(pl.col("status") == ACCEPTED).with_columns(ingest_run_id=pl.lit(run_id))
    accepted = schema.validate(accepted.select(list(schema.columns)))
    conflicting = valid.filter(pl.col("status") == CONFLICTING).with_columns(
        reason_codes=pl.lit(["conflicting_duplicate"], dtype=pl.List(pl.Utf8)),
        reason_details=pl.concat_list(pl.lit("conflicting_duplicate:" + ",".join(log.natural_key))),
    )
    quarantined = pl.concat([invalid, conflicting.drop("status")], how="diagonal_relaxed").select(
        run_id=pl.lit(run_id), log=pl.lit(log.name), source_file="source_file", source_file_sha256="source_file_sha256",
        source_row="source_row", raw_text="raw_text", reason_codes="reason_codes", reason_details="reason_details",
    )
    warehouse.append(con, log.name, accepted)
    warehouse.append(con, "quarantine", quarantined)

    outcome = pl.concat([
        valid.select("source_file_sha256", outcome=pl.when(pl.col("status") == CONFLICTING)
                     .then(pl.lit("quarantined")).otherwise(pl.col("status"))),
        invalid.select("source_file_sha256", outcome=pl.lit("quarantined")),
    ])
    counts = outcome.group_by("source_file_sha256").agg(
        rows_read=pl.len(),
        rows_accepted=(pl.col("outcome") == ACCEPTED).sum(),
        rows_quarantined=(pl.col("outcome") == "quarantined").sum(),
        rows_duplicate=(pl.col("outcome") == DUPLICATE).sum(),
    )
    files_frame = pl.DataFrame(
        {"file_sha256": [f.file.sha256 for f in files], "log": log.name,
         "file_name": [redact_str(f.file.path.name) for f in files], "format": [f.file.format for f in files],
         "run_id": run_id, "ingested_at": now}
    ).join(counts, left_on="file_sha256", right_on="source_file_sha256", how="left").with_columns(
        pl.col("rows_read", "rows_accepted", "rows_quarantined", "rows_duplicate").fill_null(0).cast(pl.Int64)
    )
    warehouse.append(con, "ingested_files", files_frame)


def ingest(con, decoded_files: list[DecodedFile], run_id: str, now: datetime) -> list[FileAccount]:
    """Ingest every new file in one transaction; files already ingested (same sha256) are skipped."""
    already = {(log, sha) for log, sha in con.execute("select log, file_sha256 from ingested_files").fetchall()}
    new_by_log: dict[str, list[DecodedFile]] = {}
    skipped: list[tuple[DecodedFile, bool]] = []
    for decoded in decoded_files:
        identity = (decoded.file.log, decoded.file.sha256)
        skipped.append((decoded, identity in already))
        if identity not in already:
            already.add(identity)
            new_by_log.setdefault(decoded.file.log, []).append(decoded)

    con.execute("BEGIN")
    try:
        for log_name, files in new_by_log.items():
            ingest_log(con, LOGS[log_name], files, run_id, now)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise

    counts = {
        (row[0], row[1]): row[2:]
        for row in con.execute(
            "select log, file_sha256, rows_read, rows_accepted, rows_quarantined, rows_duplicate "
            "from ingested_files where run_id = ?", [run_id]).fetchall()
    }
    accounts = []
    for decoded, was_skipped in skipped:
        account = FileAccount(decoded.file.log, redact_str(decoded.file.path.name), decoded.file.sha256, was_skipped)
        if not was_skipped:
            (account.rows_read, account.rows_accepted, account.rows_quarantined,
             account.rows_duplicate) = counts[(decoded.file.log, decoded.file.sha256)]
        accounts.append(account)
    return accounts
