"""The two answers the HTTP API serves (retry plan, archive health), computed from the
warehouse's accepted records by exportaudit/evaluation.py, the nightly run's own path."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from exportaudit import evaluation, evidence
from exportaudit.policy import Policy
from exportaudit.vocabulary import GENERATED_BY_API


def _answer(con, answer: str, as_of: datetime, policy: Policy, generated_by: str) -> evidence.Evidence:
    context = evaluation.context(con, run_id=f"api-{uuid.uuid4().hex[:12]}", as_of=as_of,
                                 generated_at=datetime.now(timezone.utc), generated_by=generated_by, inputs=[])
    answers = (answer,)
    return evaluation.evaluate(evaluation.accepted(con, answers), as_of, policy, context, answers).documents[answer]


def retry_plan_answer(con, as_of: datetime, policy: Policy, generated_by: str = GENERATED_BY_API) -> evidence.Evidence:
    return _answer(con, evaluation.RETRY_PLAN, as_of, policy, generated_by)


def archive_health_answer(con, as_of: datetime, policy: Policy,
                          generated_by: str = GENERATED_BY_API) -> evidence.Evidence:
    return _answer(con, evaluation.ARCHIVE_HEALTH, as_of, policy, generated_by)


def metadata(document: evidence.Evidence) -> dict:
    return {"metadata_kind": document["metadata_kind"], "evidence_id": document["evidence_id"],
            "as_of": document["as_of"], "counts": document["summary"]}


def response_bytes(name: str, document: evidence.Evidence) -> bytes:
    """`{"<name>": <document>, "metadata": {...}}` as JSON, the document spliced in as its canonical bytes."""
    head = evidence.canonical_json({"metadata": metadata(document)})  # b'{"metadata":{...}}'
    return head[:-1] + b',"' + name.encode() + b'":' + document.canonical_bytes() + b"}"
