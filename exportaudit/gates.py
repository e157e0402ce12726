"""The run's gates (docs/inputs.md#bad-input-and-quarantine input-quality gate, docs/outputs.md#command-line --fail-on): any failed gate makes
the run exit 3, after everything has been written."""

from __future__ import annotations

from exportaudit.ingest import FileAccount, rows_quarantined, rows_read
from exportaudit.policy import Policy
from exportaudit.vocabulary import EXIT_GATE, EXIT_OK, GATE_FAILED, NEVER, SEVERITIES, SUCCEEDED

# --fail-on level -> the severities that fail the run: that level and every worse one.
SEVERITY_RANK = {NEVER: (), **{level: tuple(reversed(SEVERITIES[:n + 1])) for n, level in enumerate(SEVERITIES)}}


def quarantine_ratio(accounts: list[FileAccount]) -> float:
    """Rows quarantined / rows read by this run's ingest; 0 when nothing was read."""
    read = rows_read(accounts)
    return rows_quarantined(accounts) / read if read else 0.0


def gates(policy: Policy, fail_on: str, quarantine_ratio: float, health_summary: dict) -> list[str]:
    """Gates that failed (docs/inputs.md#bad-input-and-quarantine quality gate, docs/outputs.md#command-line --fail-on); any makes the run exit 3."""
    failed = []
    if quarantine_ratio > policy.max_quarantine_ratio:
        failed.append(f"quarantine ratio {quarantine_ratio:.4f} > max_quarantine_ratio {policy.max_quarantine_ratio}")
    severities = SEVERITY_RANK[fail_on]
    if severities:
        count = sum(health_summary[f"{s}_alerts"] for s in severities)
        if count:
            failed.append(f"--fail-on {fail_on}: {count} alert(s) of severity {' or '.join(severities)}")
    return failed


def run_status(gates_failed: list[str]) -> str:
    return GATE_FAILED if gates_failed else SUCCEEDED


def exit_code(gates_failed: list[str]) -> int:
    return EXIT_GATE if gates_failed else EXIT_OK
