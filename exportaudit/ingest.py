"""Ingestion (docs/inputs.md#bad-input-and-quarantine), streaming in bounded memory.

Before anything is written every file gets a cheap check (`read_inputs`: exists, format,
sha256, gzip stream, Parquet footer); an unreadable one stops the run (exit 2). Then, in ONE
transaction, each log is staged and written:

- staging (`stage_log`, in a worker thread, touching no connection): the log's new sources are
  read a batch at a time (one batch ahead, in a thread of its own); each slice of a batch is
  redacted and checked (Polars, two slices at once, kept in order), its valid records are written
  to a staging Parquet file (`<db>.ingest.tmp/`, removed at the end unless the caller keeps the
  accepted records' files for its rules: `RunRecords`) and its invalid ones, with
  their raw text, to a quarantine staging file;
- writing (`write_log`, on the caller's connection, while the next logs are staged): duplicates are
  resolved in SQL (`resolve_duplicates`) over the staged keys and the table's accepted records,
  the accepted records are inserted in one statement (on all of DuckDB's threads: physical row
  order is not kept), conflicting ones quarantined (their raw text read again), the quarantined
  records inserted in one statement, and the per-file accounting computed from the counts.

Nothing is deleted inside the transaction (a delete there makes DuckDB rewrite the whole
insert at commit: measured 15-20 s and +2 GiB at 10M rows). A file that fails while its
batches are decoded raises UnreadableInput and the transaction rolls back: nothing is written.

Nothing is lost: for every file, rows read = accepted + quarantined + duplicate.

Sources (`InputSource`)
-----------------------
Ingest reads any object with these attributes and methods (files are `readers.FileSource`;
other sources, e.g. Svix attempt files, plug in the same way):

- ``log: str`` -- the log the records belong to (a key of ``contract.LOGS``);
- ``name: str`` -- base name stored as ``quarantine.source_file`` / ``ingested_files.file_name`` (redacted here);
- ``format: str`` -- stored as ``ingested_files.format``;
- ``sha256: str`` -- the source's identity: a (log, sha256) already ingested is skipped;
- ``batches() -> Iterator[pl.DataFrame]`` -- the records in the readers' *decoded shape*
  (exportaudit.readers: ``source_row`` Int64, ``record_error``, ``invalid_utf8``,
  ``extra_fields``, and per contract field ``f`` its text ``f`` and ``f__type_ok``; optionally
  ``__instant_f``, a native UTC instant), in source order, a bounded number of rows each.
  Optional columns: ``raw_text`` (Utf8, the record as read, not yet redacted) or
  ``raw_record`` (Struct of the row's cells; raw text = their JSON object), used for the raw
  text of quarantined rows (without either, ``raw_texts`` is asked); ``source_reasons``
  (List[Utf8] of ``"code:detail"``, e.g. ``"attempt_not_final:status"``): a record with any is
  quarantined with them (reason code = the part before ``:``), before the contract's own.
  May raise ``UnreadableInput`` (the transaction rolls back).
- ``raw_texts(source_rows: pl.Series) -> pl.Series`` -- the raw text (not redacted) of the
  records with these ``source_row`` values, in that order; asked only for conflicting
  duplicates (and for quarantined rows of batches without ``raw_text`` / ``raw_record``).
"""

from __future__ import annotations

import shutil
import threading
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import NamedTuple, Protocol

import polars as pl

from exportaudit import warehouse
from exportaudit.warehouse import DERIVED_COLUMNS
from exportaudit.contract import CODE, LOGS, STRING, Log
from exportaudit.faults import checkpoint
from exportaudit.pipeline import in_order, prefetched
from exportaudit.readers import UnreadableInput, decode_file, load_file, raw_text_of, resolve_paths
from exportaudit.redact import redact_str, redacted_column
from exportaudit.sources.s3_uri import archive_s3_identity
from schemas._columns import LINEAGE_COLUMNS
from transforms.record_validation import checked_records

ACCEPTED, DUPLICATE, CONFLICTING = "accepted", "duplicate", "conflicting_duplicate"
RAW_COLUMNS = ("raw_text", "raw_record")


