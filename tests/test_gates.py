"""docs/inputs.md#bad-input-and-quarantine and docs/outputs.md#command-line: the gates compare strictly; --fail-on counts the named severity or worse."""

import pytest

from exportaudit.gates import SEVERITY_RANK, exit_code, gates, quarantine_ratio, run_status
from exportaudit.ingest import FileAccount
from exportaudit.policy import Policy
from exportaudit.vocabulary import FAIL_ON_LEVELS

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


def test_fail_on_levels_name_the_severity_or_worse():
    assert SEVERITY_RANK == {"never": (), "critical": ("critical",), "warning": ("warning", "critical")}
    assert set(SEVERITY_RANK) == set(FAIL_ON_LEVELS)


def test_quarantine_ratio_of_the_run_inputs():
    accounts = [FileAccount("exports", "a.jsonl", "s1", False, rows_read=8, rows_quarantined=1),
                FileAccount("deliveries", "b.csv", "s2", False, rows_read=2, rows_quarantined=1)]
    assert quarantine_ratio(accounts) == 0.2
    assert quarantine_ratio([FileAccount("exports", "a.jsonl", "s1", True)]) == 0.0  # nothing read: no ratio


def test_a_failed_gate_is_the_run_status_and_exit_code():
    assert (run_status([]), exit_code([])) == ("succeeded", 0)
    assert (run_status(["quarantine ratio"]), exit_code(["quarantine ratio"])) == ("gate_failed", 3)
