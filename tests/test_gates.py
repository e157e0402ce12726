"""SPEC 1.5 and 8: the gates compare strictly; --fail-on counts the named severity or worse."""

import pytest

from exportaudit.gates import gates
from exportaudit.policy import Policy

SUMMARY = {"critical_alerts": 0, "warning_alerts": 0}


@pytest.mark.parametrize(("ratio", "fails"), [(0.0, False), (0.05, False), (0.0500001, True), (1.0, True)])
def test_quarantine_ratio_gate_is_strict(ratio, fails):
    assert bool(gates(Policy(), "never", ratio, SUMMARY)) is fails


@pytest.mark.parametrize(("fail_on", "critical", "warning", "fails"), [
    ("never", 5, 5, False), ("critical", 0, 5, False), ("critical", 1, 0, True),
    ("warning", 0, 1, True), ("warning", 1, 0, True), ("warning", 0, 0, False)])
def test_fail_on(fail_on, critical, warning, fails):
    summary = {"critical_alerts": critical, "warning_alerts": warning}
    assert bool(gates(Policy(), fail_on, 0.0, summary)) is fails


def test_a_ratio_of_one_passes_when_the_policy_allows_everything():
    assert gates(Policy(max_quarantine_ratio=1), "never", 1.0, SUMMARY) == []
