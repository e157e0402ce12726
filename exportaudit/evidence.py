"""Evidence documents (docs/outputs.md#evidence-documents): canonical JSON, evidence ids, summaries, and records as JSON.

Everything here is a pure function of its arguments, so the same dataset, as_of and policy
give the same records and evidence_id, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import polars as pl

from exportaudit.redact import redact_str
from exportaudit.vocabulary import CHECKS, CRITICAL, HOLD, REASON_CODES, RETRY, SUPPRESS, WAIT, WARNING
from transforms.alert_acknowledgements import AlertAckResult
from transforms.archive_health import ArchiveHealth
from transforms.retry_executions import RetryExecutionResult
from transforms.retry_plan import RetryPlan
from transforms.timestamps import format_instant, timestamp_text

SCHEMA_VERSION = "exportaudit.evidence.v1"
RETRY_PLAN_KIND = ("go-backend-rollback-drill-acknowledgement-audit-delivery-final-reporting-auditor-export-"
                   "delivery-retry-plan")
ARCHIVE_HEALTH_KIND = ("go-backend-rollback-drill-acknowledgement-audit-delivery-final-reporting-archive-"
                       "reference-health")
# docs/executions-and-acknowledgements.md#outputs
RETRY_EXECUTIONS_KIND = ("go-backend-rollback-drill-acknowledgement-audit-delivery-final-reporting-auditor-export-"
                         "retry-worker-execution")
ALERT_ACKNOWLEDGEMENTS_KIND = ("go-backend-rollback-drill-acknowledgement-audit-delivery-final-reporting-archive-"
                               "health-alert-acknowledgement")
# Keys that name the run or who asked, not the content: left out of the evidence_id.
NOT_CONTENT_KEYS = ("evidence_id", "run_id", "generated_at", "generated_by", "inputs")


def canonical_json(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def records_json(frame: pl.DataFrame) -> bytes:
    """Canonical JSON of a list of records, encoded by Polars in bulk: keys sorted, compact,
    instants as docs/inputs.md#input-logs timestamps. Byte-identical to `canonical_json(frame.to_dicts())` for
    strings, integers, booleans and nulls (checked by a property test)."""
    return b"".join(_records_pieces(frame))


# A record list is encoded in slices of at most ENCODE_ROWS rows, ENCODE_PARTS slices side by side
# (1.5M alerts: 1.3-1.4 -> 0.6-0.9 s on 2 cores with 4 parts), so a streamed document holds about
# ENCODE_PARTS * ENCODE_ROWS rows' text at once (~200 MB of alerts), whatever the list's length.
ENCODE_PARTS = 4
ENCODE_ROWS = 125_000


def _records_pieces(frame: pl.DataFrame) -> Iterator:
    """`records_json` as bytes-like pieces, in order, without a copy of the text: each row's JSON
    object and a comma are encoded into Arrow string columns (a slice of rows at a time), whose
    value buffers are then the list's body. A generator: the next slices are encoded when asked for."""
    if frame.height == 0:
        yield b"[]"
        return
    instants = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime)]
    rows = min(ENCODE_ROWS, -(-frame.height // ENCODE_PARTS))  # a short list still in ENCODE_PARTS parts

    def encoded(offset: int) -> pl.LazyFrame:
        return frame.lazy().slice(offset, rows).with_columns(
            timestamp_text(pl.col(name)).alias(name) for name in instants).select(
            pl.concat_str(pl.struct(sorted(frame.columns)).struct.json_encode(), pl.lit(",")))

    yield b"["
    offsets = range(0, frame.height, rows)
    previous = None  # held back one piece: the list's last comma is dropped
    for first in range(0, len(offsets), ENCODE_PARTS):
        for part in pl.collect_all([encoded(offset) for offset in offsets[first:first + ENCODE_PARTS]]):
            if previous is not None:
                yield previous
            previous = _text_values(part.to_series())
    yield previous[:-1]
    yield b"]"


def _text_values(strings: pl.Series) -> memoryview:
    """The concatenated values of a string column, without a copy of the Arrow buffer."""
    array = strings.rechunk().to_arrow(compat_level=pl.CompatLevel.oldest())  # one large_string array
    _, offsets, values = array.buffers()
    bounds = memoryview(offsets).cast("q")  # int64 offsets of large_string
    return memoryview(values)[bounds[array.offset]:bounds[array.offset + len(array)]]


_SPLICE = "\u0000records:{}\u0000"  # a placeholder no summary or header value can contain
_ID_PLACEHOLDER = "\u0000evidence_id\u0000"


def _header_cuts(header: dict, names) -> tuple[list[bytes], list[str]]:
    """The header's canonical JSON with the record lists `names` in it, cut where each list goes:
    (the texts around the lists, the names in the order the lists come). The document is
    texts[0], list, texts[1], list, ..., texts[-1]."""
    text = canonical_json({**header, **{name: _SPLICE.format(name) for name in names}})
    markers = {name: json.dumps(_SPLICE.format(name)).encode() for name in names}
    texts, order, start = [], [], 0
    for at, name in sorted((text.index(marker), name) for name, marker in markers.items()):
        texts.append(text[start:at])
        order.append(name)
        start = at + len(markers[name])
    return [*texts, text[start:]], order


def _encode_document(header: dict, records: dict[str, pl.DataFrame],
                     write: Callable[[object], object]) -> tuple[str, str]:
    """The document's canonical JSON, given to write() piece by piece in order as it is encoded;
    returns (its evidence_id, the sha256 of the document's bytes). The id hashes the content's
    canonical JSON: the same record lists between the content's own header texts. Up to the first
    header text where the content and the document differ, one digest serves both (in every
    document the first long list comes before that). The pieces after the "evidence_id" key wait
    until the id is known: the long lists (alerts, decisions) come before it, the archive health's
    exports after it."""
    content = {key: value for key, value in header.items() if key not in NOT_CONTENT_KEYS}
    content_texts, order = _header_cuts(content, records)
    file_texts, _ = _header_cuts({**header, "evidence_id": _ID_PLACEHOLDER}, records)
    placeholder = json.dumps(_ID_PLACEHOLDER).encode()
    content_digest, file_digest = hashlib.sha256(), None  # file_digest: from where the two differ
    waiting = None  # the document's pieces from the "evidence_id" key on

    def give(piece) -> None:
        if waiting is not None:
            waiting.append(piece)
            return
        if file_digest is not None:
            file_digest.update(piece)
        write(piece)

    for number, content_text in enumerate(content_texts):
        if file_digest is None and content_text != file_texts[number]:
            file_digest = content_digest.copy()  # the bytes so far are the same in both
        content_digest.update(content_text)
        if waiting is None and placeholder in file_texts[number]:
            waiting = []
        give(file_texts[number])
        if number < len(order):
            for piece in _records_pieces(records[order[number]]):
                content_digest.update(piece)
                give(piece)
    evidence_id = content_digest.hexdigest()
    pieces, waiting = [waiting[0].replace(placeholder, json.dumps(evidence_id).encode()), *waiting[1:]], None
    for piece in pieces:
        give(piece)
    return evidence_id, file_digest.hexdigest()


class Evidence:
    """An evidence document (docs/outputs.md#evidence-documents): a header of small values plus record lists kept as frames.

    Its canonical JSON is encoded once, in pieces that are never joined (the archive health's runs
    to about a gigabyte at 1M exports; docs/outputs.md#memory). Given a sink, the pieces are
    written to it as they are encoded (`sink.write(piece)`) and not kept: the night streams each
    document to its run-directory file. Otherwise they are kept for `chunks()`. Asked for the text
    of a streamed document, it is encoded again, to the same bytes. `sha256`: of those bytes."""

    def __init__(self, header: dict, records: dict[str, pl.DataFrame], sink=None):
        self.records = records
        pieces: list = []
        evidence_id, self.sha256 = _encode_document(header, records,
                                                    sink.write if sink is not None else pieces.append)
        self.header = {**header, "evidence_id": evidence_id}
        self._pieces: list | None = pieces if sink is None else None

    def __getitem__(self, key: str):
        return self.header[key]

    def chunks(self) -> list:
        """The canonical JSON as bytes-like pieces, in order (joined, they are `canonical_bytes()`)."""
        if self._pieces is None:  # streamed: encoded again, byte for byte the same
            pieces: list = []
            _encode_document(self.header, self.records, pieces.append)
            return pieces
        return self._pieces

    def canonical_bytes(self) -> bytes:
        return b"".join(self.chunks())

    def as_dict(self) -> dict:
        return json.loads(self.canonical_bytes())


def file_pieces(data) -> list:
    """A run-directory file's content as bytes-like pieces: bytes as they are, an evidence document
    as its canonical JSON's chunks (never joined)."""
    return data.chunks() if isinstance(data, Evidence) else [data]


def dataset_identity(file_sha256s: list[str]) -> dict:
    """What the rules ran over: every file ever ingested, named by their sha256s."""
    joined = "\n".join(sorted(file_sha256s))
    return {"files": len(file_sha256s), "sha256": hashlib.sha256(joined.encode("utf-8")).hexdigest()}


def retry_plan_summary(plan: RetryPlan) -> dict:
    decisions = plan.records["decision"].value_counts()
    by_decision = dict(zip(decisions["decision"], decisions["count"]))
    codes = plan.records["reason_code"].value_counts()
    by_code = dict(zip(codes["reason_code"], codes["count"]))
    return {
        "failed_deliveries": plan.records.height,
        "retryable_deliveries": int(by_decision.get(RETRY, 0)),
        "waiting_deliveries": int(by_decision.get(WAIT, 0)),
        "held_deliveries": int(by_decision.get(HOLD, 0)),
        "suppressed_deliveries": int(by_decision.get(SUPPRESS, 0)),
        "recovered_deliveries": plan.recovered_deliveries,
        "reason_codes": {code: int(by_code.get(code, 0)) for code in REASON_CODES},
    }


def archive_health_summary(health: ArchiveHealth) -> dict:
    checks = health.alerts["check"].value_counts()
    by_check = dict(zip(checks["check"], checks["count"]))
    severity = health.alerts["severity"]
    exports = health.exports
    return {
        "verified_exports": exports.height,
        "exports_missing_reference": int((exports["reference_count"] == 0).sum()),
        "exports_unrepresented": int((~exports["represented"]).sum()),
        "archive_health_alert_count": health.alerts.height,
        "critical_alerts": int((severity == CRITICAL).sum()),
        "warning_alerts": int((severity == WARNING).sum()),
        "checks": {check: int(by_check.get(check, 0)) for check in CHECKS},
        "orphan_references": health.orphan_references,
        "unchecked_references": health.unchecked_references,
        "unmatched_custody_checks": health.unmatched_custody_checks,
        "derived_custody_checks": dict(health.derived_custody_checks),
        "inconclusive_batch_results": health.inconclusive_batch_results,
    }


def _header(kind: str, *, run_id: str, as_of: datetime, generated_at: datetime, generated_by: str,
            policy: dict, dataset: dict, inputs: list[dict], summary: dict) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "metadata_kind": kind,
        "run_id": run_id,
        "as_of": format_instant(as_of),
        "generated_at": format_instant(generated_at),
        "generated_by": redact_str(generated_by),  # free text from the caller: redacted like any input
        "policy": policy,
        "dataset": dataset,
        "inputs": inputs,
        "summary": summary,
    }


def retry_plan_document(plan: RetryPlan, *, policy, sink=None, **context) -> Evidence:
    header = _header(RETRY_PLAN_KIND, policy=policy.section("retry"), summary=retry_plan_summary(plan), **context)
    return Evidence(header, {"decisions": plan.records}, sink)


def archive_health_document(health: ArchiveHealth, *, policy, sink=None, **context) -> Evidence:
    header = _header(ARCHIVE_HEALTH_KIND, policy=policy.section("health"), summary=archive_health_summary(health),
                     **context)
    return Evidence(header, {"exports": health.exports, "alerts": health.alerts}, sink)


def retry_executions_document(result: RetryExecutionResult, *, policy, sink=None, **context) -> Evidence:
    """retry-executions.json (docs/executions-and-acknowledgements.md#retry-executionsjson): policy
    {execution_grace_minutes}, summary {verdicts, retry_not_executed}, executions and not_executed in
    the transform's order (executed_at, execution_id; export_id, destination)."""
    header = _header(RETRY_EXECUTIONS_KIND, policy=policy.section("executions"), summary=result.summary, **context)
    return Evidence(header, {"executions": result.executions, "not_executed": result.not_executed}, sink)


def alert_acknowledgements_document(result: AlertAckResult, *, policy, sink=None, **context) -> Evidence:
    """alert-acknowledgements.json (docs/executions-and-acknowledgements.md#alert-acknowledgementsjson):
    policy {ack_sla_hours}, summary {acknowledged, expired, unacknowledged, overdue, stale}, alerts in
    the archive-health alert order, stale_acknowledgements by alert_id, ack_id."""
    header = _header(ALERT_ACKNOWLEDGEMENTS_KIND, policy=policy.section("acknowledgements"), summary=result.summary,
                     **context)
    return Evidence(header, {"alerts": result.alerts, "stale_acknowledgements": result.stale_acknowledgements}, sink)
