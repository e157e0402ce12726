"""Invariants of the rules (hypothesis): docs/retry-plan.md and docs/archive-health.md hold for any accepted records."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from exportaudit.policy import Policy
from tests.conftest import DIGEST_A, DIGEST_B
from tests.frames import at, frame
from transforms.archive_health import archive_health
from transforms.retry_plan import retry_plan

AS_OF = at("2026-11-20T12:00:00Z")
times = st.sampled_from(["2026-11-10T00:00:00Z", "2026-11-19T23:00:00Z", "2026-11-20T11:50:00Z",
                         "2026-11-20T11:45:00Z", "2026-11-20T12:00:00Z", "2026-11-21T00:00:00Z"])
attempts = st.lists(st.fixed_dictionaries({
    "export_id": st.sampled_from(["e1", "e2", "e3"]),
    "destination": st.sampled_from(["d1", "d2"]),
    "connector_kind": st.sampled_from(["webhook", "s3"]),
    "attempted_at": times,
    "outcome": st.sampled_from(["failed", "failed", "delivered"]),
    "http_status": st.sampled_from([None, 200, 404, 429, 500, 501, 503]),
    "error_code": st.sampled_from([None, "timeout", "gone", "mystery"]),
    "retry_after_seconds": st.sampled_from([None, 0, 600, 7200]),
    "idempotency_key": st.sampled_from([None, "k"]),
}), max_size=30).map(lambda rows: [dict(r, attempt_id=f"a{i:03d}") for i, r in enumerate(rows)])
exports = st.lists(st.fixed_dictionaries({
    "export_id": st.sampled_from(["e1", "e2", "e3"]),
    "verification_state": st.sampled_from(["verified", "verified", "failed"]),
    "updated_at": times,
}), max_size=6, unique_by=lambda r: (r["export_id"], r["updated_at"])).map(
    lambda rows: [dict(r, release_record_ref="rel", export_digest=DIGEST_A, generated_at="2026-01-01T00:00:00Z")
                  for r in rows])
policies = st.builds(lambda m, b: Policy(max_attempts=m, backoff_multiplier=b), st.integers(1, 4),
                     st.sampled_from([1, 2.0, 3.5]))


@settings(max_examples=60, deadline=None)
@given(attempts, exports, policies, st.randoms())
def test_retry_plan_invariants(attempt_rows, export_rows, policy, rng):
    result = retry_plan(frame("deliveries", attempt_rows), frame("exports", export_rows), AS_OF, policy)
    plan = result.records
    in_scope = [r for r in attempt_rows if at(r["attempted_at"]) <= AS_OF]
    keys = {(r["export_id"], r["destination"]) for r in in_scope}
    failed = {k for k in keys if any(r["outcome"] == "failed" for r in in_scope if (r["export_id"], r["destination"]) == k)}
    delivered = {k for k in keys if any(r["outcome"] == "delivered" for r in in_scope
                                        if (r["export_id"], r["destination"]) == k)}
    planned = list(zip(plan["export_id"], plan["destination"]))
    assert sorted(planned) == sorted(failed - delivered)  # each exactly once
    assert result.recovered_deliveries == len(failed & delivered)
    for row in plan.to_dicts():
        if row["decision"] == "retry":
            assert row["next_attempt_at"] <= AS_OF
        elif row["decision"] == "wait":
            assert row["next_attempt_at"] > AS_OF
        else:
            assert row["next_attempt_at"] is None
        if row["failed_attempts"] >= policy.max_attempts:
            assert row["decision"] in ("suppress", "hold")
            if row["reason_code"] != "export_unknown":
                assert row["decision"] == "suppress"
    shuffled_attempts, shuffled_exports = attempt_rows[:], export_rows[:]
    rng.shuffle(shuffled_attempts)
    rng.shuffle(shuffled_exports)
    again = retry_plan(frame("deliveries", shuffled_attempts), frame("exports", shuffled_exports), AS_OF, policy)
    assert again.records.equals(plan)


references = st.lists(st.fixed_dictionaries({
    "export_id": st.sampled_from(["e1", "e2", "e3", "ghost"]),
    "archived_digest": st.sampled_from([None, DIGEST_A, DIGEST_B]),
    "lock_mode": st.sampled_from([None, "none", "governance", "compliance"]),
    "retain_until": st.sampled_from([None, "2026-11-20T12:00:00Z", "2026-12-01T00:00:00Z", "2040-01-01T00:00:00Z"]),
    "legal_hold": st.sampled_from([None, True, False]),
    "archived_at": times,
}), max_size=8).map(lambda rows: [dict(r, reference_id=f"r{i}", archive_uri=f"s3://v/r{i}",
                                       archive_provider="aws_s3_object_lock") for i, r in enumerate(rows)])
custody = st.lists(st.fixed_dictionaries({
    "reference_id": st.sampled_from(["r0", "r1", "r2", "r9"]),
    "checked_at": times,
    "object_present": st.booleans(),
    "observed_digest": st.sampled_from([None, DIGEST_A, DIGEST_B]),
}), max_size=8, unique_by=lambda r: (r["reference_id"], r["checked_at"]))


@settings(max_examples=60, deadline=None)
@given(exports, references, custody, st.booleans())
def test_archive_health_invariants(export_rows, reference_rows, check_rows, accept_governance):
    policy = Policy(accept_governance_mode=accept_governance)
    args = (AS_OF, policy)
    first = archive_health(frame("exports", export_rows), frame("archives", reference_rows),
                           frame("custody_checks", check_rows), *args)
    alerts = first.alerts
    assert alerts["alert_id"].n_unique() == alerts.height
    rows = [reference_rows, check_rows, export_rows]
    for part in rows:
        random.Random(1).shuffle(part)
    second = archive_health(frame("exports", export_rows), frame("archives", reference_rows),
                            frame("custody_checks", check_rows), *args)
    assert second.alerts.equals(alerts) and second.exports.equals(first.exports)
    # The per-reference checks run a bucket of references at a time on big inputs: the same answer.
    bucketed = archive_health(frame("exports", export_rows), frame("archives", reference_rows),
                              frame("custody_checks", check_rows), *args, reference_buckets=3)
    assert bucketed.alerts.equals(alerts) and bucketed.exports.equals(first.exports)
    assert bucketed[2:5] == first[2:5]  # orphan references, unchecked references, unmatched custody checks
    for row in first.exports.to_dicts():
        assert row["represented"] == (row["intact_reference_count"] > 0)
        assert (row["custody_status"] == "critical") == (not row["represented"])
    if accept_governance:
        assert "governance_mode" not in set(alerts["check"])
