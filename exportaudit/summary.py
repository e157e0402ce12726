"""The one-screen summary that ends a run (docs/outputs.md#command-line)."""

from __future__ import annotations

from pathlib import Path


def summary_lines(result, out_dir: Path) -> list[str]:
    plan, health = result.plan_summary, result.health_summary
    lines = [
        f"exportaudit run {result.run_id}: {result.status}",
        f"  retry plan     {plan['failed_deliveries']} failed deliveries: {plan['retryable_deliveries']} retry, "
        f"{plan['waiting_deliveries']} wait, {plan['held_deliveries']} hold, {plan['suppressed_deliveries']} suppress "
        f"({plan['recovered_deliveries']} recovered)",
        f"  archive health {health['verified_exports']} verified exports, {health['exports_unrepresented']} "
        f"unrepresented; alerts: {health['critical_alerts']} critical, {health['warning_alerts']} warning",
    ]
    metrics = getattr(result, "metrics", None) or {}
    if "nonconforming_retry_executions" in metrics:  # docs/executions-and-acknowledgements.md
        lines.append(f"  follow-ups     {metrics['nonconforming_retry_executions']} nonconforming retry executions, "
                     f"{metrics['retries_not_executed']} retries not executed; "
                     f"{metrics['unacknowledged_critical_alerts']} unacknowledged critical alerts, "
                     f"{metrics['overdue_alerts']} overdue")
    lines.append("  inputs")
    for item in result.inputs:
        state = "skipped (already ingested)" if item["skipped"] else (
            f"read {item['rows_read']}, accepted {item['rows_accepted']}, quarantined {item['rows_quarantined']}, "
            f"duplicate {item['rows_duplicate']}")
        lines.append(f"    {item['log']:<22} {item['name']}: {state}")
    lines.append(f"  quarantine ratio {result.quarantine_ratio:.4f}")
    for gate in result.gates_failed:
        lines.append(f"  GATE FAILED: {gate}")
    lines.append(f"  report: {(out_dir / 'latest' / 'report.html')}")
    return lines


def print_summary(result, out_dir: Path) -> None:
    print("\n".join(summary_lines(result, out_dir)), flush=True)