class InputSource(Protocol):
    """A source of one log's records (see the module docstring for the exact contract)."""
    log: str
    name: str
    format: str
    sha256: str

    def batches(self) -> Iterator[pl.DataFrame]: ...

    def raw_texts(self, source_rows: pl.Series) -> pl.Series: ...


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
    """The run's checked input sources, handed to the flow as one explicit argument.

    The command line checks every file first (`read_inputs`: cheap, nothing decoded), so
    unreadable input exits 2 before anything runs; the records are read at ingest, a batch at
    a time. Slots only, no __dict__: Prefect records flow parameters as JSON and, on this
    object, gives up at once ("<DecodedInputs>").
    """

    __slots__ = ("files",)

    def __init__(self, files: list[InputSource]):
        self.files = files



def read_inputs(paths_by_log: dict[str, list[str]], preread: DecodedInputs | None = None) -> list[InputSource]:
    """Every file of every log, checked (unless checked already, `preread`) and ready to be read
    in batches; raises UnreadableInput on the first file that fails the check."""
    if preread is not None:
        return preread.files
    # The checks hash every byte (sha256 releases the GIL): two files at a time on two cores. The
    # first failure in the order given is the one raised, as when the files are checked one by one.
    with ThreadPoolExecutor(2, thread_name_prefix="check-inputs") as pool:
        checks: list[tuple[str, list | UnreadableInput]] = []
        for log_name, specs in paths_by_log.items():
            try:
                checks.append((log_name, [pool.submit(load_file, log_name, Path(path))
                                          for path in resolve_paths(specs)]))
            except UnreadableInput as error:
                checks.append((log_name, error))
        sources: list[InputSource] = []
        for log_name, files in checks:
            if isinstance(files, UnreadableInput):
                raise files
            sources.extend(decode_file(file.result(), LOGS[log_name]) for file in files)
    return sources


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
    return records.with_columns(redacted_column(records[name], private, one_uri=name in URI_FIELDS).alias(name)
                                for name in text_columns)


URI_FIELDS = ("endpoint", "archive_uri")  # fields that hold one URI each (redacted_column's one_uri)


SLICE_ROWS = 500_000  # redaction and checks run a slice of a batch at a time: their text copies stay small


def _slices(frame: pl.DataFrame) -> Iterator[pl.DataFrame]:
    for offset in range(0, frame.height, SLICE_ROWS):
        yield frame.slice(offset, SLICE_ROWS)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quarantine_text(records: pl.DataFrame, source: InputSource, log: Log) -> pl.Series:
    """Redacted raw text of some records of a source (from the batch when it carries it)."""
    if "raw_text" in records.columns or "raw_record" in records.columns:
        raw = raw_text_of(records)
    else:
        raw = source.raw_texts(records["source_row"])
    return redacted_column(raw.alias("raw_text"), private_connector(records, log))


def _staged(path: Path, frame: pl.DataFrame) -> Path:
    """A staging Parquet file (lz4, no statistics: fast to write; read back by DuckDB, and the valid
    records' files also by the night's rules when kept: RunRecords)."""
    frame.write_parquet(path, compression="lz4", statistics=False)
    return path


def _stage_quarantine(stage: Path, log: Log, file_index: int, part_index: int, source_row: pl.Series,
                      raw_text: pl.Series, codes: pl.Series, details: pl.Series) -> Path:
    """Write quarantined records (with their redacted raw text and reasons) to a staging file."""
    return _staged(stage / f"{log.name}-quarantine-{file_index:06d}-{part_index:06d}.parquet", pl.DataFrame({
        "file_index": pl.Series([file_index] * len(source_row), dtype=pl.Int32),
        "source_row": source_row.cast(pl.Int64), "raw_text": raw_text,
        "reason_codes": codes, "reason_details": details}))


def _stage_valid(stage: Path, log: Log, file_index: int, part_index: int, valid: pl.DataFrame,
                 first_order: int) -> Path | None:
    """Write a batch's valid records to a staging file; `__order` numbers the log's valid records
    in file and row order, `__key_hash` is a hash of the natural key (resolve_duplicates)."""
    if valid.height == 0:
        return None
    return _staged(stage / f"{log.name}-{file_index:06d}-{part_index:06d}.parquet", valid.with_columns(
        file_index=pl.lit(file_index, pl.Int32),
        __order=pl.int_range(first_order, first_order + valid.height, dtype=pl.Int64),
        __key_hash=key_hash(log)))


