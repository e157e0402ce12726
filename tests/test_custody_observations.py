"""docs/archive-health.md#custody-observations: latest check, latest non-null observed values, and the
weakest observation among checks that share an instant."""

from __future__ import annotations

from tests.frames import at, frame
from transforms.archive_health import latest_custody

AS_OF = at("2026-11-20T12:00:00Z")
T1, T2 = "2026-11-18T00:00:00Z", "2026-11-19T00:00:00Z"


def check(checked_at=T2, present=True, source=None, **observed):
    return dict(reference_id="ref-1", checked_at=checked_at, object_present=present, source=source, **observed)


def latest(*checks) -> dict:
    [row] = latest_custody(frame("custody_checks", list(checks)), AS_OF).collect().to_dicts()
    return row


def test_object_present_is_false_when_any_check_at_the_latest_instant_says_false():
    assert latest(check(present=True, source="manual"), check(present=False, source="s3_inventory"))[
        "object_present"] is False
    assert latest(check(present=True, source="a"), check(present=True, source="b"))["object_present"] is True
    # an earlier "missing" does not count against a later "present"
    assert latest(check(T1, present=False), check(T2, present=True))["object_present"] is True


def test_each_observed_field_takes_the_weakest_value_at_its_latest_non_null_instant():
    row = latest(
        check(T2, source="a", observed_lock_mode="compliance", observed_legal_hold=True,
              observed_retain_until="2031-01-01T00:00:00Z", observed_digest="sha256:" + "b" * 64),
        check(T2, source="b", observed_lock_mode="governance", observed_legal_hold=False,
              observed_retain_until="2030-01-01T00:00:00Z", observed_digest="sha256:" + "a" * 64),
        check(T2, source="c"),  # nulls are not values: they never win
    )
    assert row["observed_lock_mode"] == "governance"
    assert row["observed_legal_hold"] is False
    assert row["observed_retain_until"] == at("2030-01-01T00:00:00Z")
    assert row["observed_digest"] == "sha256:" + "a" * 64
    assert row["latest_checked_at"] == at(T2)


def test_lock_mode_none_is_weakest_and_an_older_instant_does_not_take_part():
    row = latest(check(T1, source="a", observed_lock_mode="none"),
                 check(T2, source="b", observed_lock_mode="compliance"),
                 check(T2, source="c", observed_lock_mode="governance"))
    assert row["observed_lock_mode"] == "governance"  # T1's "none" is older: not compared
    assert latest(check(T2, source="a", observed_lock_mode="none"),
                  check(T2, source="b", observed_lock_mode="compliance"))["observed_lock_mode"] == "none"


def test_latest_non_null_per_field_even_when_the_latest_check_lacks_it():
    row = latest(check(T1, observed_lock_mode="compliance", observed_digest="sha256:" + "c" * 64),
                 check(T2, present=False, observed_digest="sha256:" + "d" * 64))
    assert (row["object_present"], row["observed_lock_mode"], row["observed_digest"]) == (
        False, "compliance", "sha256:" + "d" * 64)


def test_checks_after_as_of_are_ignored():
    row = latest(check(T2, observed_lock_mode="compliance"),
                 check("2026-11-21T00:00:00Z", present=False, observed_lock_mode="none"))
    assert (row["object_present"], row["observed_lock_mode"]) == (True, "compliance")
    assert row["latest_checked_at"] == at(T2)
