"""An evidence document's text is streamed, while it is encoded, to its consumers and not kept
(docs/outputs.md#memory): the run-directory file, its digest and the stored (compressed) body all
get the same bytes; a stream that fails leaves nothing behind."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exportaudit import artifacts, history, outputs
from exportaudit.evidence import Evidence
from exportaudit.ledger import artifact_digests


def listing(folder):
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def _document(rows: int = 50, sink=None) -> Evidence:
    frame = pl.DataFrame({"alert_id": [f"{i:016x}" for i in range(rows)], "check": ["object_missing"] * rows})
    return Evidence({"run_id": "r", "as_of": "2026-11-20T06:00:00Z", "policy": {"p": 1},
                     "dataset": {"files": 1, "sha256": "0" * 64}, "summary": {"n": rows}},
                    {"alerts": frame, "exports": frame.head(3)}, sink)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=12), st.integers(1, 16))
def test_a_body_compressed_piece_by_piece_decodes_to_the_joined_pieces(pieces, frame_bytes):
    original = history.FRAME_BYTES
    history.FRAME_BYTES = frame_bytes  # tiny frames: pieces split across frames and gathered into them
    try:
        compressor = history.BodyCompressor()
        for piece in pieces:
            compressor.write(memoryview(piece))
        size, compressed = compressor.body()
    finally:
        history.FRAME_BYTES = original
    stored = history.StoredDocument({}, size, compressed)
    assert size == len(b"".join(pieces))
    assert stored.canonical_bytes() == b"".join(pieces) == b"".join(stored.chunks(size=7))


def test_a_streamed_file_gets_every_piece_and_is_not_written_again(tmp_path):
    document = _document()
    text = document.canonical_bytes()
    writer = artifacts.RunDirectoryWriter(tmp_path, "run-1")
    stream = writer.open_stream("archive-health.json")
    for piece in document.chunks():
        stream.write(piece)
    stream.close()
    writer.staged("archive-health.json", document, stream, document.sha256)
    writes = []
    original = writer._write_temp
    writer._write_temp = lambda name, pieces, hashed=True: writes.append(name) or original(name, pieces, hashed)
    run_dir = writer.finish({"archive-health.json": document, "report.md": b"# r"})
    assert writes == ["report.md"]
    assert (run_dir / "archive-health.json").read_bytes() == text
    assert writer.digests["archive-health.json"] == hashlib.sha256(text).hexdigest() == document.sha256


def test_an_aborted_or_abandoned_stream_leaves_no_file(tmp_path):
    writer = artifacts.RunDirectoryWriter(tmp_path, "run-1")
    stream = writer.open_stream("archive-health.json")
    stream.write(b'{"alerts":[')
    stream.abort()
    with pytest.raises(RuntimeError):
        stream.result.result()
    writer.open_stream("retry-plan.json").write(b"{")  # never closed: discard stops it
    writer.discard()
    assert listing(tmp_path / "run-1") == []


def test_the_stager_streams_each_document_and_compresses_stored_answers_only(tmp_path):
    writer = artifacts.RunDirectoryWriter(tmp_path, "run-1")
    stager = outputs.DocumentStager(writer, ("archive_health",))
    health = stager("archive_health", lambda sink: _document(sink=sink))
    acknowledgements = stager("alert_acknowledgements", lambda sink: _document(7, sink=sink))
    assert health._pieces is None and acknowledgements._pieces is None  # streamed, not kept
    texts = {"archive-health.json": _document().canonical_bytes(),
             "alert-acknowledgements.json": _document(7).canonical_bytes()}
    bodies = stager.bodies
    assert list(bodies) == ["archive_health"]
    assert history.StoredDocument({}, *bodies["archive_health"]()).canonical_bytes() == texts["archive-health.json"]
    files = {"archive-health.json": health, "alert-acknowledgements.json": acknowledgements, "report.md": b"#"}
    run_dir = writer.finish(files)
    assert {name: (run_dir / name).read_bytes() for name in texts} == texts
    # The ledger's digests: from the writer, or from the documents themselves (encoded again): the same.
    expected = {name: hashlib.sha256((run_dir / name).read_bytes()).hexdigest() for name in sorted(files)}
    assert artifact_digests(files, writer.digests) == expected == artifact_digests(files)


def test_a_document_that_fails_while_streamed_leaves_no_file(tmp_path):
    writer = artifacts.RunDirectoryWriter(tmp_path, "run-1")
    stager = outputs.DocumentStager(writer, ("archive_health",))

    def failing(sink):
        sink.write(b"{")
        raise ValueError("rules broke")
    with pytest.raises(ValueError):
        stager("archive_health", failing)
    writer.discard()
    assert listing(tmp_path / "run-1") == []


def test_a_stored_document_row_compresses_a_document_not_staged():
    document = _document()
    row = history._document_row("run-1", "archive_health", document)
    size, compressed = row[-2], row[-1]
    assert history.StoredDocument({}, size, compressed).canonical_bytes() == document.canonical_bytes()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=9000), max_size=8), st.sampled_from([4096, 8192]), st.booleans())
def test_a_file_written_direct_or_not_holds_exactly_its_pieces(tmp_path_factory, pieces, chunk, refused):
    """artifacts.write_direct: whole aligned chunks through O_DIRECT, the tail through the page
    cache; where the file system refuses O_DIRECT (EINVAL on the first write), all of it buffered."""
    path = tmp_path_factory.mktemp("direct") / "file"
    original_chunk, original_write = artifacts.DIRECT_CHUNK, artifacts.os.write
    refusals = []

    def write(handle, data):
        if refused and not refusals and fcntl.fcntl(handle, fcntl.F_GETFL) & os.O_DIRECT:
            refusals.append(1)
            raise OSError(errno.EINVAL, "O_DIRECT refused")
        return original_write(handle, data)
    artifacts.DIRECT_CHUNK = chunk
    artifacts.os.write = write
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            artifacts.write_direct(handle, [memoryview(piece) for piece in pieces])
        finally:
            os.close(handle)
    finally:
        artifacts.DIRECT_CHUNK, artifacts.os.write = original_chunk, original_write
    assert path.read_bytes() == b"".join(pieces)


def test_a_piece_that_is_not_bytes_is_refused(tmp_path):
    handle = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with pytest.raises(TypeError):
            artifacts.write_direct(handle, [b"ok", "text"])
    finally:
        os.close(handle)


def test_a_consumer_that_fails_is_noticed_and_never_waited_for(monkeypatch):
    """artifacts.Handover: the producer gets the consumer's error (no hang on a full queue), and
    close() and abort() return."""
    monkeypatch.setattr(artifacts, "STREAM_AHEAD", 1)

    def consume(pieces):
        next(iter(pieces))
        raise OSError("disk full")
    with ThreadPoolExecutor(1) as pool:
        handover = artifacts.Handover(pool, consume)
        with pytest.raises(OSError, match="disk full"):
            for _ in range(10):
                handover.write(b"x")
        handover.abort()
        with pytest.raises(OSError, match="disk full"):
            handover.close()
