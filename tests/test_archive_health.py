"""docs/archive-health.md: archive reference health, check by check, with boundaries."""

from __future__ import annotations

import hashlib

import pytest

import transforms.archive_health as archive_health_module
from exportaudit.policy import Policy
from exportaudit.vocabulary import CHECKS, EXPORT_CHECKS, ORPHAN_CHECKS, REFERENCE_CHECKS
from schemas.archive_alerts import schema as alerts_schema
from schemas.archive_health import schema as health_schema
from tests.conftest import DIGEST_A, DIGEST_B
from tests.frames import at, frame
from transforms.archive_health import CHECK_MESSAGES, CHECK_SEVERITY, archive_health

AS_OF = at("2026-11-20T12:00:00Z")


def export(export_id="exp-1", state="verified", updated_at="2026-11-01T00:00:00Z", required_retain_until=None,
           generated_at="2026-11-01T00:00:00Z"):
    return {"export_id": export_id, "release_record_ref": f"rel-{export_id}", "verification_state": state,
            "export_digest": DIGEST_A, "generated_at": generated_at, "updated_at": updated_at,
            "required_retain_until": required_retain_until}


def reference(reference_id="ref-1", export_id="exp-1", digest=DIGEST_A, lock_mode="compliance",
              retain_until="2034-01-01T00:00:00Z", legal_hold=None, archived_at="2026-11-02T00:00:00Z"):
    return dict(reference_id=reference_id, export_id=export_id, archive_uri=f"s3://vault/{reference_id}",
                archive_provider="aws_s3_object_lock", archived_digest=digest, lock_mode=lock_mode,
                retain_until=retain_until, legal_hold=legal_hold, archived_at=archived_at)


def check(reference_id="ref-1", checked_at="2026-11-19T00:00:00Z", present=True, **observed):
    return dict(reference_id=reference_id, checked_at=checked_at, object_present=present, **observed)


def health(exports=None, references=None, checks=None, as_of=AS_OF, policy=None):
    exports = [export()] if exports is None else exports
    references = [reference()] if references is None else references
    checks = [check()] if checks is None else checks
    result = archive_health(frame("exports", exports), frame("archives", references), frame("custody_checks", checks),
                            as_of, policy or Policy())
    health_schema.validate(result.exports)
    alerts_schema.validate(result.alerts)
    return result


def checks_fired(**kwargs) -> set[str]:
    return set(health(**kwargs).alerts["check"])


def test_a_healthy_reference_has_no_alert():
    result = health()
    assert result.alerts.height == 0
    assert result.exports.row(0, named=True) | {} == {
        "export_id": "exp-1", "release_record_ref": "rel-exp-1", "custody_status": "healthy", "represented": True,
        "reference_count": 1, "intact_reference_count": 1, "critical_count": 0, "warning_count": 0}


def test_object_missing_from_the_latest_check_only():
    assert checks_fired(checks=[check(present=False)]) == {"object_missing"}
    later_present = [check(present=False, checked_at="2026-11-18T00:00:00Z"), check(present=True)]
    assert checks_fired(checks=later_present) == set()
    after_as_of = [check(), check(present=False, checked_at="2026-11-21T00:00:00Z")]
    assert checks_fired(checks=after_as_of) == set()


def test_digest_mismatch_and_unverifiable_use_effective_digest():
    assert checks_fired(references=[reference(digest=DIGEST_B)]) == {"digest_mismatch"}
    assert checks_fired(references=[reference(digest=None)]) == {"digest_unverifiable"}
    observed_fixes = [check(observed_digest=DIGEST_A)]
    assert checks_fired(references=[reference(digest=DIGEST_B)], checks=observed_fixes) == set()
    observed_breaks = [check(observed_digest=DIGEST_B, checked_at="2026-11-18T00:00:00Z"), check()]
    assert checks_fired(checks=observed_breaks) == {"digest_mismatch"}  # latest non-null observed value


