"""The files of a run (docs/outputs.md#run-directory), rendered by pure functions: the evidence
documents (retry plan, archive health and, when computed, retry executions and alert
acknowledgements — docs/executions-and-acknowledgements.md#outputs), the metrics as JSON and as
Prometheus text, and the report as Markdown and HTML. exportaudit/artifacts.py writes them."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from exportaudit import evidence, report
from exportaudit.artifacts import Handover, RunDirectoryWriter
from exportaudit.history import RunTotals, compressed_pieces
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
              ledger: dict | None = None) -> dict[str, bytes | evidence.Evidence]:
    """File name -> content, in the order they are written: bytes, or the evidence document itself
    (RunDirectoryWriter writes its canonical JSON). ledger: the seq and previous_hash of the run's
    ledger entry, shown by the report (docs/ledger.md#the-report-and-the-chain)."""
    documents = dict(zip(DOCUMENT_FILES.values(), (plan_doc, health_doc, executions_doc, acknowledgements_doc)))
    return {
        **{name: document for name, document in documents.items() if document is not None},
        "metrics.json": evidence.canonical_json(
            metrics_document(plan_doc["run_id"], plan_doc["as_of"], values, totals.metrics())),
        "metrics.prom": prometheus_text(values, totals.metrics()).encode(),
        "report.md": report.render_markdown(plan_doc, health_doc, values, trend, executions_doc,
                                            acknowledgements_doc, ledger=ledger).encode(),
        "report.html": report.render_html(plan_doc, health_doc, values, trend, executions_doc,
                                          acknowledgements_doc, ledger=ledger).encode(),
    }


class DocumentStager:
    """The night's evidence documents, each streamed while it is encoded (evaluation.evaluate's
    write_document) to its run-directory file and, for the answers kept in evidence_documents, to
    a compressor, each in its own thread (docs/outputs.md#memory): the night never holds a
    document's whole text (the archive health's is about a gigabyte at 1M exports)."""

    def __init__(self, run_directory: RunDirectoryWriter, stored_answers: tuple[str, ...]):
        self._run_directory = run_directory
        self._stored_answers = stored_answers
        self._bodies: dict[str, Handover] = {}

    def __call__(self, answer: str, build: Callable[[object], evidence.Evidence]) -> evidence.Evidence:
        """build(sink) -> the document, its text written to the sink as it is encoded."""
        name = DOCUMENT_FILES[answer]
        streams = [self._run_directory.open_stream(name)]
        if answer in self._stored_answers:
            compressing = ThreadPoolExecutor(1, thread_name_prefix="compress")
            streams.append(Handover(compressing, compressed_pieces))
            compressing.shutdown(wait=False)  # its thread ends with the document's body
        try:
            document = build(_Tee(streams))
            for stream in streams:
                stream.close()
        except BaseException:
            for stream in streams:
                stream.abort()
            raise
        self._run_directory.staged(name, document, streams[0], document.sha256)
        if len(streams) > 1:
            self._bodies[answer] = streams[1]
        return document

    @property
    def bodies(self) -> dict[str, Callable[[], tuple[int, bytes]]]:
        """Answer -> its compressed body (history.record_run's bodies)."""
        return {answer: stream.result.result for answer, stream in self._bodies.items()}


class _Tee(NamedTuple):
    streams: list

    def write(self, piece) -> None:
        for stream in self.streams:
            stream.write(piece)
