"""docs/outputs.md#evidence-documents: canonical JSON written in bulk is exactly Python's canonical JSON."""

import hashlib
import json
from datetime import datetime, timezone
from types import SimpleNamespace

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exportaudit import evidence
from exportaudit.evidence import Evidence, canonical_json, records_json
from transforms.timestamps import UTC_US as UTC


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.text()), st.one_of(st.none(), st.integers(-2**63, 2**63 - 1)),
                          st.one_of(st.none(), st.booleans())), max_size=6))
def test_records_json_equals_python_canonical_json(rows):
    frame = pl.DataFrame(rows, schema={"z_text": pl.Utf8, "a_int": pl.Int64, "m_bool": pl.Boolean}, orient="row")
    assert records_json(frame) == canonical_json(frame.to_dicts())


def test_instants_are_written_as_spec_timestamps():
    frame = pl.DataFrame({"at": [datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
                                 datetime(2026, 1, 2, 3, 4, 5, 120, tzinfo=timezone.utc), None]}).cast({"at": UTC})
    assert records_json(frame) == b'[{"at":"2026-01-02T03:04:05Z"},{"at":"2026-01-02T03:04:05.000120Z"},{"at":null}]'


def test_evidence_id_and_bytes_match_the_plain_document_rule():
    header = {"schema_version": "v", "run_id": "r1", "generated_at": "g", "generated_by": "me", "inputs": [1],
              "summary": {"b": 1, "a": "\u0000records:decisions\u0000"}}
    frame = pl.DataFrame({"y": ["é\n\"<x>"], "x": [1]})
    document = Evidence(header, {"decisions": frame})
    plain = json.loads(document.canonical_bytes())
    assert plain["decisions"] == [{"x": 1, "y": "é\n\"<x>"}] and plain["summary"] == header["summary"]
    content = {k: v for k, v in plain.items() if k not in ("evidence_id", "run_id", "generated_at", "generated_by",
                                                           "inputs")}
    assert document["evidence_id"] == hashlib.sha256(canonical_json(content)).hexdigest()
    assert document.canonical_bytes() == canonical_json(plain)
    other_run = Evidence({**header, "run_id": "r2", "generated_by": "you", "inputs": []}, {"decisions": frame})
    assert other_run["evidence_id"] == document["evidence_id"]


@pytest.mark.parametrize("names", [("alerts", "exports", "empty"), ("zz_after_every_header_key", "a")])
def test_a_streamed_document_writes_the_bytes_it_would_keep_in_slices_of_any_size(monkeypatch, names):
    frame = pl.DataFrame({"y": ["a", None, "ü", "x", "z"], "x": [1, 2, 3, 4, 5],
                          "at": [datetime(2026, 1, 2, tzinfo=timezone.utc)] * 5}).cast({"at": UTC})
    lists = dict(zip(names, (frame, frame.head(2), frame.clear())))
    header = {"run_id": "r", "summary": {"n": 5}, "inputs": [], "generated_at": "g"}
    kept = Evidence(header, lists)
    expected = kept.canonical_bytes()
    assert kept.sha256 == hashlib.sha256(expected).hexdigest()
    for rows, parts in ((1, 1), (2, 3), (4, 2), (10, 4)):
        monkeypatch.setattr(evidence, "ENCODE_ROWS", rows)
        monkeypatch.setattr(evidence, "ENCODE_PARTS", parts)
        written = []
        streamed = Evidence(header, lists, sink=SimpleNamespace(write=written.append))
        assert b"".join(written) == expected and streamed["evidence_id"] == kept["evidence_id"]
        assert streamed.sha256 == kept.sha256
        assert streamed._pieces is None  # nothing kept: asked for, the text is encoded again
        assert streamed.canonical_bytes() == expected
    content = {k: v for k, v in json.loads(expected).items()
               if k not in ("evidence_id", "run_id", "generated_at", "generated_by", "inputs")}
    assert kept["evidence_id"] == hashlib.sha256(canonical_json(content)).hexdigest()
