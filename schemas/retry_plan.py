"""Pandera model of a retry plan (docs/retry-plan.md#plan-record): one record per delivery in the plan."""

import pandera.polars as pa
import polars as pl

from exportaudit.vocabulary import DECISIONS, ERROR_CLASSES, REASON_CODES, SCHEDULED_DECISIONS
from transforms.timestamps import UTC_US


def _next_attempt_only_for_retry_and_wait(data) -> pl.LazyFrame:
    return data.lazyframe.select(
        pl.col("next_attempt_at").is_not_null() == pl.col("decision").is_in(list(SCHEDULED_DECISIONS))
    )


schema = pa.DataFrameSchema(
    {
        "export_id": pa.Column(pl.Utf8, description="Export being delivered."),
        "destination": pa.Column(pl.Utf8, description="Configured connector name."),
        "connector_kind": pa.Column(pl.Utf8, description="Connector kind of the last attempt."),
        "release_record_ref": pa.Column(pl.Utf8, nullable=True,
                                        description="Release record of the export's current state; null when unknown."),
        "decision": pa.Column(pl.Utf8, checks=pa.Check.isin(DECISIONS),
                              description="retry (safe now), wait (safe, not yet), hold (a person decides), "
                                          "suppress (never retry automatically)."),
        "reason_code": pa.Column(pl.Utf8, checks=pa.Check.isin(REASON_CODES),
                                 description="Rule of docs/retry-plan.md#decision-rules that gave the decision."),
        "reason": pa.Column(pl.Utf8, description="One human sentence explaining the decision."),
        "error_class": pa.Column(pl.Utf8, checks=pa.Check.isin(ERROR_CLASSES),
                                 description="Class of the last attempt's failure (docs/retry-plan.md#error-classes)."),
        "failed_attempts": pa.Column(pl.Int64, checks=pa.Check.ge(1), description="Number of failed attempts."),
        "max_attempts": pa.Column(pl.Int64, checks=pa.Check.ge(1), description="Policy max_attempts."),
        "first_attempt_at": pa.Column(UTC_US, description="First attempt (UTC)."),
        "last_attempt_at": pa.Column(UTC_US, description="Last attempt (UTC)."),
        "last_http_status": pa.Column(pl.Int64, nullable=True, description="HTTP status of the last attempt."),
        "last_error_code": pa.Column(pl.Utf8, nullable=True, description="Error code of the last attempt."),
        "retry_after_seconds": pa.Column(pl.Int64, nullable=True, description="Retry-After of the last attempt."),
        "idempotency_key_present": pa.Column(pl.Boolean, description="The last attempt carried an idempotency key."),
        "next_attempt_at": pa.Column(UTC_US, nullable=True,
                                     description="When the next attempt is due; set for retry and wait only."),
        "endpoint": pa.Column(pl.Utf8, nullable=True, description="Endpoint of the last attempt, redacted."),
    },
    checks=[pa.Check(_next_attempt_only_for_retry_and_wait, name="next_attempt_at_only_for_retry_and_wait")],
    unique=["export_id", "destination"],
    name="retry_plan",
    description="Delivery retry plan: one record per failed, undelivered delivery (docs/retry-plan.md).",
    strict=True,
    ordered=True,
)
