"""The six files of a run (docs/outputs.md), rendered by pure functions: the two evidence
documents, the metrics as JSON and as Prometheus text, and the report as Markdown and HTML.
exportaudit/artifacts.py writes them."""

from __future__ import annotations

from exportaudit import evidence, report
from exportaudit.history import RunTotals
from exportaudit.metrics import metrics_document, prometheus_text


def run_files(plan_doc: evidence.Evidence, health_doc: evidence.Evidence, values: dict, totals: RunTotals,
              trend: list[dict]) -> dict[str, bytes]:
    """File name -> bytes, in the order they are written."""
    return {
        "retry-plan.json": plan_doc.canonical_bytes(),
        "archive-health.json": health_doc.canonical_bytes(),
        "metrics.json": evidence.canonical_json(
            metrics_document(plan_doc["run_id"], plan_doc["as_of"], values, totals.metrics())),
        "metrics.prom": prometheus_text(values, totals.metrics()).encode(),
        "report.md": report.render_markdown(plan_doc, health_doc, values, trend).encode(),
        "report.html": report.render_html(plan_doc, health_doc, values, trend).encode(),
    }
