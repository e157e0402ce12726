"""Run history in the warehouse (docs/outputs.md#warehouse): the runs table, result rows and evidence
documents keyed by run_id, history totals, the runs list, the latest run, the trend of headline
metrics, and the stored document the HTTP API answers from (docs/outputs.md#http-api).

Every query on run history lives here; the nightly flow, the command line and the HTTP API
all call these functions. Which run is the latest is decided by one ordering,
`warehouse.LATEST_RUN_FIRST`, which the warehouse's latest_* views use too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import NamedTuple

import duckdb
import polars as pl
import pyarrow as pa

from exportaudit import evidence, gates, warehouse
from exportaudit.faults import checkpoint
from exportaudit.ingest import FileAccount, rows_read
from exportaudit.metrics import HISTORY_METRICS, METRICS
from exportaudit.warehouse import LATEST_RUN_FIRST
from transforms.timestamps import UTC_US, format_instant, parse_instant

TREND_RUNS = 30
RUNS_LISTED = 1000  # GET /runs: enough history for a glance; the warehouse holds every run


def new_run_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def ingested_sha256s(con) -> list[str]:
    return [row[0] for row in con.execute("select file_sha256 from ingested_files").fetchall()]


# The run history the execution verdicts and acknowledgement status read
# (docs/executions-and-acknowledgements.md): the recorded runs' plans and alerts.
HISTORY_INPUTS = {
    # every recorded run's retry-plan evidence id, and what orders runs (the previous plan)
    "plan_runs": "select run_id, as_of, finished_at, retry_plan_evidence_id from runs",
    # plan records of one run per distinct retry-plan evidence id (equal ids have equal records); with an
    # as_of, only the plans the rules can use: those an execution cites, and those of the runs at the
    # greatest as_of before it (the previous plan is among them), so memory does not grow with history
    "plan_history": "select p.run_id, p.export_id, p.destination, p.decision, p.next_attempt_at from retry_plan p "
                    "semi join (select min(run_id) as run_id from runs {wanted} group by retry_plan_evidence_id) r "
                    "using (run_id)",
    # per alert id ever raised, the smallest as_of of the runs that raised it (first seen)
    "alert_history": "select a.alert_id, min(r.as_of) as as_of from archive_alerts a join runs r using (run_id) "
                     "group by a.alert_id",
}


_WANTED_PLANS = ("where retry_plan_evidence_id in (select plan_evidence_id from retry_executions) "
                 "or as_of = (select max(as_of) from runs where as_of < ?)")


def history_records(con, name: str, as_of: datetime | None = None) -> pl.LazyFrame:
    """One of HISTORY_INPUTS, instants as UTC microseconds, in a fixed order. as_of: the instant
    evaluated at, to read only the plans it can use (None: every plan)."""
    query = HISTORY_INPUTS[name].format(wanted=_WANTED_PLANS if as_of is not None else "")
    frame = con.sql(query + " order by all", params=[as_of] if as_of is not None and "?" in query else None).pl()
    return frame.lazy().with_columns(pl.col(column).cast(UTC_US) for column, dtype in frame.schema.items()
                                     if isinstance(dtype, pl.Datetime))


def run_row(run_id: str, as_of: datetime, started_at: datetime, gates_failed: list[str], plan_doc,
            health_doc, values: dict, accounts: list[FileAccount],
            follow_up_docs: Mapping[str, evidence.Evidence] | None = None) -> dict:
    """The runs-table row of a run: times, status, the evidence ids and the run's metrics.
    follow_up_docs: answer name -> document of docs/executions-and-acknowledgements.md, stored as
    `<name>_evidence_id`."""
    plan_summary = plan_doc["summary"]
    metrics = {name: values[name] for name in warehouse.RUN_METRIC_COLUMNS if name in values}
    return {
        "run_id": run_id, "as_of": as_of, "started_at": started_at, "finished_at": datetime.now(timezone.utc),
        "status": gates.run_status(gates_failed), "exit_code": gates.exit_code(gates_failed),
        "retry_plan_evidence_id": plan_doc["evidence_id"], "archive_health_evidence_id": health_doc["evidence_id"],
        "quarantine_ratio": float(gates.quarantine_ratio(accounts)),
        "run_duration_seconds": float(values["run_duration_seconds"]),
        **metrics, "failed_deliveries": plan_summary["failed_deliveries"], "rows_read": rows_read(accounts),
        **{f"{name}_evidence_id": document["evidence_id"] for name, document in (follow_up_docs or {}).items()},
        # docs/ledger.md#exportaudit-verify: the policy the evidence was computed at, every document's block
        "policy_json": policy_json({key: value for document in (plan_doc, health_doc, *(follow_up_docs or {}).values())
                                    for key, value in document["policy"].items()}),
    }


BODY_CODEC = "zstd"  # evidence_documents.body: canonical JSON compressed with this pyarrow codec


STREAM_CHUNK_BYTES = 1 << 20


class StoredDocument(NamedTuple):
    """An evidence document as a run stored it: its header (no record lists) and its canonical
    JSON, byte for byte, still compressed. Read like an `evidence.Evidence` (`doc["summary"]`,
    `canonical_bytes()`); `chunks()` gives the canonical JSON piecewise without holding it whole."""
    header: dict
    body_bytes: int
    compressed: bytes

    def __getitem__(self, key: str):
        return self.header[key]

    def canonical_bytes(self) -> bytes:
        return pa.decompress(self.compressed, decompressed_size=self.body_bytes, codec=BODY_CODEC, asbytes=True)

    def chunks(self, size: int = STREAM_CHUNK_BYTES) -> Iterator[bytes]:
        stream = pa.CompressedInputStream(pa.BufferReader(self.compressed), BODY_CODEC)
        while chunk := stream.read(size):
            yield chunk


def policy_json(policy_block: dict) -> str:
    """The lookup key of a document's policy block: its canonical JSON."""
    return evidence.canonical_json(policy_block).decode("utf-8")


