"""Run metrics (docs/outputs.md#metrics): one flat mapping, rendered as JSON and as Prometheus text."""

from __future__ import annotations

import math

import polars as pl

from exportaudit.vocabulary import CRITICAL

PREFIX = "exportaudit_"

METRICS: dict[str, str] = {
    "retry_plan_count": "Retry plans written by this run (1 per run).",
    "retryable_deliveries": "Deliveries safe to retry now (decision retry).",
    "waiting_deliveries": "Deliveries safe to retry later (decision wait).",
    "held_deliveries": "Deliveries a person must decide on (decision hold).",
    "suppressed_deliveries": "Deliveries never to retry automatically (decision suppress).",
    "recovered_deliveries": "Deliveries that failed and were later (or earlier) delivered.",
    "archive_health_report_count": "Archive health reports written by this run (1 per run).",
    "archive_health_alert_count": "Archive health alerts, orphan alerts included.",
    "archive_health_critical_alert_count": "Critical archive health alerts.",
    "archive_health_warning_alert_count": "Warning archive health alerts.",
    "verified_exports": "Exports whose current state is verified (checked exports).",
    "exports_missing_reference": "Checked exports without any archive reference.",
    "exports_unrepresented": "Checked exports without an intact archive reference.",
    "quarantined_rows": "Rows quarantined by this run's ingest.",
    "run_duration_seconds": "Wall time of the run, in seconds.",
    # docs/executions-and-acknowledgements.md#metrics-warehouse-report-and-api
    "nonconforming_retry_executions": "Retry worker executions whose verdict is not conforming.",
    "retries_not_executed": "Retry records of the previous plan not executed within execution_grace_minutes.",
    "unacknowledged_critical_alerts": "Critical archive health alerts whose ack_status is not acknowledged.",
    "overdue_alerts": "Critical alerts unacknowledged for ack_sla_hours or more since first seen.",
}
FOLLOW_UP_METRICS = ("nonconforming_retry_executions", "retries_not_executed", "unacknowledged_critical_alerts",
                     "overdue_alerts")
# History totals, from the warehouse's runs table (docs/outputs.md#metrics): plans and reports ever written.
HISTORY_METRICS: dict[str, str] = {
    "retry_plans_total": "Retry plans ever written (runs recorded in the warehouse).",
    "archive_health_reports_total": "Archive health reports ever written (runs recorded in the warehouse).",
}


def follow_up_metrics(executions_doc, acknowledgements_doc) -> dict:
    """The four metrics of docs/executions-and-acknowledgements.md, from the two documents."""
    verdicts = executions_doc["summary"]["verdicts"]
    alerts = acknowledgements_doc.records["alerts"]
    unacknowledged_critical = alerts.filter((pl.col("severity") == CRITICAL) & (pl.col("ack_status") != "acknowledged"))
    return {
        "nonconforming_retry_executions": sum(count for verdict, count in verdicts.items() if verdict != "conforming"),
        "retries_not_executed": executions_doc["summary"]["retry_not_executed"],
        "unacknowledged_critical_alerts": unacknowledged_critical.height,
        "overdue_alerts": acknowledgements_doc["summary"]["overdue"],
    }


def run_metrics(plan_summary: dict, health_summary: dict, quarantined_rows: int, duration_seconds: float,
                executions_doc=None, acknowledgements_doc=None) -> dict:
    """The run's metrics; the four follow-up metrics when both follow-up documents are given."""
    follow_ups = {} if executions_doc is None or acknowledgements_doc is None else follow_up_metrics(
        executions_doc, acknowledgements_doc)
    return {
        "retry_plan_count": 1,
        "retryable_deliveries": plan_summary["retryable_deliveries"],
        "waiting_deliveries": plan_summary["waiting_deliveries"],
        "held_deliveries": plan_summary["held_deliveries"],
        "suppressed_deliveries": plan_summary["suppressed_deliveries"],
        "recovered_deliveries": plan_summary["recovered_deliveries"],
        "archive_health_report_count": 1,
        "archive_health_alert_count": health_summary["archive_health_alert_count"],
        "archive_health_critical_alert_count": health_summary["critical_alerts"],
        "archive_health_warning_alert_count": health_summary["warning_alerts"],
        "verified_exports": health_summary["verified_exports"],
        "exports_missing_reference": health_summary["exports_missing_reference"],
        "exports_unrepresented": health_summary["exports_unrepresented"],
        "quarantined_rows": quarantined_rows,
        "run_duration_seconds": round(duration_seconds, 3),
        **follow_ups,
    }


def recorded_run_metrics(run: dict | None) -> dict:
    """A recorded run's metrics (a row of the runs table), as `run_metrics` gave them; {} for no run."""
    if run is None:
        return {}
    values = {name: run[name] for name in METRICS if run.get(name) is not None}
    return {**values, "retry_plan_count": 1, "archive_health_report_count": 1}


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN"
    return repr(value) if isinstance(value, float) else str(int(value))


def prometheus_text(values: dict, history: dict | None = None) -> str:
    """Prometheus text exposition (one gauge per metric, HELP and TYPE lines), for node_exporter."""
    lines = []
    for name, help_text in [*METRICS.items(), *HISTORY_METRICS.items()]:
        source = values if name in METRICS else (history or {})
        if name not in source:
            continue
        kind = "counter" if name.endswith("_total") else "gauge"
        lines += [f"# HELP {PREFIX}{name} {help_text}", f"# TYPE {PREFIX}{name} {kind}",
                  f"{PREFIX}{name} {_number(source[name])}"]
    return "\n".join(lines) + "\n"


def metrics_document(run_id: str, as_of: str, values: dict, history: dict) -> dict:
    return {"run_id": run_id, "as_of": as_of,
            "metrics": {PREFIX + name: value for name, value in {**values, **history}.items()}}


def latest_follow_up_metrics(run: dict | None) -> dict:
    """The latest recorded run's four follow-up metrics (the Evidence Console's Retry Executions and
    Alert Acknowledgements tiles); null when no run, or a run recorded before they existed."""
    return {name: (run or {}).get(name) for name in FOLLOW_UP_METRICS}