def test_missing_object_still_contributes_its_observed_values():
    fired = checks_fired(checks=[check(present=False, observed_digest=DIGEST_B)])
    assert fired == {"object_missing", "digest_mismatch"}


def test_not_immutable_unless_locked_or_on_legal_hold():
    assert "not_immutable" in checks_fired(references=[reference(lock_mode=None, retain_until=None)])
    assert "not_immutable" in checks_fired(references=[reference(lock_mode="none")])
    assert "not_immutable" not in checks_fired(references=[reference(lock_mode="none", legal_hold=True)])
    observed_lock = [check(observed_lock_mode="compliance")]
    assert "not_immutable" not in checks_fired(references=[reference(lock_mode="none")], checks=observed_lock)


def test_governance_mode_and_accepting_it_removes_only_that_finding():
    refs = [reference(lock_mode="governance", retain_until="2026-12-01T00:00:00Z")]
    assert checks_fired(references=refs) == {"governance_mode", "retention_expiring", "retention_short"}
    accepted = checks_fired(references=refs, policy=Policy(accept_governance_mode=True))
    assert accepted == {"retention_expiring", "retention_short"}


def test_retention_missing():
    assert checks_fired(references=[reference(retain_until=None)]) == {"retention_missing"}
    assert checks_fired(references=[reference(retain_until=None, legal_hold=True)]) == set()
    assert checks_fired(references=[reference(lock_mode="governance", retain_until=None)]) == {
        "retention_missing", "governance_mode"}


def test_retention_expired_boundary_at_as_of():
    fired = checks_fired(references=[reference(retain_until="2026-11-20T12:00:00Z")])
    assert {"retention_expired", "retention_short"} == fired
    just_after = checks_fired(references=[reference(retain_until="2026-11-20T12:00:00.000001Z")])
    assert "retention_expired" not in just_after and "retention_expiring" in just_after
    on_hold = checks_fired(references=[reference(retain_until="2026-11-01T00:00:00Z", legal_hold=True)])
    assert on_hold == {"retention_short"}  # retention_short regardless of legal hold


def test_retention_expiring_boundary_at_warning_window():
    edge = checks_fired(references=[reference(retain_until="2026-12-20T12:00:00Z")])  # as_of + 30 days
    assert "retention_expiring" in edge
    beyond = checks_fired(references=[reference(retain_until="2026-12-20T12:00:00.000001Z")])
    assert "retention_expiring" not in beyond


def test_retention_short_against_required_retain_until():
    # default: generated_at + 2557 days = 2033-11-01
    assert checks_fired(references=[reference(retain_until="2033-10-31T23:59:59Z")]) == {"retention_short"}
    assert checks_fired(references=[reference(retain_until="2033-11-01T00:00:00Z")]) == set()
    explicit = [export(required_retain_until="2040-01-01T00:00:00Z")]
    assert checks_fired(exports=explicit) == {"retention_short"}
    shorter_policy = Policy(required_retention_days=365.5)
    # 2026-11-01 + 365.5 days = 2027-11-01T12:00 (fractional days allowed)
    assert checks_fired(references=[reference(retain_until="2027-11-01T12:00:00Z")], policy=shorter_policy) == set()
    assert checks_fired(references=[reference(retain_until="2027-11-01T11:59:59Z")],
                        policy=shorter_policy) == {"retention_short"}


def test_check_stale_boundary_and_no_check():
    assert checks_fired(checks=[]) == {"check_stale"}
    assert checks_fired(checks=[check(checked_at="2026-11-13T12:00:00Z")]) == set()  # exactly 7 days
    assert checks_fired(checks=[check(checked_at="2026-11-13T11:59:59Z")]) == {"check_stale"}
    early = [check(checked_at="2026-10-01T00:00:00Z")]  # before archived_at: still counts
    assert checks_fired(checks=early, policy=Policy(max_check_age_days=100)) == set()


