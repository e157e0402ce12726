"""Ingestion (docs/inputs.md#bad-input-and-quarantine): read every given file first (an unreadable one stops the run before
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
from exportaudit.faults import checkpoint
from exportaudit.readers import DecodedFile, decode_file, load_file, resolve_paths
from exportaudit.redact import redact_str, redacted_column
from schemas._columns import LINEAGE_COLUMNS
from transforms.record_validation import CheckedRecords, checked_records

ACCEPTED, DUPLICATE, CONFLICTING = "accepted", "duplicate", "conflicting_duplicate"


@dataclass
class FileAccount:
    """One input file's accounting in one run (docs/outputs.md#evidence-documents `inputs`)."""
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


def rows_read(accounts: list[FileAccount]) -> int:
    return sum(account.rows_read for account in accounts)


def rows_quarantined(accounts: list[FileAccount]) -> int:
    return sum(account.rows_quarantined for account in accounts)


class DecodedInputs:
    """Files decoded before a run starts, handed to the flow as one explicit argument.

    The command line decodes every file first, so unreadable input exits 2 before anything
    runs, and the flow does not read them twice. Slots only, no __dict__: Prefect records flow
    parameters as JSON and, on this object, gives up at once ("<DecodedInputs>") instead of
    copying the frames it holds.
    """

    __slots__ = ("files",)

    def __init__(self, files: list[DecodedFile]):
        self.files = files


def read_inputs(paths_by_log: dict[str, list[str]], preread: DecodedInputs | None = None) -> list[DecodedFile]:
    """Decode every file of every log (unless decoded already, `preread`); raises UnreadableInput on the
    first file that cannot be read."""
    if preread is not None:
        return preread.files
    decoded = []
    for log_name, specs in paths_by_log.items():
        for path in resolve_paths(specs):
            decoded.append(decode_file(load_file(log_name, Path(path)), LOGS[log_name]))
    return decoded


def private_connector(records: pl.DataFrame, log: Log) -> pl.Series | None:
    """Rows of a private connector (deliveries only), read leniently so that invalid rows count too."""
    if log.name != "deliveries":
        return None
    return records["connector_visibility"].str.strip_chars().str.to_lowercase() == "private"


def redacted(records: pl.DataFrame, log: Log) -> pl.DataFrame:
    """docs/security.md#what-is-never-stored-or-printed applied to every kept string field and the extra fields, before anything is checked
    or stored. On deliveries, a private connector's hosts are hidden everywhere in its record."""
    private = private_connector(records, log)
    text_columns = [f.name for f in log.fields if f.kind in (STRING, CODE)] + ["extra_fields"]
    return records.with_columns(redacted_column(records[name], private).alias(name) for name in text_columns)


def duplicate_status(valid: pl.DataFrame, existing: pl.DataFrame, log: Log) -> pl.Series:
    """accepted / duplicate / conflicting_duplicate for each valid record (docs/inputs.md#bad-input-and-quarantine, 1.6).

    `valid` is in the order files and lines were given; `existing` holds the warehouse's
    accepted records with the same keys. A key already accepted keeps its record: equal
    values are duplicates, different ones conflict. Otherwise, when the batch's records of
    a key agree, the first is accepted and the rest are duplicates; when they disagree, all
    of them conflict. Only keys met twice (or already accepted) are compared, value by value.
    """
    key, fields = list(log.natural_key), log.field_names
    key_struct = pl.struct(key) if len(key) > 1 else pl.col(key[0])
    keys = valid.select(key)
    contested_rows = keys.select(key_struct.is_duplicated()).to_series()
    if existing.height:
        existing_keys = existing.select(key).unique().with_columns(__exists=pl.lit(True))
        known = keys.join(existing_keys, on=key, how="left", maintain_order="left")["__exists"].is_not_null()
        contested_rows = contested_rows | known
    status = pl.repeat(ACCEPTED, valid.height, dtype=pl.Utf8, eager=True).alias("status")
    rows = contested_rows.arg_true()
    if len(rows) == 0:
        return status
    contested = valid.select(fields)[rows].with_columns(batch_order=rows)

    fingerprint = pl.struct(fields).hash(seed=0)
    existing_fingerprints = existing.select(*key, existing_fingerprint=fingerprint).unique(subset=key)
    marked = (
        contested.with_columns(fingerprint=fingerprint)
        .join(existing_fingerprints, on=key, how="left", maintain_order="left")
        .with_columns(
            variants=pl.col("fingerprint").n_unique().over(key),
            is_first=pl.col("batch_order") == pl.col("batch_order").min().over(key),
        )
    )
    contested_status = (
        pl.when(pl.col("existing_fingerprint").is_not_null())
        .then(pl.when(pl.col("fingerprint") == pl.col("existing_fingerprint")).then(pl.lit(DUPLICATE))
              .otherwise(pl.lit(CONFLICTING)))
        .when(pl.col("variants") > 1).then(pl.lit(CONFLICTING))
        .when(pl.col("is_first")).then(pl.lit(ACCEPTED))
        .otherwise(pl.lit(DUPLICATE))
    )
    decided = marked.select("batch_order", contested_status.alias("status"))
    return status.scatter(decided["batch_order"], decided["status"])


