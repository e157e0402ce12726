"""Prefect artifacts with fixed keys, so the Prefect UI keeps the history of runs."""

from __future__ import annotations

import json

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from exportaudit.evidence import records_json

ARTIFACT_ROWS = 500  # Prefect's UI is for a glance; the full lists are in the evidence JSON


def publish_prefect_artifacts(plan_doc: dict, health_doc: dict, values: dict) -> None:
    summary = "\n".join(f"- **{name}**: {value}" for name, value in values.items())
    create_markdown_artifact(
        key="exportaudit-summary",
        markdown=f"# exportaudit run {plan_doc['run_id']}\n\nas_of {plan_doc['as_of']}\n\n{summary}\n",
        description="Headline metrics of the nightly run",
    )
    plan_columns = ["decision", "reason_code", "export_id", "destination", "next_attempt_at"]
    create_table_artifact(
        key="exportaudit-retry-plan",
        table=json.loads(records_json(plan_doc.records["decisions"].head(ARTIFACT_ROWS).select(plan_columns))),
        description="Delivery retry plan (first rows)",
    )
    alert_columns = ["severity", "check", "export_id", "reference_id", "alert_id"]
    create_table_artifact(
        key="exportaudit-archive-alerts",
        table=json.loads(records_json(health_doc.records["alerts"].head(ARTIFACT_ROWS).select(alert_columns))),
        description="Archive health alerts (first rows)",
    )
