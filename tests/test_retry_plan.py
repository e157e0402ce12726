"""docs/retry-plan.md: the delivery retry plan, rule by rule, with boundaries."""

from __future__ import annotations

import polars as pl
import pytest

from exportaudit.policy import Policy
from exportaudit.vocabulary import REASON_CODES
from schemas.retry_plan import schema as retry_plan_schema
from tests.conftest import DIGEST_A
from tests.frames import at, frame
from transforms.retry_plan import REASON_SENTENCES, error_class, retry_plan

AS_OF = at("2026-11-20T12:00:00Z")


def export(export_id="exp-1", state="verified", updated_at="2026-11-01T00:00:00Z", ref="rel-1"):
    return {"export_id": export_id, "release_record_ref": ref, "verification_state": state,
            "export_digest": DIGEST_A, "generated_at": "2026-11-01T00:00:00Z", "updated_at": updated_at}


def attempt(attempt_id="a1", attempted_at="2026-11-20T11:00:00Z", outcome="failed", http_status=503,
            error_code=None, retry_after_seconds=None, idempotency_key=None, export_id="exp-1",
            destination="grc-webhook", connector_kind="webhook", endpoint="https://grc.example.com/hook"):
    return dict(attempt_id=attempt_id, export_id=export_id, destination=destination, connector_kind=connector_kind,
                attempted_at=attempted_at, outcome=outcome, http_status=http_status, error_code=error_code,
                retry_after_seconds=retry_after_seconds, idempotency_key=idempotency_key, endpoint=endpoint)


def plan(attempts, exports=None, as_of=AS_OF, policy=None):
    exports = [export()] if exports is None else exports
    result = retry_plan(frame("deliveries", attempts), frame("exports", exports), as_of, policy or Policy())
    retry_plan_schema.validate(result.records)
    return result


def only(attempts, **kwargs) -> dict:
    [row] = plan(attempts, **kwargs).records.to_dicts()
    return row


# --- 2.2 error classes ---------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "code", "expected"), [
    (429, None, "throttled"), (None, "throttled", "throttled"), (None, "rate_limited", "throttled"),
    (503, None, "unavailable"), (None, "connection_refused", "unavailable"), (None, "dns_failure", "unavailable"),
    (None, "tls_handshake_failed", "unavailable"), (None, "network_unreachable", "unavailable"),
    (408, None, "ambiguous"), (500, None, "ambiguous"), (502, None, "ambiguous"), (504, None, "ambiguous"),
    (507, None, "ambiguous"), (599, None, "ambiguous"), (None, "timeout", "ambiguous"),
    (None, "connection_reset", "ambiguous"),
    (501, None, "permanent"), (505, None, "permanent"), (400, None, "permanent"), (404, None, "permanent"),
    (418, None, "permanent"), (499, None, "permanent"),
    *[(None, code, "permanent") for code in ["auth_failed", "forbidden", "not_found", "gone", "payload_rejected",
                                             "payload_too_large", "invalid_destination"]],
    (None, None, "unknown"), (None, "weird_error", "unknown"), (302, None, "unknown"), (200, None, "unknown"),
    (100, "teapot", "unknown"),
    # http_status decides when it is a 4xx or 5xx; otherwise error_code does
    (404, "timeout", "permanent"), (503, "auth_failed", "unavailable"), (429, "gone", "throttled"),
    (200, "timeout", "ambiguous"), (302, "rate_limited", "throttled"), (101, "gone", "permanent"),
])
def test_error_class_table(status, code, expected):
    value = pl.select(error_class(pl.lit(status, pl.Int64), pl.lit(code, pl.Utf8))).item()
    assert value == expected


# --- 2.1 which deliveries are planned --------------------------------------------------------------
def test_only_failed_and_undelivered_deliveries_are_planned_and_recovered_are_counted():
    result = plan([
        attempt("a1", destination="failing"),
        attempt("b1", destination="recovered", attempted_at="2026-11-20T10:00:00Z", outcome="delivered"),
        attempt("b2", destination="recovered"),  # delivered before failing: still recovered
        attempt("c1", destination="delivered-only", outcome="delivered"),
        attempt("d1", destination="delivered-later", attempted_at="2026-11-20T13:00:00Z", outcome="delivered"),
        attempt("d2", destination="delivered-later"),
        attempt("e1", destination="failed-after-as-of", attempted_at="2026-11-21T00:00:00Z"),
    ])
    assert sorted(result.records["destination"]) == ["delivered-later", "failing"]
    assert result.recovered_deliveries == 1


