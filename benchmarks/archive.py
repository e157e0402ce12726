"""Archive-side benchmark (`make bench-archive`, `python -m benchmarks.archive --rows 1000000 10000000`).

An archive-heavy night: N archive-side rows, half archive references and half custody checks,
over ~N/100 exports (50 references each) and a small deliveries log. Generated with vectorised
Polars (the hashes and export shapes of exportaudit/sample/scale.py), every record valid per
docs/inputs.md, cached under benchmarks/data/archive-<rows>/. One whole night per size runs in a
child process (benchmarks/night.py) on a fresh warehouse in a temporary directory, removed after;
we record rows read per log, wall seconds and peak RSS per stage, the child's peak RSS (wait4) and
the load average. Results go to benchmarks/results/archive.json and archive.md. The question: does
peak memory stay flat from 1M to 10M rows? Benchmarks are not tests: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl

from benchmarks.run import DATA, RESULTS, child_night, machine
from exportaudit.sample.common import DEFAULT_AS_OF, DEFAULT_SEED
from exportaudit.sample.scale import (
    _DAY_US, _HOUR_US, _MINUTE_US, _US, _draw, _hashed, _scaled_deliveries, _scaled_export_base, _scaled_exports,
    _ScaledLogWriter,
)

REFERENCES_PER_EXPORT = 50
CHUNK_EXPORTS = 10_000  # exports (and their 500k references and checks) generated per step: bounded memory
UNARCHIVED_EXPORTS_PERCENT = 1  # extra exports without any reference: missing_reference
STAGES = ("read inputs", "ingest", "load accepted records", "rules", "validation", "evidence documents",
          "artifacts and report", "warehouse writes")


# ------------------------------------------------------------------------------------------------
# Generation. Every value is a draw from a hash of a row index (reference k, check m), so the data
# depends only on (rows, seed, as_of). Timestamps are Int64 microseconds until written.
# ------------------------------------------------------------------------------------------------

def _reference_frame(exports: pl.DataFrame, lo: int, hi: int, seed: int, as_of_us: int) -> pl.DataFrame:
    """References k in [lo, hi) of export k // REFERENCES_PER_EXPORT, with a planted mix of the
    docs/archive-health.md findings (most references healthy)."""
    refs = (
        pl.select(k=pl.int_range(lo, hi, dtype=pl.Int64))
        .with_columns(i=pl.col("k") // REFERENCES_PER_EXPORT, hx=_hashed(pl.col("k"), seed * 64 + 40))
        .join(exports.select("i", "export_id", "generated_at", "digest_hex"), on="i", how="left")
    )
    provider_code, lock_code, digest_code = _draw("hx", 100, 0), _draw("hx", 100, 8), _draw("hx", 100, 16)
    retain_code, hold_code, generated = _draw("hx", 100, 24), _draw("hx", 100, 32), pl.col("generated_at")
    provider = (
        pl.when(provider_code < 80).then(pl.lit("aws_s3_object_lock"))
        .when(provider_code < 90).then(pl.lit("azure_immutable_blob"))
        .when(provider_code < 95).then(pl.lit("gcs_bucket_lock"))
        .otherwise(pl.lit("filesystem"))
    )
    name = pl.format("{}/{}.tar.zst", "export_id", "reference_id")
    uri = (
        pl.when(provider_code < 80)
        .then(pl.format("s3://evidence-archive-prod/exports/{}?versionId={}", name, pl.col("hx").cast(pl.Utf8)))
        .when(provider_code < 90).then(pl.lit("https://evidencearchive.blob.core.windows.net/worm/") + name)
        .when(provider_code < 95).then(pl.lit("gs://evidence-lock-prod/exports/") + name)
        .otherwise(pl.lit("file:///srv/worm/exports/") + name)
    )
    return refs.with_columns(reference_id=pl.format("ref-{}", pl.col("k").cast(pl.Utf8).str.zfill(9))).with_columns(
        archive_uri=uri,
        archive_provider=provider,
        # 96% the export's digest, 1% another one (digest_mismatch), 3% none (digest_unverifiable).
        archived_digest=pl.when(digest_code < 96).then(pl.lit("sha256:") + pl.col("digest_hex"))
        .when(digest_code < 97).then(pl.lit("sha256:") + pl.col("digest_hex").str.reverse()),
        # 92% compliance, 4% governance, 2% none, 2% not given (default none): not_immutable unless held.
        lock_mode=pl.when(lock_code < 92).then(pl.lit("compliance")).when(lock_code < 96).then(pl.lit("governance"))
        .when(lock_code < 98).then(pl.lit("none")),
        # 94% past every required retention, 2% short, 1% expiring, 1% expired, 2% none.
        retain_until=pl.when(retain_code < 94).then(generated + (3650 + 30 + _draw("hx", 365, 40)) * _DAY_US)
        .when(retain_code < 96).then(generated + 1826 * _DAY_US)
        .when(retain_code < 97).then(as_of_us + (1 + _draw("hx", 29, 40)) * _DAY_US)
        .when(retain_code < 98).then(as_of_us - (1 + _draw("hx", 100, 40)) * _DAY_US),
        legal_hold=pl.when(hold_code < 2).then(True).when(hold_code < 80).then(False),
        # 0.5% archived after as_of: not part of the night.
        archived_at=pl.when(_draw("hx", 200, 48) == 0).then(as_of_us + _HOUR_US)
        .otherwise(generated + (30 + _draw("hx", 1440, 52)) * _MINUTE_US),
    )


def _custody_check_frame(references: pl.DataFrame, lo: int, hi: int, seed: int, as_of_us: int) -> pl.DataFrame:
    """Checks m in [lo, hi), one per reference on average. Check m looks at reference m, except 3%
    that are a second, manual check of reference m - 1 (which leaves reference m never checked:
    check_stale) and 0.1% that name an unknown reference (unmatched). `references` must hold
    reference lo - 1 too."""
    checks = (
        pl.select(m=pl.int_range(lo, hi, dtype=pl.Int64))
        .with_columns(hk=_hashed(pl.col("m"), seed * 64 + 41))
        .with_columns(manual=(_draw("hk", 100, 0) < 3) & (pl.col("m") > 0))
        .with_columns(k=pl.when("manual").then(pl.col("m") - 1).otherwise("m"))
        .join(references, on="k", how="left")
    )
    kind, drift, manual = _draw("hk", 100, 8), _draw("hk", 200, 16) == 0, pl.col("manual")
    inventory = ~manual & (kind < 60)  # inventory listings report lock and retention; checksum jobs a digest
    checksum = ~manual & (kind >= 60)
    present = _draw("hk", 100, 24) != 0  # 1% object gone: object_missing
    age = _draw("hk", 3 * 86_400, 32) * _US + pl.when(manual).then(_DAY_US).otherwise(0)
    stale = _draw("hk", 100, 56) < 4  # 4% last looked at 8-38 days ago: check_stale
    export_digest = pl.lit("sha256:") + pl.col("digest_hex")
    observed_digest = pl.coalesce("archived_digest", export_digest)
    return checks.select(
        reference_id=pl.when(_draw("hk", 1000, 44) == 0).then(pl.col("reference_id") + "-gone")
        .otherwise("reference_id"),
        checked_at=as_of_us - age - pl.when(stale).then((8 + _draw("hk", 30, 48)) * _DAY_US).otherwise(0),
        object_present=present,
        # 0.5% of checksum jobs find other bytes (digest_mismatch), 0.5% of listings a lock gone (not_immutable).
        observed_digest=pl.when(checksum & present)
        .then(pl.when(drift).then("sha256:" + observed_digest.str.slice(7).str.reverse())
              .otherwise(observed_digest)),
        observed_lock_mode=pl.when(inventory & present)
        .then(pl.when(drift).then(pl.lit("none")).otherwise(pl.coalesce("lock_mode", pl.lit("none")))),
        observed_retain_until=pl.when(inventory & present).then("retain_until"),
        observed_legal_hold=pl.when(inventory & present).then(pl.coalesce("legal_hold", pl.lit(False))),
        source=pl.when(manual).then(pl.lit("manual-audit")).when(inventory).then(pl.lit("inventory-listing"))
        .otherwise(pl.lit("checksum-job")),
    )


def write_archive_night(folder: Path, rows: int, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """<log>.parquet files of an archive-heavy night with `rows` archive-side rows; rows per log."""
    references = rows // 2
    referenced_exports = -(-references // REFERENCES_PER_EXPORT)
    total_exports = referenced_exports + max(1, referenced_exports * UNARCHIVED_EXPORTS_PERCENT // 100)
    as_of_us = int(DEFAULT_AS_OF.timestamp()) * _US
    folder.mkdir(parents=True, exist_ok=True)
    writers = {log: _ScaledLogWriter(log, folder / f"{log}.parquet", "parquet")
               for log in ("exports", "deliveries", "archives", "custody_checks")}
    try:
        for lo in range(0, total_exports, CHUNK_EXPORTS):
            hi = min(lo + CHUNK_EXPORTS, total_exports)
            # From lo - 1: the chunk's first check may look at the previous chunk's last reference. scale.py's
            # shapes: 1% of exports unregistered (their references are orphans), ~2 states each.
            base = _scaled_export_base(max(lo - 1, 0), hi, total_exports, seed, as_of_us)
            writers["exports"].write(_scaled_exports(base.filter(pl.col("i") >= lo), as_of_us))
            # ~10 attempts for 1 export in 100: the retry plan runs, but the night is about archives.
            writers["deliveries"].write(_scaled_deliveries(base.filter((pl.col("i") >= lo) & (pl.col("i") % 100 == 0)),
                                                           seed, as_of_us))
            first, last = min(lo * REFERENCES_PER_EXPORT, references), min(hi * REFERENCES_PER_EXPORT, references)
            if first == last:
                continue
            frame = _reference_frame(base, max(first - 1, 0), last, seed, as_of_us)
            writers["archives"].write(frame.filter(pl.col("k") >= first))
            writers["custody_checks"].write(_custody_check_frame(frame, first, last, seed, as_of_us))
    finally:
        for writer in writers.values():
            writer.close()
    return {log: writer.rows for log, writer in writers.items()}


def dataset(rows: int, data: Path) -> Path:
    """DATA/archive-<rows>/ (generated once, in a child process, then cached). Not here: a child's
    peak RSS starts from its parent's RSS when it is started (Linux keeps it across exec), so the
    generator's memory would have been the floor of every later night's figures."""
    folder = data / f"archive-{rows}"
    if not (folder / ".complete").exists():
        subprocess.run([sys.executable, "-m", "benchmarks.archive", "--generate", str(rows), "--data", str(data)],
                       check=True)
    return folder


def generate(rows: int, data: Path) -> None:
    """Writes DATA/archive-<rows>/ and its .complete marker."""
    folder = data / f"archive-{rows}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        started = time.monotonic()
        written = write_archive_night(folder, rows)
        (folder / ".complete").write_text(json.dumps({"rows_by_log": written,
                                                      "seconds": round(time.monotonic() - started, 1)}) + "\n")


# ------------------------------------------------------------------------------------------------
# One night in a child process (benchmarks/night.py), its warehouse read back before removal.
# ------------------------------------------------------------------------------------------------

def warehouse_counts(db: Path) -> dict:
    """Quarantined rows per log and what the archive health found (to see the planted mix)."""
    with duckdb.connect(str(db), read_only=True) as con:
        accounts = con.execute("select log, sum(rows_quarantined)::bigint, sum(rows_duplicate)::bigint "
                               "from ingested_files group by log order by log").fetchall()
        alerts = dict(con.execute('select "check", count(*) from archive_alerts group by 1 order by 1').fetchall())
        status = dict(con.execute("select custody_status, count(*) from archive_health group by 1 order by 1")
                      .fetchall())
    return {"rows_quarantined": {log: quarantined for log, quarantined, _ in accounts},
            "rows_duplicate": {log: duplicate for log, _, duplicate in accounts},
            "alerts_by_check": alerts, "exports_by_custody_status": status}


def night(folder: Path, work_root: Path) -> dict:
    """One whole night on a fresh warehouse under work_root (removed after), measured from outside."""
    return child_night(folder, 1, work_root, inspect=warehouse_counts)


# ------------------------------------------------------------------------------------------------
# Results.
# ------------------------------------------------------------------------------------------------

NOTES_HEADING = "## Where the memory goes"  # archive.md from here on is written by hand and kept across runs


def added_to_peak(result: dict) -> dict[str, float]:
    """MiB each stage added to the process's peak RSS (the per-stage figures are a cumulative max)."""
    previous, added = 0.0, {}
    for stage in STAGES:
        peak = result["stage_peak_rss_mib"].get(stage, previous)
        added[stage], previous = round(max(peak - previous, 0.0), 1), max(peak, previous)
    return added


