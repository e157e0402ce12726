"""The run's gates (SPEC 1.5 input-quality gate, SPEC 8 --fail-on): any failed gate makes
the run exit 3, after everything has been written."""

from __future__ import annotations

from exportaudit.policy import Policy

SEVERITY_RANK = {"never": None, "warning": ("warning", "critical"), "critical": ("critical",)}


def gates(policy: Policy, fail_on: str, quarantine_ratio: float, health_summary: dict) -> list[str]:
    """Gates that failed (SPEC 1.5 quality gate, SPEC 8 --fail-on); any makes the run exit 3."""
    failed = []
    if quarantine_ratio > policy.max_quarantine_ratio:
        failed.append(f"quarantine ratio {quarantine_ratio:.4f} > max_quarantine_ratio {policy.max_quarantine_ratio}")
    severities = SEVERITY_RANK[fail_on]
    if severities:
        count = sum(health_summary[f"{s}_alerts"] for s in severities)
        if count:
            failed.append(f"--fail-on {fail_on}: {count} alert(s) of severity {' or '.join(severities)}")
    return failed