def test_last_attempt_gives_the_fields_and_ties_break_on_greatest_attempt_id():
    row = only([
        attempt("a-1", attempted_at="2026-11-20T09:00:00Z", http_status=500, idempotency_key="k"),
        attempt("a-3", attempted_at="2026-11-20T10:00:00Z", http_status=429, retry_after_seconds=60),
        attempt("a-2", attempted_at="2026-11-20T10:00:00Z", http_status=404),
        attempt("a-9", attempted_at="2026-11-20T12:00:01Z", http_status=400),  # after as_of: ignored
    ])
    assert row["failed_attempts"] == 3
    assert row["first_attempt_at"] == at("2026-11-20T09:00:00Z")
    assert row["last_attempt_at"] == at("2026-11-20T10:00:00Z")
    assert (row["last_http_status"], row["retry_after_seconds"], row["idempotency_key_present"]) == (429, 60, False)
    assert row["error_class"] == "throttled"


# --- 2.3 decision rules ------------------------------------------------------------------------------
def test_rule_1_export_unknown_holds():
    row = only([attempt()], exports=[])
    assert (row["decision"], row["reason_code"], row["release_record_ref"]) == ("hold", "export_unknown", None)
    future = only([attempt()], exports=[export(updated_at="2026-11-21T00:00:00Z")])
    assert future["reason_code"] == "export_unknown"  # only records at or before as_of count


def test_rule_2_export_not_verified_suppresses_using_the_current_state():
    states = [export(state="verified", updated_at="2026-11-01T00:00:00Z"),
              export(state="superseded", updated_at="2026-11-10T00:00:00Z", ref="rel-2")]
    row = only([attempt()], exports=states)
    assert (row["decision"], row["reason_code"], row["release_record_ref"]) == ("suppress", "export_not_verified", "rel-2")
    back = states + [export(state="verified", updated_at="2026-11-15T00:00:00Z", ref="rel-3"),
                     export(state="failed", updated_at="2026-11-21T00:00:00Z")]
    assert only([attempt()], exports=back)["reason_code"] == "eligible"


def test_rule_3_attempts_exhausted_at_exactly_max_attempts():
    attempts = [attempt(f"a{i}", attempted_at=f"2026-11-20T0{i}:00:00Z", http_status=404) for i in range(5)]
    assert only(attempts)["reason_code"] == "attempts_exhausted"  # 5 >= 5, and beats permanent_error
    assert only(attempts[:4])["reason_code"] == "permanent_error"
    assert only(attempts, policy=Policy(max_attempts=6))["reason_code"] == "permanent_error"


def test_rule_1_beats_rule_3():
    attempts = [attempt(f"a{i}", attempted_at=f"2026-11-20T0{i}:00:00Z") for i in range(6)]
    assert only(attempts, exports=[])["reason_code"] == "export_unknown"


def test_rule_4_delivery_expired_strictly_after_max_age():
    exactly = [attempt("a0", attempted_at="2026-11-13T12:00:00Z"), attempt("a1")]
    assert only(exactly)["reason_code"] == "eligible"  # exactly 7 days: not expired
    older = [attempt("a0", attempted_at="2026-11-13T11:59:59.999999Z"), attempt("a1")]
    assert only(older)["reason_code"] == "delivery_expired"
    assert only(older, policy=Policy(max_delivery_age_days=7.5))["reason_code"] == "eligible"


def test_rule_5_permanent_and_rule_6_unknown():
    assert only([attempt(http_status=403)])[("reason_code")] == "permanent_error"
    row = only([attempt(http_status=None, error_code="mystery")])
    assert (row["decision"], row["reason_code"], row["next_attempt_at"]) == ("hold", "unclassified_error", None)


def test_rule_7_ambiguous_needs_idempotency_key_or_idempotent_kind():
    assert only([attempt(http_status=500)])["reason_code"] == "unsafe_without_idempotency_key"
    assert only([attempt(http_status=500, idempotency_key="k-1")])["reason_code"] == "eligible"
    assert only([attempt(http_status=500, connector_kind="s3")])["reason_code"] == "eligible"
    custom = Policy(idempotent_connector_kinds=["webhook"])
    assert only([attempt(http_status=500)], policy=custom)["reason_code"] == "eligible"
    assert only([attempt(http_status=500, connector_kind="s3")],
                policy=Policy(idempotent_connector_kinds=[]))["reason_code"] == "unsafe_without_idempotency_key"
    # not ambiguous: no key needed
    assert only([attempt(http_status=503)])["reason_code"] == "eligible"


