"""docs/ledger.md attestation: an unsigned in-toto Statement v1 over the run's artifacts."""

import hashlib
import json
import re
from pathlib import Path

import pytest

from exportaudit.attestation import (ATTESTATION_FILE, PREDICATE_TYPE, STATEMENT_TYPE, attestation_json,
                                     attestation_statement)
from exportaudit.ledger import GENESIS, LEDGER_FILE, artifact_digests, ledger_entry

SCHEMA = json.loads((Path(__file__).parent / "data" / "intoto_statement_v1.schema.json").read_text())
POLICY = {"retry": {"max_attempts": 5, "backoff_minutes": [5, 30, 120]},
          "health": {"stale_after_days": 30, "severity": {"digest_mismatch": "critical"}}}
EVIDENCE_IDS = {"retry-plan.json": "1" * 64, "archive-health.json": "2" * 64}
FILES = {"retry-plan.json": b'{"evidence_id":"1"}', "archive-health.json": b'{"evidence_id":"2"}',
         "metrics.json": b"{}", "metrics.prom": b"exportaudit_retry_plan_count 1\n", "report.md": b"# Report\n",
         "report.html": b"<!doctype html>", LEDGER_FILE: b"{}", ATTESTATION_FILE: b"{}"}
DATASET = {"files": 3, "sha256": hashlib.sha256(b"x").hexdigest()}


def run_entry():
    return ledger_entry(4, "20261120T060000Z-0badf00d", "2026-11-20T06:00:00Z", "2026-11-20T06:00:00.250000Z",
                        DATASET["sha256"], artifact_digests(FILES), GENESIS.replace("0", "e"))


def statement():
    return attestation_statement(run_entry(), POLICY, DATASET, EVIDENCE_IDS)


def schema_errors(document) -> list[str]:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    return [error.message for error in validator.iter_errors(document)]


def test_the_schema_itself_is_valid_and_strict_enough():
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    good = statement()
    assert schema_errors(good) == []
    assert schema_errors({**good, "_type": "https://in-toto.io/Statement/v0.1"})
    assert schema_errors({**good, "subject": []})
    assert schema_errors({**good, "subject": [{"name": "report.md"}]})  # every subject needs a digest
    assert schema_errors({**good, "subject": [{"name": "x", "digest": {"sha256": "XYZ"}}]})
    assert schema_errors({**good, "predicateType": "not a uri"})
    assert schema_errors({**good, "predicate": []})


def test_statement_is_an_in_toto_statement_v1():
    document = statement()
    assert schema_errors(document) == []
    # and it survives its own bytes
    assert schema_errors(json.loads(attestation_json(document))) == []
    assert document["_type"] == STATEMENT_TYPE == "https://in-toto.io/Statement/v1"
    assert document["predicateType"] == PREDICATE_TYPE == "https://exportaudit.dev/evidence-run/v1"


def test_one_subject_per_artifact_sorted_by_name_with_its_sha256():
    entry = run_entry()
    subjects = statement()["subject"]
    assert [s["name"] for s in subjects] == sorted(n for n in FILES if n not in (LEDGER_FILE, ATTESTATION_FILE))
    assert {s["name"]: s["digest"] for s in subjects} == {
        name: {"sha256": hashlib.sha256(data).hexdigest()} for name, data in FILES.items()
        if name not in (LEDGER_FILE, ATTESTATION_FILE)}
    assert {s["name"]: s["digest"]["sha256"] for s in subjects} == entry["artifacts"]


def test_predicate_names_the_run_and_chains_to_the_ledger():
    entry = run_entry()
    assert statement()["predicate"] == {
        "run_id": entry["run_id"], "as_of": "2026-11-20T06:00:00Z", "policy": POLICY, "dataset": DATASET,
        "evidence_ids": EVIDENCE_IDS, "ledger_entry_hash": entry["entry_hash"]}


def test_statement_holds_no_key_material():
    document = statement()
    assert set(document) == {"_type", "subject", "predicateType", "predicate"}  # a Statement, not a DSSE envelope
    keyish = re.compile(r"sig|key|secret|private|public|cert|token|password|credential|payload", re.IGNORECASE)

    def walk(value, path="$"):
        if isinstance(value, dict):
            for name, item in value.items():
                assert not keyish.search(name), f"{path}.{name}"
                walk(item, f"{path}.{name}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")
        elif isinstance(value, str):
            assert "BEGIN" not in value and "PRIVATE" not in value, path
            assert not re.fullmatch(r"[A-Za-z0-9+/=]{80,}", value), path  # no base64 blob (a key or signature)

    walk(document)


def test_statement_bytes_are_canonical_json():
    document = statement()
    assert attestation_json(document) == json.dumps(document, sort_keys=True, separators=(",", ":"),
                                                    ensure_ascii=False).encode("utf-8")


def test_statement_refuses_an_inconsistent_entry():
    entry = run_entry()
    with pytest.raises(ValueError, match="dataset"):
        attestation_statement(entry, POLICY, {"files": 3, "sha256": "f" * 64}, EVIDENCE_IDS)
    with pytest.raises(ValueError, match="entry_hash"):
        attestation_statement({**entry, "run_id": "other"}, POLICY, DATASET, EVIDENCE_IDS)