def test_findings_are_independent_and_one_never_hides_another():
    ref = reference(digest=None, lock_mode="none", retain_until="2026-11-01T00:00:00Z")
    fired = checks_fired(references=[ref], checks=[check(present=False, checked_at="2026-10-01T00:00:00Z")])
    assert fired == {"object_missing", "digest_unverifiable", "not_immutable", "retention_expired",
                     "retention_short", "check_stale"}


def test_missing_reference_and_represented_by_one_intact_reference():
    result = health(references=[], checks=[])
    [row] = result.exports.to_dicts()
    assert (row["custody_status"], row["represented"], row["critical_count"]) == ("critical", False, 1)
    [alert] = result.alerts.to_dicts()
    assert (alert["check"], alert["severity"], alert["reference_id"], alert["archive_uri"]) == (
        "missing_reference", "critical", None, None)

    refs = [reference("ref-1"), reference("ref-2", digest=DIGEST_B)]
    result = health(references=refs, checks=[check("ref-1"), check("ref-2")])
    [row] = result.exports.to_dicts()
    assert (row["custody_status"], row["represented"], row["reference_count"], row["intact_reference_count"],
            row["critical_count"]) == ("warning", True, 2, 1, 1)

    result = health(references=[reference(digest=DIGEST_B)])
    assert result.exports["custody_status"].to_list() == ["critical"]


def test_reference_archived_after_as_of_does_not_count():
    result = health(references=[reference(archived_at="2026-11-21T00:00:00Z")])
    assert set(result.alerts["check"]) == {"missing_reference"}


def test_orphans_unchecked_and_unmatched():
    exports = [export("exp-1"), export("exp-2", state="incomplete"), export("exp-3", updated_at="2026-11-21T00:00:00Z")]
    refs = [reference("ref-1"), reference("ref-2", export_id="exp-2"), reference("ref-3", export_id="exp-3"),
            reference("ref-9", export_id="nobody"), reference("ref-late", export_id="nobody",
                                                                archived_at="2026-11-21T00:00:00Z")]
    checks = [check("ref-1"), check("ref-9", present=False), check("ghost"), check("ghost", checked_at="2026-11-18T00:00:00Z"),
              check("ref-late"), check("ghost", checked_at="2026-11-21T00:00:00Z")]
    result = health(exports=exports, references=refs, checks=checks)
    orphans = result.alerts.filter(result.alerts["check"] == "orphan_reference").to_dicts()
    assert sorted(a["reference_id"] for a in orphans) == ["ref-3", "ref-9"]
    assert all(a["severity"] == "warning" and a["release_record_ref"] is None for a in orphans)
    assert set(result.alerts["check"]) == {"orphan_reference"}  # no other finding on orphans
    assert result.exports["export_id"].to_list() == ["exp-1"]
    assert (result.orphan_references, result.unchecked_references, result.unmatched_custody_checks) == (2, 1, 2)


def test_alert_ids_are_stable_and_sorted_critical_first():
    refs = [reference("ref-b", digest=DIGEST_B), reference("ref-a", lock_mode="governance")]
    exports = [export("exp-1"), export("exp-0")]
    first = health(exports=exports, references=refs, checks=[check("ref-a"), check("ref-b")])
    second = health(exports=list(reversed(exports)), references=list(reversed(refs)),
                    checks=[check("ref-b"), check("ref-a")])
    assert first.alerts.equals(second.alerts)
    rows = first.alerts.select("severity", "export_id", "reference_id", "check").rows()
    assert rows == [("critical", "exp-0", None, "missing_reference"), ("critical", "exp-1", "ref-b", "digest_mismatch"),
                    ("warning", "exp-1", "ref-a", "governance_mode")]
    expected = {row["check"]: hashlib.sha256(
        f"{row['export_id']}|{row['reference_id'] or ''}|{row['check']}".encode()).hexdigest()[:16]
        for row in first.alerts.to_dicts()}
    assert dict(zip(first.alerts["check"], first.alerts["alert_id"])) == expected