def test_rule_8_wait_backoff_and_retry_after():
    # one failure at 11:50: backoff 15 min -> 12:05 > as_of 12:00
    row = only([attempt(attempted_at="2026-11-20T11:50:00Z")])
    assert (row["decision"], row["reason_code"], row["next_attempt_at"]) == (
        "wait", "backoff_pending", at("2026-11-20T12:05:00Z"))
    row = only([attempt(attempted_at="2026-11-20T11:50:00Z", http_status=429, retry_after_seconds=1800)])
    assert (row["reason_code"], row["next_attempt_at"]) == ("retry_after_pending", at("2026-11-20T12:20:00Z"))
    # Retry-After equal to the backoff is not "greater": backoff_pending
    row = only([attempt(attempted_at="2026-11-20T11:50:00Z", retry_after_seconds=900)])
    assert row["reason_code"] == "backoff_pending"
    # Retry-After counts whatever the error class, and is ignored when shorter
    row = only([attempt(attempted_at="2026-11-20T11:59:00Z", http_status=503, retry_after_seconds=10)])
    assert (row["reason_code"], row["next_attempt_at"]) == ("backoff_pending", at("2026-11-20T12:14:00Z"))


def test_rule_8_boundary_next_attempt_exactly_as_of_is_retry():
    row = only([attempt(attempted_at="2026-11-20T11:45:00Z")])
    assert (row["decision"], row["reason_code"], row["next_attempt_at"]) == ("retry", "eligible", AS_OF)


def test_rule_9_retry_reports_next_attempt_even_in_the_past():
    row = only([attempt(attempted_at="2026-11-19T00:00:00Z")])
    assert (row["decision"], row["next_attempt_at"]) == ("retry", at("2026-11-19T00:15:00Z"))


def test_backoff_grows_and_is_capped():
    attempts = [attempt(f"a{i}", attempted_at=f"2026-11-20T0{i}:00:00Z") for i in range(4)]  # 4 failures
    row = only(attempts, as_of=at("2026-11-20T03:30:00Z"))
    assert row["next_attempt_at"] == at("2026-11-20T05:00:00Z")  # 15 * 2^3 = 120 min
    capped = only(attempts, as_of=at("2026-11-20T03:30:00Z"), policy=Policy(max_delay_minutes=60))
    assert capped["next_attempt_at"] == at("2026-11-20T04:00:00Z")
    flat = only(attempts, as_of=at("2026-11-20T03:30:00Z"), policy=Policy(backoff_multiplier=1))
    assert flat["next_attempt_at"] == at("2026-11-20T03:15:00Z")
    below = only(attempts, as_of=at("2026-11-20T03:30:00Z"),
                 policy=Policy(base_delay_minutes=30, max_delay_minutes=10))
    assert below["next_attempt_at"] == at("2026-11-20T03:10:00Z")


def test_next_attempt_is_rounded_to_the_microsecond():
    row = only([attempt(attempted_at="2026-11-20T11:00:00Z")], policy=Policy(base_delay_minutes=1 / 7))
    expected_us = round(60 / 7 * 1_000_000)
    assert row["next_attempt_at"] == at("2026-11-20T11:00:00Z") + __import__("datetime").timedelta(microseconds=expected_us)


def test_sorted_by_decision_then_next_attempt_export_destination():
    attempts = [
        attempt("h", destination="d-hold", http_status=None, error_code="??"),
        attempt("w", destination="d-wait", attempted_at="2026-11-20T11:59:00Z"),
        attempt("r2", destination="d-retry-b", attempted_at="2026-11-19T00:00:00Z"),
        attempt("r1", destination="d-retry-a", attempted_at="2026-11-19T00:00:00Z"),
        attempt("r0", destination="d-retry-z", attempted_at="2026-11-18T00:00:00Z"),
        attempt("s", destination="d-suppress", http_status=410),
    ]
    records = plan(attempts).records
    assert records["destination"].to_list() == ["d-retry-z", "d-retry-a", "d-retry-b", "d-wait", "d-hold", "d-suppress"]
    assert records["max_attempts"].unique().to_list() == [5]


def test_every_reason_code_has_a_sentence():
    assert set(REASON_SENTENCES) == set(REASON_CODES)
