"""Run metrics (docs/outputs.md#metrics): one flat mapping, rendered as JSON and as Prometheus text."""

from __future__ import annotations

import math

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
}
# History totals, from the warehouse's runs table (docs/outputs.md#metrics): plans and reports ever written.
HISTORY_METRICS: dict[str, str] = {
    "retry_plans_total": "Retry plans ever written (runs recorded in the warehouse).",
    "archive_health_reports_total": "Archive health reports ever written (runs recorded in the warehouse).",
}


def run_metrics(plan_summary: dict, health_summary: dict, quarantined_rows: int, duration_seconds: float) -> dict:
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