def growth(entries: list[dict]) -> str:
    """One sentence: how the peak grew from the smallest size to the largest, and in which stage."""
    if len(entries) < 2:
        return ""
    small, large = entries[0], entries[-1]
    small_added, large_added = added_to_peak(small["result"]), added_to_peak(large["result"])
    stage = max(STAGES, key=lambda s: large_added[s] - small_added[s])
    return (f"Peak RSS {small['result']['peak_rss_mib']:,.0f} MiB at {small['rows']:,} rows, "
            f"{large['result']['peak_rss_mib']:,.0f} MiB at {large['rows']:,} "
            f"(×{large['result']['peak_rss_mib'] / small['result']['peak_rss_mib']:.1f} for "
            f"×{large['rows'] / small['rows']:.0f} rows); the stage whose addition to the peak grew most: "
            f"{stage} (+{small_added[stage]:,.0f} → +{large_added[stage]:,.0f} MiB).\n")


def markdown(entries: list[dict], info: dict, notes: str = "") -> str:
    sizes = [f"{e['rows']:,}" for e in entries]
    lines = ["# Archive-side benchmark", "",
             f"Machine: {info['cores']} cores, {info['memory_gib']} GiB, Python {info['python']} "
             f"({info['platform']}); shared with other work, hence the load average (1 minute, before–after). "
             "One whole night per size on a fresh warehouse, Parquet input (`make bench-archive`, "
             "`python -m benchmarks.archive`).", "",
             "| archive-side rows | rows read: exports / deliveries / archives / custody checks | quarantined "
             "| process wall s | peak RSS MiB (wait4) | load avg |", "|---|---|---|---|---|---|"]
    for entry in entries:
        r, logs = entry["result"], entry["result"]["rows_by_log"]
        read = " / ".join(f"{logs.get(log, 0):,}" for log in ("exports", "deliveries", "archives", "custody_checks"))
        load = "–".join(map(str, r["load_average"]))
        lines.append(f"| {entry['rows']:,} | {read} | {sum(r['rows_quarantined'].values()):,} "
                     f"| {r['process_wall_seconds']} | {r['peak_rss_mib']:,} | {load} |")
    lines += ["", "Per stage: wall seconds, the process's peak RSS when the stage ended (MiB, a cumulative "
              "maximum) and what the stage added to that peak.", "",
              "| stage | " + " | ".join(f"{size}: s | peak MiB | added MiB" for size in sizes) + " |",
              "|---|" + "---|---|---|" * len(entries)]
    added = [added_to_peak(e["result"]) for e in entries]
    for stage in STAGES:
        cells = [f"{e['result']['stage_seconds'].get(stage, 0):.1f} "
                 f"| {e['result']['stage_peak_rss_mib'].get(stage, 0):,.0f} | {a[stage]:,.0f}"
                 for e, a in zip(entries, added)]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + growth(entries) + notes


