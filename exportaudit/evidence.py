"""Evidence documents (docs/outputs.md#evidence-documents): canonical JSON, evidence ids, summaries, and records as JSON.

Everything here is a pure function of its arguments, so the same dataset, as_of and policy
give the same records and evidence_id, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
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


ENCODE_PARTS = 4  # slices of a record list encoded at once (1.5M alerts: 1.3-1.4 -> 0.6-0.9 s on 2 cores)


def _records_pieces(frame: pl.DataFrame) -> list:
    """`records_json` as bytes-like pieces, without a copy of the text: each row's JSON object and
    a comma are encoded into Arrow string columns (ENCODE_PARTS slices of the rows, encoded side
    by side), whose value buffers are then the list's body, in row order."""
    if frame.height == 0:
        return [b"[]"]
    instants = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime)]
    ordered = frame.with_columns(timestamp_text(pl.col(name)).alias(name) for name in instants).select(
        sorted(frame.columns))
    rows_per_part = -(-ordered.height // ENCODE_PARTS)
    encoded = pl.collect_all([
        ordered.slice(offset, rows_per_part).lazy().select(
            pl.concat_str(pl.struct(pl.all()).struct.json_encode(), pl.lit(",")))
        for offset in range(0, ordered.height, rows_per_part)])
    pieces: list = [b"["]
    for part in encoded:
        array = part.to_series().rechunk().to_arrow(compat_level=pl.CompatLevel.oldest())  # one large_string array
        _, offsets, values = array.buffers()
        bounds = memoryview(offsets).cast("q")  # int64 offsets of large_string
        pieces.append(memoryview(values)[bounds[array.offset]:bounds[array.offset + len(array)]])
    pieces[-1] = pieces[-1][:-1]  # the last comma dropped
    return [*pieces, b"]"]


_SPLICE = "\u0000records:{}\u0000"  # a placeholder no summary or header value can contain


def _spliced_pieces(header: dict, records_text: dict[str, list]) -> list:
    """Canonical JSON of header + record lists, as pieces: the header's canonical JSON cut where
    each list goes, with the list's canonical JSON between the cuts. Joined, they are the document."""
    text = canonical_json({**header, **{name: _SPLICE.format(name) for name in records_text}})
    markers = {name: json.dumps(_SPLICE.format(name)).encode() for name in records_text}
    pieces, start = [], 0
    for at, name in sorted((text.index(marker), name) for name, marker in markers.items()):
        pieces += [text[start:at], *records_text[name]]
        start = at + len(markers[name])
    return [*pieces, text[start:]]


class Evidence:
    """An evidence document (docs/outputs.md#evidence-documents): a header of small values plus record lists kept as frames.

    Its canonical JSON is built once and kept as the one copy (at 1M exports the archive health's
    runs to about a gigabyte): the evidence_id hashes the content's pieces without joining them."""

    def __init__(self, header: dict, records: dict[str, pl.DataFrame]):
        content = {key: value for key, value in header.items() if key not in NOT_CONTENT_KEYS}
        self.records = records
        records_text = {name: _records_pieces(frame) for name, frame in records.items()}  # no copy yet
        digest = hashlib.sha256()
        for piece in _spliced_pieces(content, records_text):
            digest.update(piece)
        self.header = {**header, "evidence_id": digest.hexdigest()}
        self._canonical = b"".join(_spliced_pieces(self.header, records_text))

    def __getitem__(self, key: str):
        return self.header[key]

    def canonical_bytes(self) -> bytes:
        return self._canonical

    def as_dict(self) -> dict:
        return json.loads(self.canonical_bytes())


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


def retry_plan_document(plan: RetryPlan, *, policy, **context) -> Evidence:
    header = _header(RETRY_PLAN_KIND, policy=policy.section("retry"), summary=retry_plan_summary(plan), **context)
    return Evidence(header, {"decisions": plan.records})


def archive_health_document(health: ArchiveHealth, *, policy, **context) -> Evidence:
    header = _header(ARCHIVE_HEALTH_KIND, policy=policy.section("health"), summary=archive_health_summary(health),
                     **context)
    return Evidence(header, {"exports": health.exports, "alerts": health.alerts})


def retry_executions_document(result: RetryExecutionResult, *, policy, **context) -> Evidence:
    """retry-executions.json (docs/executions-and-acknowledgements.md#retry-executionsjson): policy
    {execution_grace_minutes}, summary {verdicts, retry_not_executed}, executions and not_executed in
    the transform's order (executed_at, execution_id; export_id, destination)."""
    header = _header(RETRY_EXECUTIONS_KIND, policy=policy.section("executions"), summary=result.summary, **context)
    return Evidence(header, {"executions": result.executions, "not_executed": result.not_executed})


def alert_acknowledgements_document(result: AlertAckResult, *, policy, **context) -> Evidence:
    """alert-acknowledgements.json (docs/executions-and-acknowledgements.md#alert-acknowledgementsjson):
    policy {ack_sla_hours}, summary {acknowledged, expired, unacknowledged, overdue, stale}, alerts in
    the archive-health alert order, stale_acknowledgements by alert_id, ack_id."""
    header = _header(ALERT_ACKNOWLEDGEMENTS_KIND, policy=policy.section("acknowledgements"), summary=result.summary,
                     **context)
    return Evidence(header, {"alerts": result.alerts, "stale_acknowledgements": result.stale_acknowledgements})
