"""The two answers the HTTP API serves (retry plan, archive health), computed from the
warehouse's accepted records by exportaudit/evaluation.py, the nightly run's own path — or,
when a recorded run evaluated the same as_of, policy and dataset, that run's stored document
(docs/outputs.md#http-api)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

from exportaudit import evaluation, evidence, history
from exportaudit.policy import Policy
from exportaudit.vocabulary import GENERATED_BY_API

POLICY_SECTIONS = {evaluation.RETRY_PLAN: "retry", evaluation.ARCHIVE_HEALTH: "health"}  # as evidence.py's documents

Document = evidence.Evidence | history.StoredDocument


def _answer(con, answer: str, as_of: datetime, policy: Policy, generated_by: str) -> evidence.Evidence:
    context = evaluation.context(con, run_id=f"api-{uuid.uuid4().hex[:12]}", as_of=as_of,
                                 generated_at=datetime.now(timezone.utc), generated_by=generated_by, inputs=[])
    answers = (answer,)
    return evaluation.evaluate(evaluation.accepted(con, answers, as_of), as_of, policy, context,
                               answers).documents[answer]


def retry_plan_answer(con, as_of: datetime, policy: Policy, generated_by: str = GENERATED_BY_API) -> evidence.Evidence:
    return _answer(con, evaluation.RETRY_PLAN, as_of, policy, generated_by)


def archive_health_answer(con, as_of: datetime, policy: Policy,
                          generated_by: str = GENERATED_BY_API) -> evidence.Evidence:
    return _answer(con, evaluation.ARCHIVE_HEALTH, as_of, policy, generated_by)


def stored_answer(con, answer: str, as_of: datetime, policy: Policy) -> history.StoredDocument | None:
    """The document the latest recorded run wrote for this as_of, policy and the warehouse's
    current dataset; None when there is none (another as_of, policy, or files ingested since)."""
    dataset = evidence.dataset_identity(history.ingested_sha256s(con))
    return history.stored_document(con, answer, as_of, policy.section(POLICY_SECTIONS[answer]), dataset["sha256"])


def answer(con, answer: str, as_of: datetime, policy: Policy, generated_by: str | None = None) -> Document:
    """The API's answer. Without generated_by: a stored run's document when one matches, unchanged
    (its run_id, generated_at, generated_by and inputs are the run's), else computed. With
    generated_by: always computed, since the caller's value is part of the document's bytes. The
    follow-up answers (retry executions, alert acknowledgements) are always computed: they also
    depend on the recorded run history, which the stored-answer key does not name
    (docs/executions-and-acknowledgements.md#metrics-warehouse-report-and-api)."""
    if generated_by is None and answer in POLICY_SECTIONS:
        stored = stored_answer(con, answer, as_of, policy)
        if stored is not None:
            return stored
    return _answer(con, answer, as_of, policy, GENERATED_BY_API if generated_by is None else generated_by)


def metadata(document: Document) -> dict:
    return {"metadata_kind": document["metadata_kind"], "evidence_id": document["evidence_id"],
            "as_of": document["as_of"], "counts": document["summary"]}


def _head(name: str, document: Document) -> bytes:
    head = evidence.canonical_json({"metadata": metadata(document)})  # b'{"metadata":{...}}'
    return head[:-1] + b',"' + name.encode() + b'":'


def response_bytes(name: str, document: Document) -> bytes:
    """`{"<name>": <document>, "metadata": {...}}` as JSON, the document spliced in as its canonical bytes."""
    return b"".join((_head(name, document), document.canonical_bytes(), b"}"))


def response_stream(name: str, document: history.StoredDocument) -> tuple[int, Iterator[bytes]]:
    """`response_bytes` of a stored document as (length, chunks): decompressed piecewise, never whole."""
    head = _head(name, document)
    return len(head) + document.body_bytes + 1, itertools.chain((head,), document.chunks(), (b"}",))
