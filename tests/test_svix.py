"""docs/real-sources.md#svix-message-attempts: Svix message attempts read as delivery attempts."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from exportaudit.contract import DELIVERIES
from exportaudit.readers import UnreadableInput
from exportaudit.sources.svix import decode_attempts, find_attempt_files, load_attempt_file, read_attempts
from transforms.record_validation import checked_records


def attempt(**overrides) -> dict:
    """A MessageAttemptOut as Svix's list-attempts API returns it with with_msg=true."""
    base = {
        "id": "atmpt_1srOrx2ZWZBpBUvZwXKQmoEYga2", "msgId": "msg_1srOrx2ZWZBpBUvZwXKQmoEYga2",
        "endpointId": "ep_1srOrx2ZWZBpBUvZwXKQmoEYga2", "url": "https://hooks.example.com/grc?token=s3cret",
        "response": "{}", "responseStatusCode": 200, "responseDurationMs": 42, "status": 0, "statusText": "success",
        "triggerType": 0, "timestamp": "2025-02-22T16:07:35.514412223Z",
        "msg": {"eventId": "exp-001", "eventType": "export.delivered", "id": "msg_1", "payload": {},
                "timestamp": "2025-02-22T16:07:35Z"},
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def decode(tmp_path: Path, attempts: list[dict], name: str = "attempts.json") -> pl.DataFrame:
    path = tmp_path / name
    path.write_text(json.dumps({"data": attempts, "iterator": "atmpt_x", "prevIterator": None, "done": True}))
    return decode_attempts(load_attempt_file(path))


def one(tmp_path: Path, **overrides) -> dict:
    return decode(tmp_path, [attempt(**overrides)]).row(0, named=True)


def test_field_mapping(tmp_path):
    row = one(tmp_path)
    assert {f: row[f] for f in DELIVERIES.field_names} == {
        "attempt_id": "atmpt_1srOrx2ZWZBpBUvZwXKQmoEYga2", "export_id": "exp-001",
        "destination": "ep_1srOrx2ZWZBpBUvZwXKQmoEYga2", "connector_kind": "svix", "connector_visibility": None,
        "attempted_at": "2025-02-22T16:07:35.514412223Z", "outcome": "delivered", "http_status": "200",
        "error_code": None, "retry_after_seconds": None, "idempotency_key": "msg_1srOrx2ZWZBpBUvZwXKQmoEYga2",
        "endpoint": "https://hooks.example.com/grc?token=s3cret",  # redacted at ingest, like every endpoint
    }
    assert row["svix_reason_codes"] == [] and row["record_error"] is None
    assert json.loads(row["extra_fields"])["responseDurationMs"] == 42


@pytest.mark.parametrize("status, status_text, outcome", [
    (0, "success", "delivered"),
    (2, "fail", "failed"),
    (0, ..., "delivered"),  # older fixtures lack statusText: status decides
    (2, ..., "failed"),
    (2, None, "failed"),  # null statusText is absent
    (0, "canceled", None),  # canceled reported as 0 without expanded_statuses: statusText decides
    (2, "success", "delivered"),  # statusText decides when present
    (1, ..., None), (3, ..., None), (4, ..., None),
    (1, "pending", None), (3, "sending", None), (4, "canceled", None),
    (0, "SUCCESS", None),  # exact values only
])
def test_outcome_and_attempt_not_final(tmp_path, status, status_text, outcome):
    row = one(tmp_path, status=status, statusText=status_text)
    assert row["outcome"] == outcome
    assert row["svix_reason_codes"] == ([] if outcome else ["attempt_not_final"])


@pytest.mark.parametrize("code, response, http_status, error_code", [
    (200, "ok", "200", None),
    (404, "not found", "404", None),
    (100, "", "100", None),
    (599, "timed out", "599", None),  # an HTTP status: error_code null whatever the text
    (0, "request timed out", None, "timeout"),
    (0, "Error resolving name: hooks.example.com", None, "dns_failure"),
    (0, "DNS error: no record", None, "dns_failure"),
    (0, "error making request: connection refused", None, "connection_refused"),
    (0, "connection reset by peer", None, "connection_reset"),
    (0, "TLS handshake failed", None, "tls_handshake_failed"),
    (0, "invalid peer certificate: UnknownIssuer", None, "tls_handshake_failed"),
    (0, "error making request: broken pipe", None, "transport_error"),
    (0, "", None, "transport_error"),
    (0, None, None, "transport_error"),
    (0, "timed out while resolving name after reset", None, "timeout"),  # table order: first match wins
    (0, "Connection Refused after DNS lookup", None, "dns_failure"),
    (0, "tls: connection reset", None, "connection_reset"),
    (-1, "whatever", None, "transport_error"),
    (99, "", None, "transport_error"),
    (600, "", None, "transport_error"),
    ("200", "", None, "transport_error"),  # not an integer
    (..., "", None, "transport_error"),
])
def test_http_status_and_error_code(tmp_path, code, response, http_status, error_code):
    row = one(tmp_path, responseStatusCode=code, response=response, status=2, statusText="fail")
    assert (row["http_status"], row["error_code"]) == (http_status, error_code)


@pytest.mark.parametrize("msg, missing", [
    ({"eventId": "exp-9"}, False),
    (None, True),
    (..., True),
    ({"eventType": "x"}, True),
    ({"eventId": None}, True),
    ({"eventId": ""}, True),
])
def test_missing_event_id_is_missing_field(tmp_path, msg, missing):
    row = one(tmp_path, msg=msg)
    assert row["svix_reason_codes"] == (["missing_field"] if missing else [])
    assert row["svix_reason_details"] == (["missing_field:msg.eventId"] if missing else [])


def test_both_reasons_at_once(tmp_path):
    row = one(tmp_path, msg=None, status=1, statusText="pending")
    assert row["svix_reason_codes"] == ["missing_field", "attempt_not_final"]


def test_file_shapes_array_jsonl_and_directory_search(tmp_path):
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "array.json").write_text(json.dumps([attempt(id="x1"), attempt(id="x2")], indent=2))
    (tmp_path / "a" / "lines.ndjson").write_text(
        json.dumps(attempt(id="l1")) + "\n\n" + "{broken\n" + json.dumps([1]) + "\n"
        + json.dumps({"data": [attempt(id="p1"), attempt(id="p2")], "done": False, "iterator": "i"}) + "\n")
    (tmp_path / "a" / "page.jsonl").write_text(json.dumps({"data": [], "done": True}))
    (tmp_path / "notes.txt").write_text("ignored")
    files = find_attempt_files([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["a/b/array.json", "a/lines.ndjson", "a/page.jsonl"]
    decoded = {path.name: frame for path, frame in ((f.path, d) for f, d in read_attempts([tmp_path]))}
    assert decoded["array.json"].select("source_row", "attempt_id").rows() == [(1, "x1"), (2, "x2")]
    lines = decoded["lines.ndjson"]
    assert lines.select("source_row", "source_item", "attempt_id", "record_error").rows() == [
        (1, None, "l1", None), (3, None, None, "malformed_json"), (4, 1, None, "malformed_json"),
        (5, 1, "p1", None), (5, 2, "p2", None)]
    assert decoded["page.jsonl"].height == 0


def test_a_file_with_no_json_is_unreadable(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("this is not json\nnor this\n")
    with pytest.raises(UnreadableInput, match="not a JSON"):
        decode_attempts(load_attempt_file(path))
    with pytest.raises(UnreadableInput, match="no such file"):
        find_attempt_files([tmp_path / "missing"])


def test_decoded_attempts_pass_the_delivery_contract(tmp_path):
    frame = decode(tmp_path, [
        attempt(id="ok-1"),
        attempt(id="ok-2", status=2, statusText="fail", responseStatusCode=0, response="request timed out"),
        attempt(id="not-final", status=1, statusText="pending"),
        attempt(id="no-msg", msg=None),
        attempt(id="naive", timestamp="2025-02-22T16:07:35"),
    ])
    checked = checked_records(frame.drop("source_item", "raw_text", "svix_reason_codes", "svix_reason_details"),
                              DELIVERIES)
    assert checked.valid["attempt_id"].to_list() == ["ok-1", "ok-2"]
    assert checked.valid.select("outcome", "http_status", "error_code", "connector_kind").rows() == [
        ("delivered", 200, None, "svix"), ("failed", None, "timeout", "svix")]
    assert str(checked.valid["attempted_at"][0]) == "2025-02-22 16:07:35.514412+00:00"
    invalid = dict(zip(checked.invalid["source_row"], checked.invalid["reason_codes"].to_list()))
    assert invalid == {3: ["missing_required_field"], 4: ["missing_required_field"], 5: ["naive_timestamp"]}