FRAME_BYTES = 1 << 24  # evidence_documents.body: compressed in frames of at most this many bytes of JSON


class BodyCompressor:
    """evidence_documents.body built from a document's canonical JSON piece by piece (`write`), never
    joined: compressed in one-shot frames of FRAME_BYTES (pyarrow's compressing stream took twice as
    long), which decode as one body (`StoredDocument`). `body()`: (JSON bytes, compressed bytes)."""

    def __init__(self):
        self._frames: list[bytes] = []
        self._pending = bytearray()  # small pieces (the header's) gathered into one frame
        self._size = 0

    def write(self, piece) -> None:
        view = memoryview(piece).cast("B")
        self._size += len(view)
        while len(view):
            if not self._pending and len(view) >= FRAME_BYTES:  # a whole frame straight from the piece
                self._frames.append(pa.compress(view[:FRAME_BYTES], codec=BODY_CODEC, asbytes=True))
                view = view[FRAME_BYTES:]
                continue
            room = FRAME_BYTES - len(self._pending)
            self._pending += view[:room]
            view = view[room:]
            if len(self._pending) == FRAME_BYTES:
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._frames.append(pa.compress(bytes(self._pending), codec=BODY_CODEC, asbytes=True))
            self._pending.clear()

    def body(self) -> tuple[int, bytes]:
        self._flush()
        return self._size, b"".join(self._frames)


def compressed_pieces(pieces: Iterable) -> tuple[int, bytes]:
    """(JSON bytes, compressed bytes) of a document's canonical JSON, given piece by piece, as
    evidence_documents.body."""
    compressor = BodyCompressor()
    for piece in pieces:
        compressor.write(piece)
    return compressor.body()


def _document_row(run_id: str, name: str, document: evidence.Evidence,
                  body: Callable[[], tuple[int, bytes]] | None = None) -> list:
    size, compressed = body() if body is not None else compressed_pieces(document.chunks())
    return [run_id, name, document["evidence_id"], parse_instant(document["as_of"]), policy_json(document["policy"]),
            document["dataset"]["sha256"], evidence.canonical_json(document.header).decode("utf-8"), size, compressed]


def record_run(con, row: dict, plan: pl.DataFrame, health_exports: pl.DataFrame, alerts: pl.DataFrame,
               documents: Mapping[str, evidence.Evidence] | None = None,
               results: Mapping[str, pl.DataFrame] | None = None,
               seal: Callable[[object], object] | None = None,
               bodies: Mapping[str, Callable[[], tuple[int, bytes]]] | None = None) -> None:
    """The run, its result rows and its evidence documents (answer name -> document, as written to
    the run directory), in one transaction: a crash leaves no half run. results: further result
    tables -> this run's rows (retry_execution_verdicts, alert_ack_status). seal(con): called last
    before COMMIT, in the transaction: appends the run's ledger entry and writes ledger.json and
    attestation.intoto.json (artifacts.seal_run_directory, docs/ledger.md#ledger-entry). bodies:
    answer -> the document's compressed body (`BodyCompressor.body`), when it was made already (the
    night compresses each stored document while writing its file); the others are compressed here."""
    run_id = row["run_id"]
    columns = [name for name, _, _ in warehouse.EVIDENCE_DOCUMENTS_COLUMNS]
    # The documents not compressed yet are compressed (zstd releases the GIL) while the result rows go in.
    with ThreadPoolExecutor(1, thread_name_prefix="compress") as pool, warehouse.transaction(con):
        stored = [pool.submit(_document_row, run_id, name, document, (bodies or {}).get(name))
                  for name, document in (documents or {}).items()]
        warehouse.append(con, "runs", pl.DataFrame([row]).with_columns(
            pl.col("as_of", "started_at", "finished_at").cast(UTC_US)))
        for table, frame in (("retry_plan", plan), ("archive_health", health_exports), ("archive_alerts", alerts),
                             *(results or {}).items()):
            warehouse.append(con, table, frame.select(pl.lit(run_id).alias("run_id"), pl.all()))
        for values in stored:
            con.execute(f"insert into evidence_documents ({', '.join(columns)}) "
                        f"values ({', '.join('?' for _ in columns)})", values.result())
        checkpoint("warehouse:inserted-run")  # every row of the run inserted, nothing committed
        if seal is not None:
            seal(con)


