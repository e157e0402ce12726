"""The delivery retry plan (docs/retry-plan.md): accepted deliveries + exports + as_of + policy -> plan records.

Read top to bottom: which deliveries are planned (2.1), the error class of the last
attempt (2.2), the backoff and next attempt (2.3), then the nine decision rules in
order, each one named expression.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import polars as pl

from exportaudit.vocabulary import (
    AMBIGUOUS, DECISIONS, HOLD, PERMANENT, RETRY, SCHEDULED_DECISIONS, SUPPRESS, THROTTLED, UNAVAILABLE, UNKNOWN, WAIT,
)
from transforms.current_state import current_exports, up_to
from transforms.timestamps import UTC_US

PLAN_COLUMNS = (
    "export_id", "destination", "connector_kind", "release_record_ref", "decision", "reason_code", "reason",
    "error_class", "failed_attempts", "max_attempts", "first_attempt_at", "last_attempt_at", "last_http_status",
    "last_error_code", "retry_after_seconds", "idempotency_key_present", "next_attempt_at", "endpoint",
)

# docs/retry-plan.md#error-classes, by http_status (decides when it is a 4xx or 5xx) and by error_code (otherwise).
THROTTLED_CODES = ("throttled", "rate_limited")
UNAVAILABLE_CODES = ("connection_refused", "dns_failure", "tls_handshake_failed", "network_unreachable")
AMBIGUOUS_CODES = ("timeout", "connection_reset")
PERMANENT_CODES = ("auth_failed", "forbidden", "not_found", "gone", "payload_rejected", "payload_too_large",
                   "invalid_destination")

REASON_SENTENCES = {
    "export_unknown": "No export record exists for this export at as_of; a person must decide.",
    "export_not_verified": "The export's current verification state is not verified; it must not be delivered.",
    "attempts_exhausted": "The delivery has used all its attempts; it will not be retried automatically.",
    "delivery_expired": "The first attempt is older than the maximum delivery age; it will not be retried automatically.",
    "permanent_error": "The last attempt failed with a permanent error; retrying cannot help.",
    "unclassified_error": "The last attempt's failure could not be classified; a person must decide.",
    "unsafe_without_idempotency_key": "The last attempt may have been applied and the connector is not idempotent "
                                      "without an idempotency key; a person must decide.",
    "retry_after_pending": "The destination's Retry-After has not yet elapsed.",
    "backoff_pending": "The backoff after the last failed attempt has not yet elapsed.",
    "eligible": "Safe to retry now.",
}

_US_PER_MINUTE = 60_000_000
_US_PER_DAY = 86_400_000_000


def delivery_attempts(deliveries: pl.LazyFrame, as_of: datetime) -> pl.LazyFrame:
    """Per delivery (export_id, destination): failed and delivered attempt counts, first and
    last attempt time, at or before as_of."""
    return (
        up_to(deliveries, "attempted_at", as_of)
        .group_by("export_id", "destination")
        .agg(
            failed_attempts=(pl.col("outcome") == "failed").sum().cast(pl.Int64),
            delivered_attempts=(pl.col("outcome") == "delivered").sum().cast(pl.Int64),
            first_attempt_at=pl.col("attempted_at").min(),
            last_attempt_at=pl.col("attempted_at").max(),
        )
    )


def last_attempts(deliveries: pl.LazyFrame, planned: pl.LazyFrame, as_of: datetime) -> pl.LazyFrame:
    """The last attempt of each planned delivery and the fields it gives (docs/retry-plan.md#deliveries-in-the-plan): greatest
    attempted_at, ties broken by the greatest attempt_id (code point order). Only the attempts
    made at the last instant are looked at, so no sort of all attempts is needed.

    Memory: every read of the attempts streams, and each joins or filters on narrow columns only. The
    attempts are numbered in read order (a row index, taken before the as_of filter so it is the same
    in every read); a first read matches only the keys and attempted_at against the planned deliveries
    and keeps the row numbers; a second fetches the fields the rules use for those rows only (a filter
    on the row number: carrying the wide fields through a join costs far more); after the tie-break, a
    third fetches the endpoint, a long string, for the last attempts only."""
    key = ["export_id", "destination"]
    numbered = deliveries.with_row_index("_row")
    in_scope = up_to(numbered, "attempted_at", as_of)
    rows = (
        in_scope.select("_row", *key, "attempted_at")
        .join(planned.select(*key, attempted_at="last_attempt_at"), on=[*key, "attempted_at"], how="semi")
        .select("_row").collect(engine="streaming")
    )
    at_last_instant = numbered.filter(pl.col("_row").is_in(rows["_row"].implode())).select(
        "_row", *key, "attempt_id", "connector_kind", "http_status", "error_code", "retry_after_seconds",
        idempotency_key_present=pl.col("idempotency_key").is_not_null(),
    ).collect(engine="streaming")
    del rows
    last = (
        at_last_instant.sort("attempt_id", descending=True)
        .unique(subset=key, keep="first")
        .select(*key, "_row", "connector_kind", last_http_status="http_status", last_error_code="error_code",
                retry_after_seconds="retry_after_seconds", idempotency_key_present="idempotency_key_present")
    )
    del at_last_instant
    endpoints = numbered.filter(pl.col("_row").is_in(last["_row"].implode())).select(
        "_row", "endpoint").collect(engine="streaming")
    return last.lazy().join(endpoints.lazy(), on="_row", how="left").drop("_row")


def error_class(http_status: pl.Expr, error_code: pl.Expr) -> pl.Expr:
    """docs/retry-plan.md#error-classes: http_status decides when it is a 4xx or 5xx; otherwise error_code; else unknown."""
    status_decides = http_status.is_between(400, 599)
    by_status = (
        pl.when(http_status == 429).then(pl.lit(THROTTLED))
        .when(http_status == 503).then(pl.lit(UNAVAILABLE))
        .when(http_status.is_in([408, 500, 502, 504])).then(pl.lit(AMBIGUOUS))
        .when(http_status.is_in([501, 505])).then(pl.lit(PERMANENT))
        .when(http_status >= 500).then(pl.lit(AMBIGUOUS))  # every 5xx not named
        .otherwise(pl.lit(PERMANENT))  # every 4xx not named
    )
    by_code = (
        pl.when(error_code.is_in(THROTTLED_CODES)).then(pl.lit(THROTTLED))
        .when(error_code.is_in(UNAVAILABLE_CODES)).then(pl.lit(UNAVAILABLE))
        .when(error_code.is_in(AMBIGUOUS_CODES)).then(pl.lit(AMBIGUOUS))
        .when(error_code.is_in(PERMANENT_CODES)).then(pl.lit(PERMANENT))
        .otherwise(pl.lit(UNKNOWN))
    )
    return pl.when(status_decides.fill_null(False)).then(by_status).otherwise(by_code)


def backoff_us(failed_attempts: pl.Expr, policy) -> pl.Expr:
    """min(max_delay, base_delay × multiplier^(failed_attempts − 1)), in microseconds (float)."""
    exponent = (failed_attempts - 1).cast(pl.Float64)
    uncapped = pl.lit(float(policy.base_delay_minutes)) * pl.lit(float(policy.backoff_multiplier)).pow(exponent)
    return pl.min_horizontal(uncapped, pl.lit(float(policy.max_delay_minutes))) * _US_PER_MINUTE


class RetryPlan(NamedTuple):
    records: pl.DataFrame  # docs/retry-plan.md#plan-record records, sorted
    recovered_deliveries: int  # failed and delivered at or before as_of: counted, not planned


def retry_plan(deliveries: pl.LazyFrame, exports: pl.LazyFrame, as_of: datetime, policy) -> RetryPlan:
    """docs/retry-plan.md: one record per undelivered delivery with a failed attempt, with decision and reason."""
    # An export is known at as_of exactly when it has a current state: one join gives both.
    current = current_exports(exports, as_of).select("export_id", "release_record_ref", "verification_state",
                                                     export_known=pl.lit(True))
    attempts = delivery_attempts(deliveries, as_of).filter(pl.col("failed_attempts") >= 1).collect(engine="streaming")
    recovered = attempts.filter(pl.col("delivered_attempts") >= 1).height
    undelivered = attempts.lazy().filter(pl.col("delivered_attempts") == 0)
    planned = (
        undelivered.join(last_attempts(deliveries, undelivered, as_of),
                         on=["export_id", "destination"], how="left")
        .join(current, on="export_id", how="left")
    )

    backoff = pl.col("backoff_us")
    retry_after_us = pl.col("retry_after_seconds").fill_null(0).cast(pl.Float64) * 1_000_000
    with_timing = planned.with_columns(
        error_class=error_class(pl.col("last_http_status"), pl.col("last_error_code")),
        backoff_us=backoff_us(pl.col("failed_attempts"), policy),
    ).with_columns(
        next_attempt_computed=(
            pl.col("last_attempt_at")
            + pl.duration(microseconds=pl.max_horizontal(backoff, retry_after_us).round(0).cast(pl.Int64))
        ).cast(UTC_US),
    )

    age_us = (pl.lit(as_of, dtype=UTC_US) - pl.col("first_attempt_at")).dt.total_microseconds()
    export_unknown = pl.col("export_known").is_null()
    export_not_verified = pl.col("verification_state") != "verified"
    attempts_exhausted = pl.col("failed_attempts") >= policy.max_attempts
    delivery_expired = age_us.cast(pl.Float64) > float(policy.max_delivery_age_days) * _US_PER_DAY
    permanent_error = pl.col("error_class") == PERMANENT
    unclassified_error = pl.col("error_class") == UNKNOWN
    unsafe_without_key = (
        (pl.col("error_class") == AMBIGUOUS)
        & ~pl.col("idempotency_key_present")
        & ~pl.col("connector_kind").is_in(list(policy.idempotent_connector_kinds))
    )
    not_yet_due = pl.col("next_attempt_computed") > pl.lit(as_of, dtype=UTC_US)
    retry_after_longer = pl.col("retry_after_seconds").cast(pl.Float64) * 1_000_000 > backoff

    rules = [  # (condition, decision, reason_code), first match wins (docs/retry-plan.md#decision-rules)
        (export_unknown, HOLD, pl.lit("export_unknown")),
        (export_not_verified, SUPPRESS, pl.lit("export_not_verified")),
        (attempts_exhausted, SUPPRESS, pl.lit("attempts_exhausted")),
        (delivery_expired, SUPPRESS, pl.lit("delivery_expired")),
        (permanent_error, SUPPRESS, pl.lit("permanent_error")),
        (unclassified_error, HOLD, pl.lit("unclassified_error")),
        (unsafe_without_key, HOLD, pl.lit("unsafe_without_idempotency_key")),
        (not_yet_due, WAIT,
         pl.when(retry_after_longer.fill_null(False)).then(pl.lit("retry_after_pending")).otherwise(pl.lit("backoff_pending"))),
    ]
    decision = pl.lit(RETRY)
    reason_code = pl.lit("eligible")
    for condition, rule_decision, rule_reason in reversed(rules):
        decision = pl.when(condition.fill_null(False)).then(pl.lit(rule_decision)).otherwise(decision)
        reason_code = pl.when(condition.fill_null(False)).then(rule_reason).otherwise(reason_code)

    decided = with_timing.with_columns(decision=decision, reason_code=reason_code).with_columns(
        reason=pl.col("reason_code").replace_strict(REASON_SENTENCES, return_dtype=pl.Utf8),
        next_attempt_at=pl.when(pl.col("decision").is_in(list(SCHEDULED_DECISIONS)))
        .then(pl.col("next_attempt_computed")),
        max_attempts=pl.lit(policy.max_attempts, dtype=pl.Int64),
    )
    decision_rank = pl.col("decision").replace_strict({d: i for i, d in enumerate(DECISIONS)}, return_dtype=pl.Int8)
    records = (
        decided.sort([decision_rank, pl.col("next_attempt_at"), pl.col("export_id"), pl.col("destination")],
                     nulls_last=True)
        .select(PLAN_COLUMNS)
        .collect()
    )
    return RetryPlan(records, recovered)
