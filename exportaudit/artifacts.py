"""Writing run outputs atomically: every file via a temp file and rename, the run's ledger entry
with `ledger.json` and `attestation.intoto.json` (docs/ledger.md), and `latest` switched to a
finished run directory in one rename (a reader never sees a mix of runs)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from exportaudit.attestation import attestation_json, attestation_statement
from exportaudit.faults import checkpoint
from exportaudit.ledger import (ATTESTATION_FILE, LEDGER_FILE, LedgerConflict, append_ledger_entry, artifact_digests,
                                ledger_json, next_entry)


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes 0600; reports are meant to be read
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class RunDirectoryWriter:
    """OUT/<run_id>/, written atomically: every file goes to a temp file first, then all are synced
    (the disk flushes one while the next is written: 1.3 GB at 1M exports), then each is renamed
    into place. `stage(name, data)` starts a file early, in a worker thread (the night stages each
    evidence document as soon as it exists, while the rules go on); `finish(files)` writes the
    others, syncs and renames them all, and leaves `digests` (name -> sha256 of the bytes written,
    hashed as they were written, off the run's critical path); `discard()` removes what a failed
    run staged."""

    def __init__(self, out_dir: Path, run_id: str):
        self.run_dir = out_dir / run_id
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="run-directory")
        self._staged: dict[str, tuple[bytes, Future]] = {}  # name -> (its bytes, (temp file, sha256))
        self._temps: list[Path] = []
        self.digests: dict[str, str] = {}

    def stage(self, name: str, data: bytes) -> None:
        self._staged[name] = (data, self._pool.submit(self._write_temp, name, data))

    def finish(self, files: Mapping[str, bytes]) -> Path:
        """Every file of the run directory, written atomically; the files staged with the same bytes
        are not written again."""
        try:
            temps, digests = [], {}
            for name, data in files.items():
                staged = self._staged.get(name)
                temp, digests[name] = (staged[1].result() if staged and staged[0] is data
                                       else self._write_temp(name, data))
                temps.append((temp, self.run_dir / name))
            for temp, _ in temps:
                with open(temp, "rb") as written:
                    os.fsync(written.fileno())
            for number, (temp, path) in enumerate(temps):
                if number == len(temps) // 2:
                    checkpoint("artifacts:run-directory-half-written")
                os.replace(temp, path)
            self.digests = digests
        finally:
            self.discard()  # a staged file whose bytes changed, or everything when this failed
        return self.run_dir

    def discard(self) -> None:
        """Remove every temp file not renamed into place (waiting for the staged writes first)."""
        self._pool.shutdown(wait=True)
        for temp in self._temps:
            temp.unlink(missing_ok=True)

    def _write_temp(self, name: str, data: bytes) -> tuple[Path, str]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=self.run_dir, prefix=f".{name}.", suffix=".tmp")
        self._temps.append(Path(temp))
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temp, 0o644)  # mkstemp makes 0600; reports are meant to be read
        return Path(temp), hashlib.sha256(data).hexdigest()


def seal_run_directory(con, run_dir: Path, *, run_id: str, as_of: datetime, generated_at: datetime,
                       dataset: dict, files: Mapping[str, bytes], policy, evidence_ids: Mapping[str, str],
                       position: Mapping[str, object], digests: Mapping[str, str] | None = None) -> dict:
    """The run's ledger entry (docs/ledger.md#ledger-entry), appended on `con`, and its `ledger.json`
    and `attestation.intoto.json` written atomically into the run directory. Call it inside the
    transaction of the run's history rows (history.record_run), before COMMIT: a crash before COMMIT
    leaves the directory unrecorded (the ledger never names it), never an entry without its files.
    `files`: the very bytes written to the run directory; `position`: the seq and previous_hash the
    run's report shows (ledger.next_position when it was rendered), checked against the chain;
    `policy`: the run's Policy, attested with every key, defaults included; `digests`: the files'
    sha256s already computed from those bytes (RunDirectoryWriter.digests), by name."""
    entry = next_entry(con, run_id, as_of, generated_at, dataset["sha256"], artifact_digests(files, digests))
    if (entry["seq"], entry["previous_hash"]) != (position["seq"], position["previous_hash"]):
        raise LedgerConflict(f"the report shows ledger seq {position['seq']}, the chain continues at seq "
                             f"{entry['seq']}: another run appended meanwhile")
    append_ledger_entry(con, entry)
    checkpoint("ledger:appended")
    write_atomic(run_dir / LEDGER_FILE, ledger_json(entry))
    write_atomic(run_dir / ATTESTATION_FILE,
                 attestation_json(attestation_statement(entry, _policy_keys(policy), dataset, dict(evidence_ids))))
    checkpoint("ledger:files-written")
    return entry


def _policy_keys(policy) -> dict:
    return dataclasses.asdict(policy) if dataclasses.is_dataclass(policy) else dict(policy)


def point_latest(out_dir: Path, run_id: str) -> Path:
    """Make OUT/latest a symlink to OUT/<run_id>, replaced in one atomic rename."""
    latest = out_dir / "latest"
    if latest.exists() and not latest.is_symlink():  # an old real directory: move it aside once
        shutil.rmtree(latest)
    checkpoint("latest:before-switch")
    temp = out_dir / f".latest-{run_id}.tmp"
    temp.unlink(missing_ok=True)
    os.symlink(run_id, temp, target_is_directory=True)
    os.replace(temp, latest)
    return latest