def stored_document(con, document: str, as_of: datetime, policy_block: dict,
                    dataset_sha256: str) -> StoredDocument | None:
    """The document (retry_plan or archive_health) a recorded run wrote for this as_of, policy block
    and dataset, from the latest such run (`LATEST_RUN_FIRST`); None when no run wrote one."""
    try:
        found = con.execute(
            f"select run_id, header, body_bytes from evidence_documents d join runs using (run_id) "
            f"where d.document = ? and d.as_of = ? and d.policy_json = ? and d.dataset_sha256 = ? "
            f"order by {LATEST_RUN_FIRST} limit 1",
            [document, as_of, policy_json(policy_block), dataset_sha256]).fetchall()
    except duckdb.CatalogException:  # a warehouse written before the table existed
        return None
    if not found:
        return None
    run_id, header, size = found[0]
    body = con.execute("select body from evidence_documents where run_id = ? and document = ?",
                       [run_id, document]).fetchall()[0][0]
    return StoredDocument(json.loads(header), size, body)


class RunTotals(NamedTuple):
    """Sums over every recorded run: one retry plan and one archive health report per run."""
    runs: int
    retryable_deliveries: int
    archive_health_alert_count: int

    def metrics(self) -> dict:
        """As the history metrics of metrics.json and Prometheus (plans and reports ever written)."""
        return dict(zip(HISTORY_METRICS, (self.runs, self.runs)))

    def tiles(self) -> dict:
        """As the Evidence Console's tiles (and /runs totals): the run metrics summed over history."""
        return {"retry_plan_count": self.runs, "retryable_deliveries": self.retryable_deliveries,
                "archive_health_report_count": self.runs, "archive_health_alert_count": self.archive_health_alert_count}


def history_totals(con, current: dict | None = None) -> RunTotals:
    """Totals over the runs table, plus the current run's row when given (it is recorded last)."""
    runs, retryable, alerts = con.execute(
        "select count(*), coalesce(sum(retryable_deliveries), 0), coalesce(sum(archive_health_alert_count), 0) "
        "from runs").fetchall()[0]
    if current:
        runs, retryable, alerts = (runs + 1, retryable + current["retryable_deliveries"],
                                   alerts + current["archive_health_alert_count"])
    return RunTotals(int(runs), int(retryable), int(alerts))


def runs(con, limit: int = RUNS_LISTED) -> list[dict]:
    """Recorded runs, latest first, every column; instants as timestamp text."""
    cursor = con.execute(f"select * from runs order by {LATEST_RUN_FIRST} limit ?", [limit])
    names = [d[0] for d in cursor.description]
    return [{k: (format_instant(v) if isinstance(v, datetime) else v) for k, v in zip(names, row)}
            for row in cursor.fetchall()]


def latest_run(con) -> dict | None:
    """The latest recorded run (as in `runs`), None before the first."""
    return next(iter(runs(con, limit=1)), None)


def trend(con, current: dict | None = None, limit: int = TREND_RUNS) -> list[dict]:
    """Headline metrics of the latest runs, oldest first (the current run last, when given)."""
    columns = [name for name in METRICS if name in warehouse.RUN_METRIC_COLUMNS]
    rows = con.execute(
        f"select run_id, strftime(as_of, '%Y-%m-%dT%H:%M:%SZ'), {', '.join(columns)} from runs "
        f"order by {LATEST_RUN_FIRST} limit ?", [limit - (1 if current else 0)]).fetchall()
    history = [dict(zip(["run_id", "as_of", *columns], row)) for row in reversed(rows)]
    if current:
        history.append({"run_id": current["run_id"], "as_of": format_instant(current["as_of"]),
                        **{c: current.get(c) for c in columns}})
    return history
