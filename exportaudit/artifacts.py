"""Writing run outputs atomically: every file via a temp file and rename, and `latest`
switched to a finished run directory in one rename (a reader never sees a mix of runs)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from exportaudit.faults import checkpoint


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


def write_run_directory(out_dir: Path, run_id: str, files: dict[str, bytes]) -> Path:
    """OUT/<run_id>/ with every file, each written atomically."""
    run_dir = out_dir / run_id
    for number, (name, data) in enumerate(files.items()):
        if number == len(files) // 2:
            checkpoint("artifacts:run-directory-half-written")
        write_atomic(run_dir / name, data)
    return run_dir


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
