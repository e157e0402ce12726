"""The run's gates (docs/inputs.md#bad-input-and-quarantine input-quality gate, docs/outputs.md#command-line --fail-on): any failed gate makes
the run exit 3, after everything has been written."""

from __future__ import annotations

from exportaudit.ingest import FileAccount, rows_quarantined, rows_read
from exportaudit.policy import Policy
from exportaudit.vocabulary import EXIT_GATE, EXIT_OK, GATE_FAILED, NEVER, SEVERITIES, SUCCEEDED, WARNING
from transforms.retry_executions import NOT_EXECUTED_SEVERITY, VERDICT_SEVERITY

# --fail-on level -> the severities that fail the run: that level and every worse one.
SEVERITY_RANK = {NEVER: (), **{level: tuple(reversed(SEVERITIES[:n + 1])) for n, level in enumerate(SEVERITIES)}}


def quarantine_ratio(accounts: list[FileAccount]) -> float:
    """Rows quarantined / rows read by this run's ingest; 0 when nothing was read."""
    read = rows_read(accounts)
    return rows_quarantined(accounts) / read if read else 0.0


def execution_findings(executions_summary: dict, severities: tuple[str, ...]) -> int:
    """Verdicts (docs/executions-and-acknowledgements.md#verdicts-in-order) and retry_not_executed findings of
    these severities, from the retry-executions summary."""
    verdicts = sum(count for verdict, count in executions_summary["verdicts"].items()
                   if VERDICT_SEVERITY[verdict] in severities)
    not_executed = executions_summary["retry_not_executed"] if NOT_EXECUTED_SEVERITY in severities else 0
    return verdicts + not_executed


def gates(policy: Policy, fail_on: str, quarantine_ratio: float, health_summary: dict,
          executions_summary: dict | None = None, acknowledgements_summary: dict | None = None) -> list[str]:
    """Gates that failed (docs/inputs.md#bad-input-and-quarantine quality gate, docs/outputs.md#command-line --fail-on); any makes the run exit 3.
    --fail-on also counts the retry execution findings of its severities and, at warning, overdue alerts
    (docs/executions-and-acknowledgements.md#gates)."""
    failed = []
    if quarantine_ratio > policy.max_quarantine_ratio:
        failed.append(f"quarantine ratio {quarantine_ratio:.4f} > max_quarantine_ratio {policy.max_quarantine_ratio}")
    severities = SEVERITY_RANK[fail_on]
    if severities:
        count = sum(health_summary[f"{s}_alerts"] for s in severities)
        if count:
            failed.append(f"--fail-on {fail_on}: {count} alert(s) of severity {' or '.join(severities)}")
        findings = execution_findings(executions_summary, severities) if executions_summary else 0
        if findings:
            failed.append(f"--fail-on {fail_on}: {findings} retry execution finding(s) of severity "
                          f"{' or '.join(severities)}")
        overdue = acknowledgements_summary["overdue"] if acknowledgements_summary and WARNING in severities else 0
        if overdue:
            failed.append(f"--fail-on {fail_on}: {overdue} overdue alert(s)")
    return failed


def run_status(gates_failed: list[str]) -> str:
    return GATE_FAILED if gates_failed else SUCCEEDED


def exit_code(gates_failed: list[str]) -> int:
    return EXIT_GATE if gates_failed else EXIT_OK
