"""The run directory (exportaudit.artifacts.RunDirectoryWriter): files staged early are written
once; every file lands whole, by rename; nothing temporary is left behind, also on failure."""

from __future__ import annotations

import hashlib

import pytest

from exportaudit import artifacts


def listing(folder):
    return sorted(path.name for path in folder.iterdir())


def stage(writer, name, data):
    """Start the file early, as the night does with each evidence document."""
    stream = writer.open_stream(name)
    stream.write(data)
    stream.close()
    writer.staged(name, data, stream, hashlib.sha256(data).hexdigest())


def test_a_staged_file_is_not_written_again_and_every_file_lands(tmp_path, monkeypatch):
    writer = artifacts.RunDirectoryWriter(tmp_path, "run-1")
    document = b'{"evidence_id":"x"}' * 1000
    stage(writer, "retry-plan.json", document)
    writes = []
    original = writer._write_temp
    monkeypatch.setattr(writer, "_write_temp", lambda name, pieces, hashed=True: writes.append(name) or original(
        name, pieces, hashed))
    run_dir = writer.finish({"retry-plan.json": document, "report.md": b"# report"})
    assert writes == ["report.md"]  # the staged document was written once, before finish
    assert listing(run_dir) == ["report.md", "retry-plan.json"]
    assert (run_dir / "retry-plan.json").read_bytes() == document and (run_dir / "report.md").read_bytes() == b"# report"
    assert writer.digests == {name: hashlib.sha256((run_dir / name).read_bytes()).hexdigest()
                              for name in ("retry-plan.json", "report.md")}


def test_a_file_staged_with_other_bytes_is_written_again(tmp_path):
    writer = artifacts.RunDirectoryWriter(tmp_path, "run-1")
    stage(writer, "retry-plan.json", b"old")
    run_dir = writer.finish({"retry-plan.json": b"new"})
    assert listing(run_dir) == ["retry-plan.json"] and (run_dir / "retry-plan.json").read_bytes() == b"new"
    assert writer.digests == {"retry-plan.json": hashlib.sha256(b"new").hexdigest()}


def test_a_failed_finish_or_a_discard_leaves_no_temp_file(tmp_path):
    writer = artifacts.RunDirectoryWriter(tmp_path, "run-1")
    stage(writer, "retry-plan.json", b"staged")
    with pytest.raises(TypeError):
        writer.finish({"retry-plan.json": b"other", "report.md": "not bytes"})
    assert listing(tmp_path / "run-1") == []
    other = artifacts.RunDirectoryWriter(tmp_path, "run-2")
    stage(other, "archive-health.json", b"staged")
    other.discard()
    assert listing(tmp_path / "run-2") == []