def kept_notes(path: Path) -> str:
    """The hand-written part of an earlier archive.md (from NOTES_HEADING on)."""
    text = path.read_text() if path.exists() else ""
    at = text.find(NOTES_HEADING)
    return "" if at < 0 else "\n" + text[at:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", type=int, default=[1_000_000, 10_000_000])
    parser.add_argument("--data", type=Path, default=DATA, help="generated input and the nights' working directories")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where archive.json and archive.md go")
    parser.add_argument("--generate", type=int, metavar="ROWS", help="only write the input of this size")
    args = parser.parse_args(argv)
    args.data.mkdir(parents=True, exist_ok=True)
    if args.generate:
        generate(args.generate, args.data)
        return 0
    entries = []
    for rows in args.rows:
        result = night(dataset(rows, args.data), args.data)
        entries.append({"rows": rows, "result": result})
        print(f"{rows:>11,} archive-side rows  stages {sum(result['stage_seconds'].values()):7.1f} s  "
              f"wall {result['process_wall_seconds']:7.1f} s  peak {result['peak_rss_mib']:>9,} MiB  "
              f"load {result['load_average']}", flush=True)
    info = machine()
    args.results.mkdir(parents=True, exist_ok=True)
    shape = {"format": "parquet", "references_per_export": REFERENCES_PER_EXPORT,
             "custody_checks_per_reference": 1, "unarchived_exports_percent": UNARCHIVED_EXPORTS_PERCENT}
    (args.results / "archive.json").write_text(json.dumps({"machine": info, "data": shape, "entries": entries},
                                                          indent=2) + "\n")
    report = args.results / "archive.md"
    report.write_text(markdown(entries, info, kept_notes(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
