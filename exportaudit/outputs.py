"""The files of a run (docs/outputs.md#run-directory), rendered by pure functions: the evidence
documents (retry plan, archive health and, when computed, retry executions and alert
acknowledgements — docs/executions-and-acknowledgements.md#outputs), the metrics as JSON and as
Prometheus text, and the report as Markdown and HTML. exportaudit/artifacts.py writes them."""

from __future__ import annotations

from exportaudit import evidence, report
from exportaudit.history import RunTotals
from exportaudit.metrics import metrics_document, prometheus_text

# The run-directory file of each evidence document, by answer (exportaudit/evaluation.py; the runs
# table holds its evidence_id as `<answer>_evidence_id`).
DOCUMENT_FILES = {"retry_plan": "retry-plan.json", "archive_health": "archive-health.json",
                  "retry_executions": "retry-executions.json", "alert_acknowledgements": "alert-acknowledgements.json"}


def evidence_ids(documents: dict[str, evidence.Evidence]) -> dict[str, str]:
    """File name -> evidence_id of every evidence document of a run (answer -> document), as the
    attestation names them (docs/ledger.md#attestation)."""
    return {DOCUMENT_FILES[answer]: document["evidence_id"] for answer, document in documents.items()}


def run_files(plan_doc: evidence.Evidence, health_doc: evidence.Evidence, values: dict, totals: RunTotals,
              trend: list[dict], executions_doc: evidence.Evidence | None = None,
              acknowledgements_doc: evidence.Evidence | None = None,
              ledger: dict | None = None) -> dict[str, bytes]:
    """File name -> bytes, in the order they are written. ledger: the seq and previous_hash of the
    run's ledger entry, shown by the report (docs/ledger.md#the-report-and-the-chain)."""
    documents = dict(zip(DOCUMENT_FILES.values(), (plan_doc, health_doc, executions_doc, acknowledgements_doc)))
    return {
        **{name: document.canonical_bytes() for name, document in documents.items() if document is not None},
        "metrics.json": evidence.canonical_json(
            metrics_document(plan_doc["run_id"], plan_doc["as_of"], values, totals.metrics())),
        "metrics.prom": prometheus_text(values, totals.metrics()).encode(),
        "report.md": report.render_markdown(plan_doc, health_doc, values, trend, executions_doc,
                                            acknowledgements_doc, ledger=ledger).encode(),
        "report.html": report.render_html(plan_doc, health_doc, values, trend, executions_doc,
                                          acknowledgements_doc, ledger=ledger).encode(),
    }