def test_alerts_of_one_severity_go_by_export_then_reference_then_check():
    """The reference ids run against the export ids, so sorting by reference first would differ."""
    refs = [reference("ref-9", "exp-1", lock_mode="none", digest=DIGEST_B), reference("ref-1", "exp-2", digest=DIGEST_B),
            reference("ref-5", "exp-1", digest=DIGEST_B)]
    result = health(exports=[export("exp-2"), export("exp-1")], references=refs,
                    checks=[check("ref-9"), check("ref-1"), check("ref-5")])
    rows = result.alerts.select("severity", "export_id", "reference_id", "check").rows()
    assert rows == [("critical", "exp-1", "ref-5", "digest_mismatch"), ("critical", "exp-1", "ref-9", "digest_mismatch"),
                    ("critical", "exp-1", "ref-9", "not_immutable"), ("critical", "exp-2", "ref-1", "digest_mismatch")]
    assert result.alerts["release_record_ref"].to_list() == ["rel-exp-1", "rel-exp-1", "rel-exp-1", "rel-exp-2"]


@pytest.mark.parametrize("state", ["incomplete", "failed", "superseded"])
def test_only_verified_exports_are_checked(state):
    result = health(exports=[export(state=state)])
    assert result.exports.height == 0 and result.alerts.height == 0 and result.unchecked_references == 1


def test_every_check_has_a_severity_and_a_message_and_one_level():
    assert set(CHECK_SEVERITY) == set(CHECK_MESSAGES) == set(CHECKS)
    levels = (REFERENCE_CHECKS, EXPORT_CHECKS, ORPHAN_CHECKS)
    assert sum(len(level) for level in levels) == len(CHECKS) == len(set(CHECKS))


def test_buckets_set_their_alert_rows_aside_in_files_that_go_when_done(tmp_path, monkeypatch):
    """docs/archive-health.md#memory: with several buckets each bucket's alert rows wait in a file under
    spill_directory; the answer is the one-bucket answer, and no file is left."""
    refs = [reference(f"ref-{n}", f"exp-{n % 3}", lock_mode=("none", "governance", "compliance")[n % 3],
                      digest=(DIGEST_A, DIGEST_B)[n % 2]) for n in range(12)]
    args = (frame("exports", [export(f"exp-{n}") for n in range(4)]), frame("archives", refs),
            frame("custody_checks", [check(f"ref-{n}") for n in range(0, 12, 2)]), AS_OF, Policy())
    one = archive_health(*args)
    spilled = tmp_path / "spill"
    spilled.mkdir()
    files_seen = []  # by each bucket as it starts: the files of the buckets before it
    reference_part = archive_health_module._reference_part
    monkeypatch.setattr(archive_health_module, "_reference_part", lambda *a: (
        files_seen.append(sorted(p.name for p in spilled.rglob("*.arrow"))), reference_part(*a))[1])
    bucketed = archive_health(*args, reference_buckets=4, spill_directory=spilled)
    assert files_seen == [[], ["bucket-0.arrow"], ["bucket-0.arrow", "bucket-1.arrow"],
                          ["bucket-0.arrow", "bucket-1.arrow", "bucket-2.arrow"]]
    assert one.alerts.height > 10
    assert bucketed.alerts.equals(one.alerts) and bucketed.exports.equals(one.exports)
    assert list(spilled.iterdir()) == []


def test_checks_of_one_reference_and_severity_go_in_code_point_order():
    """object_missing is listed before digest_mismatch in the checks' table; the alerts sort by name."""
    result = health(references=[reference(digest=DIGEST_B)], checks=[check(present=False)])
    assert result.alerts.select("severity", "check").rows() == [
        ("critical", "digest_mismatch"), ("critical", "object_missing")]
