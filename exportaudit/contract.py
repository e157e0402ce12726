"""The record contract of docs/inputs.md#input-logs: fields, types, enums and natural keys of the logs.

Everything that knows what a valid record looks like reads it from here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Field kinds. Each kind has one text syntax and one stored Polars type.
STRING = "string"  # kept as given
CODE = "code"  # free code: trimmed and lowercased at ingest (error_code, connector_kind)
TIMESTAMP = "timestamp"  # ISO-8601 with offset, stored as UTC microseconds
DIGEST = "digest"  # sha256:<64 lowercase hex>
ENUM = "enum"  # exactly one of the listed lowercase values
INT = "int"  # integer within [low, high]
BOOL = "bool"  # true / false


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    required: bool
    description: str
    values: tuple[str, ...] = ()  # enum values
    low: int | None = None  # int range, inclusive
    high: int | None = None


@dataclass(frozen=True)
class Log:
    name: str  # also the warehouse table name
    fields: tuple[Field, ...]
    natural_key: tuple[str, ...]
    date_field: str  # records dated after as_of are ignored by this field (docs/inputs.md#input-logs)
    description: str

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


VERIFICATION_STATES = ("verified", "incomplete", "failed", "superseded")
OUTCOMES = ("delivered", "failed")
VISIBILITIES = ("public", "private")
LOCK_MODES = ("compliance", "governance", "none")

EXPORTS = Log(
    name="exports",
    description="Auditor export register: one record per state of an export (docs/inputs.md#exports-log).",
    natural_key=("export_id", "updated_at"),
    date_field="updated_at",
    fields=(
        Field("export_id", STRING, True, "Id of the export."),
        Field("release_record_ref", STRING, True, "The release record the export belongs to."),
        Field("verification_id", STRING, False, "Id of the closure-packet verification."),
        Field("verification_state", ENUM, True, "State of the export's verification.", VERIFICATION_STATES),
        Field("export_digest", DIGEST, True, "Digest of the export bundle."),
        Field("generated_at", TIMESTAMP, True, "When the export was generated (UTC)."),
        Field("updated_at", TIMESTAMP, True, "When this state was recorded (UTC)."),
        Field("required_retain_until", TIMESTAMP, False,
              "Custody must last at least until then; default generated_at + required_retention_days."),
    ),
)

DELIVERIES = Log(
    name="deliveries",
    description="Delivery attempts: one record per attempt to deliver an export to a destination (docs/inputs.md#deliveries-log).",
    natural_key=("attempt_id",),
    date_field="attempted_at",
    fields=(
        Field("attempt_id", STRING, True, "Unique id of the attempt."),
        Field("export_id", STRING, True, "Export the attempt delivered."),
        Field("destination", STRING, True, "Configured connector name, e.g. grc-webhook."),
        Field("connector_kind", CODE, True, "webhook, s3, gcs, azure_blob, sftp, email or another name (lowercased)."),
        Field("connector_visibility", ENUM, False, "public or private; null means public.", VISIBILITIES),
        Field("attempted_at", TIMESTAMP, True, "When the attempt was made (UTC)."),
        Field("outcome", ENUM, True, "delivered or failed.", OUTCOMES),
        Field("http_status", INT, False, "HTTP status of the attempt, 100-599.", low=100, high=599),
        Field("error_code", CODE, False, "Error code of the attempt (lowercased)."),
        Field("retry_after_seconds", INT, False, "The destination's Retry-After, in seconds.", low=0, high=31_536_000),
        Field("idempotency_key", STRING, False, "Idempotency key sent with the attempt, if any."),
        Field("endpoint", STRING, False, "Where the attempt went, redacted (docs/security.md#what-is-never-stored-or-printed)."),
    ),
)

ARCHIVES = Log(
    name="archives",
    description="Archive references: one record per copy of an export placed in archive storage (docs/inputs.md#archives-log).",
    natural_key=("reference_id",),
    date_field="archived_at",
    fields=(
        Field("reference_id", STRING, True, "Unique id of the archive reference."),
        Field("export_id", STRING, True, "Export the reference holds."),
        Field("archive_uri", STRING, True, "Where the copy is, redacted (docs/security.md#what-is-never-stored-or-printed)."),
        Field("archive_provider", STRING, True, "aws_s3_object_lock, azure_immutable_blob, gcs_bucket_lock, filesystem or another."),
        Field("archived_digest", DIGEST, False, "Digest recorded when archived."),
        Field("lock_mode", ENUM, False, "WORM mode declared at archive time; null means none.", LOCK_MODES),
        Field("retain_until", TIMESTAMP, False, "End of the retention period (UTC)."),
        Field("legal_hold", BOOL, False, "Legal hold declared; null means false."),
        Field("archived_at", TIMESTAMP, True, "When the copy was archived (UTC)."),
    ),
)

CUSTODY_CHECKS = Log(
    name="custody_checks",
    description="Custody checks: one record per observation of an archived object (docs/inputs.md#custody-checks-log).",
    natural_key=("reference_id", "checked_at", "source"),
    date_field="checked_at",
    fields=(
        Field("reference_id", STRING, True, "Archive reference that was looked at."),
        Field("checked_at", TIMESTAMP, True, "When it was looked at (UTC)."),
        Field("object_present", BOOL, True, "False: the object or version is gone, or a delete marker is current."),
        Field("observed_digest", DIGEST, False, "Digest computed from the stored object."),
        Field("observed_lock_mode", ENUM, False, "Lock mode observed on the object.", LOCK_MODES),
        Field("observed_retain_until", TIMESTAMP, False, "Retention end observed on the object (UTC)."),
        Field("observed_legal_hold", BOOL, False, "Legal hold observed on the object."),
        Field("source", STRING, False,
              "Where the observation came from (free text, e.g. manual-audit); checks derived from S3 reports "
              "carry s3_inventory or s3_batch_checksum (docs/real-sources.md)."),
    ),
)

EXECUTION_RESULTS = ("delivered", "failed", "skipped")

RETRY_EXECUTIONS = Log(
    name="retry_executions",
    description="Retry worker executions: one record per time the operator's retry worker acted (or chose not to) "
                "on a retry-plan record (docs/inputs.md#retry-executions-log).",
    natural_key=("execution_id",),
    date_field="executed_at",
    fields=(
        Field("execution_id", STRING, True, "Unique id of the execution."),
        Field("plan_evidence_id", STRING, True, "evidence_id of the retry-plan document the worker acted on."),
        Field("export_id", STRING, True, "Export the worker re-sent (or skipped)."),
        Field("destination", STRING, True, "Destination the worker re-sent to (or skipped)."),
        Field("executed_at", TIMESTAMP, True, "When the worker acted (UTC)."),
        Field("result", ENUM, True, "delivered, failed or skipped.", EXECUTION_RESULTS),
        Field("attempt_id", STRING, False, "The delivery attempt this execution produced, if any."),
        Field("worker", STRING, False, "Which worker acted (free text, redacted)."),
    ),
)

ALERT_ACKNOWLEDGEMENTS = Log(
    name="alert_acknowledgements",
    description="Alert acknowledgements: one record per acknowledgement of an archive health alert by the "
                "operator's alerting system (docs/inputs.md#alert-acknowledgements-log).",
    natural_key=("ack_id",),
    date_field="acknowledged_at",  # expires_at plays no part in the as_of filter
    fields=(
        Field("ack_id", STRING, True, "Unique id of the acknowledgement."),
        Field("alert_id", STRING, True, "The stable alert_id of an archive health alert."),
        Field("acknowledged_at", TIMESTAMP, True, "When the alert was acknowledged (UTC)."),
        Field("acknowledged_by", STRING, True, "Person or system that acknowledged it (free text, redacted)."),
        Field("expires_at", TIMESTAMP, False, "The acknowledgement lapses at this instant (UTC); null: never."),
        Field("comment", STRING, False, "Comment (free text, redacted)."),
    ),
)

LOGS: dict[str, Log] = {log.name: log for log in (EXPORTS, DELIVERIES, ARCHIVES, CUSTODY_CHECKS, RETRY_EXECUTIONS,
                                                  ALERT_ACKNOWLEDGEMENTS)}

# Quarantine reason codes (docs/inputs.md#bad-input-and-quarantine). A quarantined row lists every code that applies;
# `reason_details` adds the field, e.g. "missing_required_field:export_id".
QUARANTINE_REASONS = {
    "malformed_json": "the JSON line does not parse, or is valid JSON but not an object",
    "invalid_utf8": "the record holds bytes that are not UTF-8",
    "missing_required_field": "a required field is absent, null or empty",
    "wrong_type": "a value has the wrong type (e.g. \"404\" or 404.0 for an integer)",
    "unknown_enum_value": "an enumerated field holds a value outside its list",
    "naive_timestamp": "a timestamp has no offset or Z",
    "invalid_timestamp": "a timestamp is not ISO-8601 date T time with offset, or not a real instant",
    "malformed_digest": "a digest is not sha256: followed by 64 lowercase hex characters",
    "out_of_range": "an integer is outside its range (http_status 100-599, retry_after_seconds 0-31536000)",
    "conflicting_duplicate": "another valid record with the same natural key has different values",
    # Rows of real sources (docs/real-sources.md#quarantine-reasons-of-real-sources).
    "wrong_column_count": "an S3 Inventory CSV row's field count differs from fileSchema, or a Batch Operations "
                          "result row has fewer than 7 fields",
    "missing_field": "an S3 Inventory row has an empty Bucket or Key, or a Svix attempt has no msg.eventId",
    "invalid_value": "an S3 Inventory boolean, date, lock mode or legal hold status is not recognised",
    "attempt_not_final": "a Svix attempt is pending, sending or canceled; a later listing brings its final state",
}