def key_hash(log: Log) -> pl.Expr:
    """A hash of a record's natural key: equal keys, equal hashes (within one process)."""
    return pl.struct(log.natural_key).hash()


def derived_columns(decoded: pl.DataFrame, log: Log) -> pl.DataFrame:
    """Columns derived from a log's raw values before redaction: an archive's S3 object identity
    (docs/real-sources.md#s3-object-identity-of-archive-uris); nothing for the other logs."""
    if log.name == "archives":
        return archive_s3_identity(decoded)
    return pl.DataFrame()


CHECK_WORKERS = 2  # parts checked at once: redaction and checks are mostly one Polars thread each


def _parts(source: InputSource) -> Iterator[pl.DataFrame]:
    for batch in source.batches():
        yield from _slices(batch)


def _checked_part(log: Log, source: InputSource, schema, part: pl.DataFrame,
                  ) -> tuple[int, pl.DataFrame, pl.DataFrame, pl.Series | None]:
    """(rows read, valid records, invalid records, their redacted raw text) of one slice of a batch."""
    # The raw columns stay aside (checks would copy them with every valid row); an invalid
    # row finds its raw text again by its position in the slice.
    raw = part.select(c for c in RAW_COLUMNS if c in part.columns)
    part = part.drop(raw.columns).with_row_index("__slice_row")
    part = part.with_columns(derived_columns(part, log).get_columns())  # before redaction removes them
    checked = checked_records(redacted(part, log), log)
    # Pandera (`schema`) checks the contract fields of every valid record (duplicates included:
    # the same checks apply); lineage columns are added by the insert itself.
    schema.validate(checked.valid.select(log.field_names))
    invalid = checked.invalid
    raw_text = None
    if invalid.height:
        invalid = invalid.hstack(raw[invalid["__slice_row"]]) if raw.width else invalid
        raw_text = _quarantine_text(invalid, source, log)
    return (part.height, checked.valid.select(*log.field_names, "extra_fields", *DERIVED_COLUMNS.get(log.name, ()),
                                              "source_row"), invalid, raw_text)


def _checked_parts(log: Log, source: InputSource) -> Iterator[tuple[int, pl.DataFrame, pl.DataFrame, pl.Series | None]]:
    """`_checked_part` of every slice of the source's batches, in order: batches are read one ahead
    in a thread of their own and CHECK_WORKERS slices are checked at once."""
    schema = warehouse.ACCEPTED_SCHEMAS[log.name].remove_columns(list(LINEAGE_COLUMNS))
    return in_order(prefetched(_parts(source)), partial(_checked_part, log, source, schema), CHECK_WORKERS)


@dataclass
class StagedLog:
    """One log's new sources read, redacted, checked and staged, nothing written to the warehouse
    yet: valid records in `valid_paths`, quarantined ones in `quarantine_paths` (Parquet files)."""
    log: Log
    sources: list[InputSource]
    valid_paths: list[Path]
    quarantine_paths: list[Path]
    reads: list[tuple[int, int]]  # per source: rows read, rows invalid


class StagedAccepted(NamedTuple):
    """A log's records accepted by this run, as staged: the staging files they were inserted from,
    less the staged records not inserted (duplicates and conflicts, by `__order`)."""
    paths: list[Path]
    not_accepted: pl.Series  # __order of the staged records that were not inserted
    had_rows: bool  # the table already held records of earlier runs


