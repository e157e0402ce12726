"""The run attestation (docs/ledger.md): `attestation.intoto.json`, an unsigned in-toto Statement v1
over the run directory's artifacts. exportaudit holds no key: operators sign the statement with
their own tools (e.g. cosign attest-blob / a DSSE envelope), so nothing here is key material."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exportaudit.evidence import canonical_json
from exportaudit.ledger import ATTESTATION_FILE, entry_hash

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://exportaudit.dev/evidence-run/v1"

__all__ = ["ATTESTATION_FILE", "PREDICATE_TYPE", "STATEMENT_TYPE", "attestation_json", "attestation_statement"]


def attestation_statement(entry: Mapping[str, Any], policy: dict, dataset: dict, evidence_ids: dict) -> dict:
    """The Statement of a run: one subject per file of the ledger entry's `artifacts` (sorted by
    name, sha256 digest), and as predicate the run's id, as_of, policy, dataset, evidence ids
    (document file name -> evidence_id, e.g. {"retry-plan.json": ..., "archive-health.json": ...})
    and the ledger entry_hash that chains it."""
    if entry_hash(entry) != entry["entry_hash"]:
        raise ValueError(f"ledger entry seq {entry.get('seq')}: entry_hash does not recompute")
    if dataset.get("sha256") != entry["dataset_sha256"]:
        raise ValueError("dataset.sha256 differs from the ledger entry's dataset_sha256")
    if not entry["artifacts"]:
        raise ValueError("an in-toto Statement needs at least one subject: the entry lists no artifacts")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest}}
                    for name, digest in sorted(entry["artifacts"].items())],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "run_id": entry["run_id"],
            "as_of": entry["as_of"],
            "policy": policy,
            "dataset": dataset,
            "evidence_ids": dict(sorted(evidence_ids.items())),
            "ledger_entry_hash": entry["entry_hash"],
        },
    }


def attestation_json(statement: Mapping[str, Any]) -> bytes:
    """The bytes of `attestation.intoto.json`: the canonical JSON of the statement."""
    return canonical_json(dict(statement))
