"""S3 Inventory benchmark (`python -m benchmarks.inventory --rows 1000000 10000000`).

Generates an all-versions S3 Inventory report in the documented layout (CSV gzip data files of
`--rows-per-file` rows each, manifest.json and manifest.checksum; docs/real-sources.md), then
ingests it with `exportaudit ingest --s3-inventory` in a child process and records its wall
time and peak RSS (from the OS, via wait4). Memory must not grow with the report: it is read a
data file at a time. Results go to benchmarks/results/inventory.json and inventory.md.
Benchmarks are not tests: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from benchmarks.run import DATA, RESULTS, ROOT, machine

SCHEMA = ("Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass, "
          "ObjectLockRetainUntilDate, ObjectLockMode, ObjectLockLegalHoldStatus")
BUCKET = "evidence-archive"


def data_file(start: int, rows: int) -> bytes:
    """`rows` inventory rows as gzip CSV (every field quoted, keys with spaces form-encoded as `+`)."""
    i = pl.int_range(start, start + rows, eager=True)
    frame = pl.DataFrame({
        "bucket": pl.repeat(BUCKET, rows, eager=True),
        "key": "exports/exp+" + i.cast(pl.Utf8).str.zfill(9) + "/bundle.tar.zst",
        "version": "v" + i.cast(pl.Utf8),
        "latest": pl.repeat("true", rows, eager=True),
        "marker": pl.repeat("false", rows, eager=True),
        "size": (i % 9_000 + 1_000).cast(pl.Utf8),
        "modified": pl.repeat("2026-11-01T00:00:00.000Z", rows, eager=True),
        "etag": pl.repeat("d41d8cd98f00b204e9800998ecf8427e", rows, eager=True),
        "storage": pl.repeat("STANDARD", rows, eager=True),
        "retain": pl.repeat("2034-01-01T00:00:00.000Z", rows, eager=True),
        "mode": pl.Series(["COMPLIANCE", "GOVERNANCE"]).gather((i % 10 == 0).cast(pl.UInt32)),
        "hold": pl.repeat("OFF", rows, eager=True),
    })
    text = frame.write_csv(include_header=False, quote_style="always")
    return gzip.compress(text.encode(), compresslevel=1, mtime=0)


def inventory(rows: int, rows_per_file: int) -> Path:
    """The report under benchmarks/data/inventory-<rows>/ (generated once, then cached)."""
    root = DATA / f"inventory-{rows}"
    manifest_path = root / BUCKET / "daily" / "2026-11-20T00-00Z" / "manifest.json"
    if (root / ".complete").exists():
        return manifest_path
    shutil.rmtree(root, ignore_errors=True)
    files = []
    for index, start in enumerate(range(0, rows, rows_per_file)):
        data = data_file(start, min(rows_per_file, rows - start))
        key = f"{BUCKET}/daily/data/part-{index:04d}.csv.gz"
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
        files.append({"key": key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()})
    manifest = {"sourceBucket": BUCKET, "destinationBucket": "arn:aws:s3:::inventory-destination",
                "version": "2016-11-30", "creationTimestamp": "1795132800000", "fileFormat": "CSV",
                "fileSchema": SCHEMA, "files": files}
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_bytes(json.dumps(manifest, indent=2).encode())
    (manifest_path.parent / "manifest.checksum").write_text(hashlib.md5(manifest_path.read_bytes()).hexdigest() + "\n")
    (root / ".complete").write_text("")
    return manifest_path


def ingest(manifest: Path) -> dict:
    with tempfile.TemporaryDirectory(dir=DATA) as work:
        started = time.monotonic()
        child = subprocess.Popen([sys.executable, "-m", "exportaudit.cli", "ingest", "--s3-inventory", str(manifest),
                                  "--db", str(Path(work) / "w.duckdb")], cwd=ROOT, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - started
        if status != 0:
            raise SystemExit(f"inventory ingest failed (status {status})")
    return {"wall_seconds": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", type=int, default=[1_000_000, 10_000_000])
    parser.add_argument("--rows-per-file", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    DATA.mkdir(parents=True, exist_ok=True)
    results = []
    for rows in args.rows:
        figures = ingest(inventory(rows, args.rows_per_file))
        figures.update(rows=rows, rows_per_file=args.rows_per_file, load_average=round(os.getloadavg()[0], 2),
                       us_per_row=round(figures["wall_seconds"] * 1e6 / rows, 2))
        results.append(figures)
        print(json.dumps(figures))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "inventory.json").write_text(json.dumps({"machine": machine(), "results": results}, indent=2) + "\n")
    lines = ["# S3 Inventory ingest", "", f"Machine: {machine()}", "",
             "| rows | data files | wall s | µs/row | peak RSS MiB | load average |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['rows']:,} | {-(-r['rows'] // r['rows_per_file'])} | {r['wall_seconds']} | {r['us_per_row']} "
              f"| {r['peak_rss_mib']:,} | {r['load_average']} |" for r in results]
    (RESULTS / "inventory.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