class RunRecords:
    """This run's accepted records, left in their staging files by `ingest(..., kept=)` so that the
    night's rules read them there instead of copying them back out of the warehouse
    (warehouse.accepted_records). close() removes the files (also when the object is collected)."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.logs: dict[str, StagedAccepted] = {}
        self._remove = None

    def keep(self, directory: Path) -> None:
        self._remove = weakref.finalize(self, shutil.rmtree, directory, True)

    def close(self) -> None:
        if self._remove is not None:
            self._remove()


class _Cancelled(Exception):
    """The caller stopped (it failed): staging ends at the next batch."""


def stage_log(log: Log, sources: list[InputSource], stage: Path, cancel: threading.Event) -> StagedLog:
    """Read, redact and check one log's sources a batch at a time into staging files. Touches no
    connection, so it runs in a worker thread while the previous log is written."""
    staged = StagedLog(log, sources, [], [], [])
    staged_rows = 0
    for index, source in enumerate(sources):
        read = invalid_count = 0
        for height, valid, invalid, raw_text in _checked_parts(log, source):
            if cancel.is_set():
                raise _Cancelled
            read += height
            path = _stage_valid(stage, log, index, len(staged.valid_paths), valid, staged_rows)
            if path is not None:
                staged.valid_paths.append(path)
                staged_rows += valid.height
            if invalid.height:
                invalid_count += invalid.height
                staged.quarantine_paths.append(_stage_quarantine(
                    stage, log, index, len(staged.quarantine_paths), invalid["source_row"], raw_text,
                    invalid["reason_codes"], invalid["reason_details"]))
        staged.reads.append((read, invalid_count))
    return staged


def _parquet_list(paths: list[Path]) -> str:
    return "read_parquet([" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "])"


def resolve_duplicates(con, log: Log, staged: str, had_rows: bool) -> pl.DataFrame:
    """Duplicates and conflicts (docs/inputs.md#duplicates-and-conflicting-duplicates), in SQL
    over the staged valid records of a log (`staged`: a relation with the contract fields,
    file_index, source_row, __order and __key_hash) and the records the log's table already holds.

    Only contested keys are looked at (met twice in this run, or already accepted by an earlier
    run). When the run's records of a key disagree, all of them conflict, whatever an earlier
    run accepted. Otherwise, a key already accepted keeps its record (the run's records, equal
    to each other, are duplicates of it when equal to it too, else they conflict); a new key's
    first record (file and row order) is accepted and the rest are duplicates. Values are
    compared field by field, null-safe (IS NOT DISTINCT FROM: an optional key field may be null).
    Returns the records not accepted: __order, file_index, source_row, status (and
    connector_visibility for deliveries), in file and row order."""
    table, key, fields = log.name, [_ident(k) for k in log.natural_key], [_ident(f) for f in log.field_names]
    keys = ", ".join(key)
    visibility = ", n.connector_visibility" if log.name == "deliveries" else ""
    empty = pl.DataFrame(schema={"__order": pl.Int64, "file_index": pl.Int32, "source_row": pl.Int64,
                                 **({"connector_visibility": pl.Utf8} if visibility else {}), "status": pl.Utf8})

    def same(left: str, right: str, names: list[str]) -> str:
        return " AND ".join(f"{left}.{n} IS NOT DISTINCT FROM {right}.{n}" for n in names)

    earlier = (f" UNION SELECT DISTINCT {', '.join('s.' + k for k in key)} FROM {staged} s JOIN {table} o "
               f"ON {same('s', 'o', key)}") if had_rows else ""
    # Keys met twice are looked for among the rows whose key hash is met twice: grouping 10M
    # integers, then the few candidate keys, takes half the time of grouping 10M keys (a hash
    # collision only adds a candidate, which the exact grouping drops).
    con.execute(f"CREATE OR REPLACE TEMP TABLE _contested AS SELECT {keys} FROM {staged} WHERE __key_hash IN "
                f"(SELECT __key_hash FROM {staged} GROUP BY ALL HAVING count(*) > 1) GROUP BY ALL "
                f"HAVING count(*) > 1{earlier}")
    if not con.execute("SELECT count(*) FROM _contested").fetchall()[0][0]:
        con.execute("DROP TABLE _contested")
        return empty
    contested = f"EXISTS (SELECT 1 FROM _contested c WHERE {same('c', 't', key)})"
    decided = con.sql(f"""
        WITH n AS (SELECT * FROM {staged} t WHERE {contested}),
             o AS (SELECT rowid AS __rid, * FROM {table} t WHERE {contested}
                   QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY rowid) = 1),
             v AS (SELECT {keys}, count(DISTINCT ({', '.join(fields)})) AS variants FROM n GROUP BY ALL),
             decided AS (
                SELECT n.__order, n.file_index, n.source_row{visibility},
                       CASE WHEN v.variants > 1 THEN '{CONFLICTING}'
                            WHEN o.__rid IS NOT NULL THEN CASE WHEN {same('n', 'o', fields)} THEN '{DUPLICATE}'
                                                          ELSE '{CONFLICTING}' END
                            WHEN row_number() OVER (PARTITION BY {', '.join('n.' + k for k in key)}
                                                    ORDER BY n.__order) = 1 THEN '{ACCEPTED}'
                            ELSE '{DUPLICATE}' END AS status
                FROM n LEFT JOIN o ON {same('n', 'o', key)} JOIN v ON {same('n', 'v', key)})
        SELECT * FROM decided WHERE status <> '{ACCEPTED}' ORDER BY __order
    """).pl()
    con.execute("DROP TABLE _contested")
    return decided if decided.height else empty


def _insert_accepted(con, log: Log, staged: str, decided: pl.DataFrame, run_id: str) -> None:
    """One bulk insert of the staged records not decided otherwise (in no particular physical
    order), with their lineage (`_ingest_files` maps file_index to the file's sha256)."""
    names = ", ".join(_ident(c) for c in [*log.field_names, "extra_fields", *DERIVED_COLUMNS.get(log.name, ())])
    columns = f"{names}, source_file_sha256, source_row, ingest_run_id"
    drop = ""
    if decided.height:
        con.register("_not_accepted", decided.select("__order"))
        drop = "WHERE s.__order NOT IN (SELECT __order FROM _not_accepted)"
    # All of DuckDB's threads: on two cores the insert takes half the time of one thread (1M exports'
    # attempts: 9.5 -> 4.9 s, same CPU). Physical row order is not a contract (with two threads
    # batches may interleave, and DuckDB may place the last partial row group elsewhere at commit):
    # readers order by columns.
    try:
        con.execute(f"INSERT INTO {log.name} ({columns}) SELECT {', '.join('s.' + n.strip() for n in names.split(','))}, "
                    f"f.file_sha256, s.source_row, ? FROM {staged} s JOIN _ingest_files f USING (file_index) {drop}",
                    [run_id])
    finally:
        if decided.height:
            con.unregister("_not_accepted")


def write_log(con, staged: StagedLog, run_id: str, now: datetime, stage: Path,
              kept: RunRecords | None = None) -> None:
    """Write one staged log: accepted rows, quarantine rows and ingested_files rows. kept: the staged
    files of the accepted rows are left in place and named there."""
    log, sources, read = staged.log, staged.sources, staged.reads
    had_rows = con.execute(f"select exists (select 1 from {log.name})").fetchall()[0][0]
    staged_paths, quarantine_paths = staged.valid_paths, list(staged.quarantine_paths)
    files = pl.DataFrame(
        {"file_index": list(range(len(sources))), "file_sha256": [s.sha256 for s in sources],
         "file_name": [redact_str(s.name) for s in sources], "format": [s.format for s in sources],
         "rows_read": [r for r, _ in read], "rows_invalid": [q for _, q in read]},
        schema_overrides={"file_index": pl.Int32, "rows_read": pl.Int64, "rows_invalid": pl.Int64},
    )
    con.register("_ingest_files", files)
    try:
        decided = pl.DataFrame(schema={"__order": pl.Int64, "file_index": pl.Int32, "source_row": pl.Int64,
                                       "status": pl.Utf8})
        if staged_paths:
            staged = _parquet_list(staged_paths)
            decided = resolve_duplicates(con, log, staged, had_rows)
            _insert_accepted(con, log, staged, decided, run_id)
        checkpoint("ingest:inserted-accepted")
        conflicting = decided.filter(pl.col("status") == CONFLICTING)
        for index, source in enumerate(sources):
            mine = conflicting.filter(pl.col("file_index") == index)
            if mine.height:
                raw_text = redacted_column(source.raw_texts(mine["source_row"]).alias("raw_text"),
                                           private_connector(mine, log))
                quarantine_paths.append(_stage_quarantine(
                    stage, log, index, len(quarantine_paths), mine["source_row"], raw_text,
                    pl.Series([["conflicting_duplicate"]] * mine.height, dtype=pl.List(pl.Utf8)),
                    pl.Series([["conflicting_duplicate:" + ",".join(log.natural_key)]] * mine.height,
                              dtype=pl.List(pl.Utf8))))
        if quarantine_paths:
            con.execute(f"INSERT INTO quarantine (run_id, log, source_file, source_file_sha256, source_row, raw_text, "
                        f"reason_codes, reason_details) SELECT ?, ?, f.file_name, f.file_sha256, q.source_row, "
                        f"q.raw_text, q.reason_codes, q.reason_details FROM {_parquet_list(quarantine_paths)} q "
                        f"JOIN _ingest_files f USING (file_index) ORDER BY q.file_index, q.source_row",
                        [run_id, log.name])
        counts = files.join(
            decided.group_by("file_index").agg(conflicting=(pl.col("status") == CONFLICTING).sum(),
                                               duplicate=(pl.col("status") == DUPLICATE).sum()),
            on="file_index", how="left").with_columns(pl.col("conflicting", "duplicate").fill_null(0))
        accounting = counts.select(
            "file_sha256", log=pl.lit(log.name), file_name="file_name", format="format", run_id=pl.lit(run_id),
            ingested_at=pl.lit(now), rows_read="rows_read",
            rows_accepted=pl.col("rows_read") - pl.col("rows_invalid") - pl.col("conflicting") - pl.col("duplicate"),
            rows_quarantined=pl.col("rows_invalid") + pl.col("conflicting"),
            rows_duplicate=pl.col("duplicate"),
        ).with_columns(pl.col("rows_read", "rows_accepted", "rows_quarantined", "rows_duplicate").cast(pl.Int64))
        warehouse.append(con, "ingested_files", accounting)
    finally:
        con.unregister("_ingest_files")
    if kept is not None and staged_paths:
        kept.logs[log.name] = StagedAccepted(staged_paths, decided["__order"], had_rows)
    for path in [*([] if kept is not None else staged_paths), *quarantine_paths]:
        path.unlink(missing_ok=True)


def ingest(con, sources: list[InputSource], run_id: str, now: datetime,
           kept: RunRecords | None = None) -> list[FileAccount]:
    """Ingest every new source in one transaction; sources already ingested (same log and sha256) are
    skipped. kept: the staging files of the accepted records are kept (in `kept`, which removes them)."""
    already = {(log, sha) for log, sha in con.execute("select log, file_sha256 from ingested_files").fetchall()}
    new_by_log: dict[str, list[InputSource]] = {}
    skipped: list[tuple[InputSource, bool]] = []
    for source in sources:
        identity = (source.log, source.sha256)
        skipped.append((source, identity in already))
        if identity not in already:
            already.add(identity)
            new_by_log.setdefault(source.log, []).append(source)

    stage = warehouse.stage_directory(con)
    cancel = threading.Event()
    # Logs are staged in a worker thread, up to two ahead of the one being written (Polars' checks and
    # DuckDB's insert overlap on two cores; a staged log is files on disk, not memory): while the
    # deliveries are written, the two smaller logs after them are staged. A failure on either side
    # rolls everything back.
    staged_logs = prefetched((stage_log(LOGS[log_name], log_sources, stage, cancel)
                              for log_name, log_sources in new_by_log.items()), ahead=2)
    committed = False
    try:
        with warehouse.transaction(con):
            for staged in staged_logs:
                write_log(con, staged, run_id, now, stage, kept)
        committed = True
    finally:
        cancel.set()
        staged_logs.close()
        if kept is not None and committed:
            kept.keep(stage)
        else:
            if kept is not None:
                kept.logs.clear()
            shutil.rmtree(stage, ignore_errors=True)

    counts = {
        (row[0], row[1]): row[2:]
        for row in con.execute(
            "select log, file_sha256, rows_read, rows_accepted, rows_quarantined, rows_duplicate "
            "from ingested_files where run_id = ?", [run_id]).fetchall()
    }
    accounts = []
    for source, was_skipped in skipped:
        account = FileAccount(source.log, redact_str(source.name), source.sha256, was_skipped)
        if not was_skipped:
            (account.rows_read, account.rows_accepted, account.rows_quarantined,
             account.rows_duplicate) = counts[(source.log, source.sha256)]
        accounts.append(account)
    return accounts