def _existing_with_keys(con: duckdb.DuckDBPyConnection, log: Log, keys: pl.DataFrame) -> pl.DataFrame:
    key = list(log.natural_key)
    schema = warehouse.ACCEPTED_SCHEMAS[log.name]
    if not con.execute(f"select exists (select 1 from {log.name})").fetchall()[0][0]:  # first night: none to compare
        return pl.DataFrame(schema={f: schema.columns[f].dtype.type for f in log.field_names})
    con.register("_batch_keys", keys.select(key).unique())
    try:
        frame = con.sql(
            f"select t.{', t.'.join(log.field_names)} from {log.name} t semi join _batch_keys using ({', '.join(key)})"
        ).pl()
    finally:
        con.unregister("_batch_keys")
    return frame.with_columns(pl.col(f).cast(schema.columns[f].dtype.type) for f in log.field_names)


def _batch(files: list[DecodedFile]) -> pl.DataFrame:
    """The records of a log's new files, in the order files and lines were given."""
    frames = [f.records.with_columns(file_index=pl.lit(i, pl.Int32)) for i, f in enumerate(files)]
    return pl.concat(frames, how="diagonal_relaxed")


def _quarantine_rows(rejected: pl.DataFrame, files: list[DecodedFile], log: Log, run_id: str) -> pl.DataFrame:
    """Quarantine rows: source file, row, redacted raw text and reasons."""
    parts = []
    for index, decoded in enumerate(files):
        mine = rejected.filter(pl.col("file_index") == index)
        if mine.height == 0:
            continue
        raw_text = redacted_column(decoded.raw_texts(mine["source_row"]).alias("raw_text"),
                                   private_connector(mine, log))
        parts.append(mine.select(
            run_id=pl.lit(run_id), log=pl.lit(log.name), source_file=pl.lit(redact_str(decoded.file.path.name)),
            source_file_sha256=pl.lit(decoded.file.sha256), source_row="source_row", raw_text=raw_text,
            reason_codes="reason_codes", reason_details="reason_details",
        ))
    if not parts:
        return pl.DataFrame()
    return pl.concat(parts)


SLICE_ROWS = 2_000_000  # redaction and checks run a slice at a time: their text copies stay small


def _checked_batch(files: list[DecodedFile], log: Log) -> CheckedRecords:
    """The log's new records redacted and checked, valid ones typed (slices keep memory low)."""
    batch = _batch(files)
    parts = [checked_records(redacted(batch.slice(offset, SLICE_ROWS), log), log)
             for offset in range(0, max(batch.height, 1), SLICE_ROWS)]
    return CheckedRecords(pl.concat([p.valid for p in parts], how="vertical_relaxed"),
                          pl.concat([p.invalid for p in parts], how="vertical_relaxed"))


def ingest_log(con, log: Log, files: list[DecodedFile], run_id: str, now: datetime) -> None:
    """Write one log's new files: accepted rows, quarantine rows and ingested_files rows."""
    checked = _checked_batch(files, log)
    existing = _existing_with_keys(con, log, checked.valid)
    valid = checked.valid.with_columns(status=duplicate_status(checked.valid, existing, log))

    schema = warehouse.ACCEPTED_SCHEMAS[log.name]
    # Pandera checks the contract fields of every valid record (duplicates included: the same
    # checks apply); lineage columns are added by the insert itself.
    schema.remove_columns(list(LINEAGE_COLUMNS)).validate(valid.select(log.field_names))
    conflicting = valid.filter(pl.col("status") == CONFLICTING).with_columns(
        reason_codes=pl.lit(["conflicting_duplicate"], dtype=pl.List(pl.Utf8)),
        reason_details=pl.concat_list(pl.lit("conflicting_duplicate:" + ",".join(log.natural_key))),
    )
    kept = ["file_index", "source_row", "reason_codes", "reason_details"] + (
        ["connector_visibility"] if log.name == "deliveries" else [])  # decides private-host redaction
    rejected = pl.concat([checked.invalid.select(kept), conflicting.select(kept)], how="vertical_relaxed")
    rejected = rejected.sort("file_index", "source_row")
    warehouse.append_accepted(con, log.name, valid, [f.file.sha256 for f in files], run_id)
    checkpoint("ingest:inserted-accepted")
    warehouse.append(con, "quarantine", _quarantine_rows(rejected, files, log, run_id))

    outcome = pl.concat([
        valid.select("file_index", outcome=pl.when(pl.col("status") == CONFLICTING)
                     .then(pl.lit("quarantined")).otherwise(pl.col("status"))),
        checked.invalid.select("file_index", outcome=pl.lit("quarantined")),
    ])
    counts = outcome.group_by("file_index").agg(
        rows_read=pl.len(),
        rows_accepted=(pl.col("outcome") == ACCEPTED).sum(),
        rows_quarantined=(pl.col("outcome") == "quarantined").sum(),
        rows_duplicate=(pl.col("outcome") == DUPLICATE).sum(),
    )
    files_frame = pl.DataFrame(
        {"file_index": list(range(len(files))), "file_sha256": [f.file.sha256 for f in files], "log": log.name,
         "file_name": [redact_str(f.file.path.name) for f in files], "format": [f.file.format for f in files],
         "run_id": run_id, "ingested_at": now}, schema_overrides={"file_index": pl.Int32},
    ).join(counts, on="file_index", how="left").drop("file_index").with_columns(
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
            for decoded in files:
                decoded.release()
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
