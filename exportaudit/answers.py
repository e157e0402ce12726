"""The two answers (retry plan, archive health) computed from the warehouse's accepted records,
as evidence documents: what the HTTP API serves, with the same transforms as the nightly run."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from exportaudit import evidence, warehouse
from exportaudit.history import ingested_sha256s
from exportaudit.policy import Policy
from schemas import archive_alerts, archive_health, retry_plan
from transforms.archive_health import archive_health as archive_health_transform
from transforms.retry_plan import retry_plan as retry_plan_transform


def _context(con, as_of: datetime, generated_by: str) -> dict:
    return dict(run_id=f"api-{uuid.uuid4().hex[:12]}", as_of=as_of, generated_at=datetime.now(timezone.utc),
                generated_by=generated_by, dataset=evidence.dataset_identity(ingested_sha256s(con)), inputs=[])


def retry_plan_answer(con, as_of: datetime, policy: Policy, generated_by: str = "exportaudit api") -> evidence.Evidence:
    plan = retry_plan_transform(warehouse.accepted_records(con, "deliveries"),
                                warehouse.accepted_records(con, "exports"), as_of, policy)
    retry_plan.schema.validate(plan.records)
    return evidence.retry_plan_document(plan, policy=policy, **_context(con, as_of, generated_by))


def archive_health_answer(con, as_of: datetime, policy: Policy,
                          generated_by: str = "exportaudit api") -> evidence.Evidence:
    health = archive_health_transform(warehouse.accepted_records(con, "exports"),
                                      warehouse.accepted_records(con, "archives"),
                                      warehouse.accepted_records(con, "custody_checks"), as_of, policy)
    archive_health.schema.validate(health.exports)
    archive_alerts.schema.validate(health.alerts)
    return evidence.archive_health_document(health, policy=policy, **_context(con, as_of, generated_by))


def metadata(document: evidence.Evidence) -> dict:
    return {"metadata_kind": document["metadata_kind"], "evidence_id": document["evidence_id"],
            "as_of": document["as_of"], "counts": document["summary"]}


def response_bytes(name: str, document: evidence.Evidence) -> bytes:
    """`{"<name>": <document>, "metadata": {...}}` as JSON, the document spliced in as its canonical bytes."""
    head = evidence.canonical_json({"metadata": metadata(document)})  # b'{"metadata":{...}}'
    return head[:-1] + b',"' + name.encode() + b'":' + document.canonical_bytes() + b"}"
