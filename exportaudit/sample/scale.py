"""The benchmark set (`--scale N`): N exports of the default sample's shape, built with
vectorised Polars expressions: ~10 delivery attempts, ~1.5 archive references and ~3
custody checks per export, and well under 1% quarantinable rows.

Every choice is a draw from a splitmix64 hash of a row key (export index, delivery,
attempt, reference, check), so the data depends only on (N, seed, as_of), not on chunking,
and no Python code runs per row. Timestamps are Int64 microseconds until written.
"""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import polars as pl

from exportaudit.contract import LOGS
from exportaudit.sample.common import (
    AMZ_SIGNATURE,
    AZURE_SIG,
    DEFAULT_AS_OF,
    DEFAULT_SEED,
    DESTINATIONS,
    LOG_NAMES,
    UTC_US,
    WEBHOOK_TOKEN,
    azure_sas_url,
    presigned_s3_url,
)

_MASK64 = (1 << 64) - 1
_US = 1_000_000
_MINUTE_US = 60 * _US
_HOUR_US = 60 * _MINUTE_US
_DAY_US = 24 * _HOUR_US
SCALE_CHUNK_EXPORTS = 100_000  # exports generated and written per step: bounds memory at any N
_TIMESTAMP_FIELDS = {
    "exports": ("generated_at", "updated_at", "required_retain_until"),
    "deliveries": ("attempted_at",),
    "archives": ("retain_until", "archived_at"),
    "custody_checks": ("checked_at", "observed_retain_until"),
}
_SCALE_DESTINATIONS = tuple(DESTINATIONS)  # index -> name


def _hashed(key: pl.Expr, salt: int) -> pl.Expr:
    """splitmix64(key + salt): a uniform, stable UInt64 per row (Polars' own hash may change between versions)."""
    z = key.cast(pl.UInt64) + pl.lit((salt * 0x9E3779B97F4A7C15) & _MASK64, dtype=pl.UInt64)
    z = (z ^ (z // pl.lit(1 << 30, pl.UInt64))) * pl.lit(0xBF58476D1CE4E5B9, pl.UInt64)
    z = (z ^ (z // pl.lit(1 << 27, pl.UInt64))) * pl.lit(0x94D049BB133111EB, pl.UInt64)
    return z ^ (z // pl.lit(1 << 31, pl.UInt64))


def _draw(hash_column: str, modulus: int, shift: int) -> pl.Expr:
    """An integer in [0, modulus) from the bits of a hash above `shift` (one hash serves several draws)."""
    bits = pl.col(hash_column) // pl.lit(1 << shift, pl.UInt64)
    return (bits % pl.lit(modulus, pl.UInt64)).cast(pl.Int64)


def _chosen(index: pl.Expr, values: Iterable[Any], dtype: pl.DataType = pl.Utf8) -> pl.Expr:
    """values[index] (a small lookup table)."""
    return index.replace_strict(dict(enumerate(values)), return_dtype=dtype)


@functools.cache
def _hex4_table() -> pl.Series:
    """The 65,536 four-character lowercase hex strings, by value."""
    return pl.Series("hex4", [f"{value:04x}" for value in range(1 << 16)])


def _hex_text(key: pl.Expr, salt: int) -> pl.Expr:
    """64 lowercase hex characters from four hashes of key: digest-shaped, not a real sha256."""
    parts = []
    for k in range(4):
        h = _hashed(key, salt + k)
        for shift in (0, 16, 32, 48):
            chunk = ((h // pl.lit(1 << shift, pl.UInt64)) % pl.lit(1 << 16, pl.UInt64)).cast(pl.UInt32)
            parts.append(pl.lit(_hex4_table()).gather(chunk))
    return pl.concat_str(parts)


def _scaled_export_base(lo: int, hi: int, total: int, seed: int, as_of_us: int) -> pl.DataFrame:
    """One row per export index in [lo, hi): its id and the draws every log shares."""
    width = max(6, len(str(total)))
    number = (pl.col("i") + 1).cast(pl.Utf8).str.zfill(width)
    return (
        pl.select(pl.int_range(lo, hi, dtype=pl.Int64).alias("i"))
        .with_columns(h=_hashed(pl.col("i"), seed * 64 + 1), number=number,
                      digest_hex=_hex_text(pl.col("i"), seed * 64 + 50))
        .with_columns(
            export_id=pl.lit("exp-") + pl.col("number"),
            registered=_draw("h", 100, 0) != 0,  # 1%: no export record (export_unknown, orphans)
            n_states=1 + _draw("h", 3, 8),  # 1-3 states, mean 2
            final_code=_draw("h", 100, 12),
            generated_at=as_of_us - (2 * 3600 + _draw("h", 40 * 86_400, 20)) * _US,
            required_explicit=_draw("h", 10, 44) == 0,
            redigest=_draw("h", 100, 48) == 0,  # re-exported: the last state has a new digest
            future_state=_draw("h", 50, 56) == 0,  # the last state is dated after as_of
        )
    )


def _scaled_exports(base: pl.DataFrame, as_of_us: int) -> pl.DataFrame:
    j, last = pl.col("j"), pl.col("j") == pl.col("n_states") - 1
    final_state = (
        pl.when(pl.col("final_code") < 86).then(pl.lit("verified"))
        .when(pl.col("final_code") < 91).then(pl.lit("incomplete"))
        .when(pl.col("final_code") < 95).then(pl.lit("failed"))
        .otherwise(pl.lit("superseded"))
    )
    state = pl.when(last).then(final_state).otherwise(pl.lit("incomplete"))
    updated_at = pl.col("generated_at") + (j * (40 + _draw("h", 600, 30)) + 60) * _MINUTE_US
    future = pl.col("future_state") & last & (pl.col("n_states") > 1)
    digest_hex = pl.when(pl.col("redigest") & last).then(pl.col("digest_hex").str.reverse()).otherwise("digest_hex")
    return (
        base.filter("registered")
        .with_columns(j=pl.int_ranges(0, "n_states"))
        .explode("j")
        .select(
            "export_id",
            release_record_ref=pl.lit("rel-2026-") + (pl.col("i") // 4 + 1).cast(pl.Utf8).str.zfill(6),
            verification_id=pl.when(state == "verified").then(pl.format("ver-{}-{}", "number", j + 1)),
            verification_state=state,
            export_digest=pl.lit("sha256:") + digest_hex,
            generated_at="generated_at",
            updated_at=pl.when(future).then(as_of_us + _HOUR_US + j * _MINUTE_US).otherwise(updated_at),
            required_retain_until=pl.when("required_explicit").then(pl.col("generated_at") + 3650 * _DAY_US),
            row_key=pl.col("i") * 4 + j,
        )
    )


# Failed attempts: (http_status, error_code) covering every error class of docs/retry-plan.md#error-classes.
_FAILURES = ((503, None), (503, None), (429, "throttled"), (None, "rate_limited"), (502, None), (500, "timeout"),
             (504, None), (None, "connection_reset"), (404, "not_found"), (401, "auth_failed"),
             (None, "connection_refused"), (None, "dns_failure"), (408, None), (None, None), (302, "mailbox_full"),
             (501, None))


def _scaled_endpoint(destination: pl.Expr, export_id: pl.Expr, flag: pl.Expr) -> pl.Expr:
    """The endpoint of an attempt; `flag` (about 2%) plants credentials in webhook and S3 endpoints."""
    bundle = export_id + pl.lit(".tar.zst")
    return (
        pl.when(destination == "grc-webhook")
        .then(pl.when(flag).then(pl.lit(f"https://hooks.grc-vendor.example/v1/evidence?token={WEBHOOK_TOKEN}"))
              .otherwise(pl.lit("https://grc.example.com/api/v2/evidence")))
        .when(destination == "evidence-bucket")
        .then(pl.when(flag).then(pl.lit("https://evidence-drop-prod.s3.eu-west-1.amazonaws.com/exports/") + bundle
                                 + pl.lit(presigned_s3_url("", AMZ_SIGNATURE)))
              .otherwise(pl.lit("s3://evidence-drop-prod/exports/") + bundle))
        .when(destination == "audit-sftp").then(pl.lit("sftp://192.168.14.7/inbound/") + bundle)
        .when(destination == "gcs-evidence").then(pl.lit("gs://auditor-evidence-drop/exports/") + bundle)
        .when(destination == "azure-evidence")
        .then(pl.lit("https://auditevidence.blob.core.windows.net/exports/") + bundle
              + pl.lit(azure_sas_url("", AZURE_SIG)))
        .otherwise(pl.lit("mailto:evidence@auditor.example.net"))
    )


def _scaled_deliveries(base: pl.DataFrame, seed: int, as_of_us: int) -> pl.DataFrame:
    """~10 attempts per export: 1-4 destinations x 1-7 attempts; ~36% of deliveries never delivered."""
    deliveries = (
        base.select("i", "number", "export_id", hd=_hashed(pl.col("i"), seed * 64 + 3))
        .with_columns(n_dest=1 + _draw("hd", 4, 0), first_dest=_draw("hd", 6, 4))
        .with_columns(d=pl.int_ranges(0, "n_dest"))
        .explode("d")
        .with_columns(hv=_hashed(pl.col("i") * 8 + pl.col("d"), seed * 64 + 4))
        .with_columns(n_att=1 + _draw("hv", 7, 0), fate=_draw("hv", 100, 4),
                      first_at=as_of_us - (600 + _draw("hv", 9 * 86_400, 12)) * _US,
                      gap=(5 + _draw("hv", 180, 36)) * _MINUTE_US, keyed=_draw("hv", 10, 44) < 6,
                      dest=(pl.col("first_dest") + pl.col("d")) % 6, hidden=_draw("hv", 10, 48),
                      recent=_draw("hv", 100, 52) < 15, lag=_draw("hv", 1800, 20) * _US)
        # 15% of deliveries end within the last half hour, so some are still waiting at as_of.
        .with_columns(first_at=pl.when("recent")
                      .then(as_of_us - (pl.col("n_att") - 1) * pl.col("gap") - pl.col("lag"))
                      .otherwise("first_at"))
        .with_columns(a=pl.int_ranges(0, "n_att"))
        .explode("a")
        .with_columns(row_key=(pl.col("i") * 8 + pl.col("d")) * 8 + pl.col("a"))
        .with_columns(ha=_hashed(pl.col("row_key"), seed * 64 + 5))
    )
    a, n_att, fate = pl.col("a"), pl.col("n_att"), pl.col("fate")
    delivered = ((fate < 62) & (a == n_att - 1)) | ((fate >= 62) & (fate < 64) & (a == 0))  # 2%: then failed
    destination = _chosen(pl.col("dest"), _SCALE_DESTINATIONS)
    kind = _chosen(pl.col("dest"), [DESTINATIONS[name][0] for name in _SCALE_DESTINATIONS])
    failure = _draw("ha", len(_FAILURES), 0)
    status = _chosen(failure, [s for s, _ in _FAILURES], pl.Int64)
    code = _chosen(failure, [c for _, c in _FAILURES])
    code = pl.when(_draw("ha", 50, 8) == 0).then(pl.lit(" ") + code.str.to_uppercase()).otherwise(code)
    delivered_status = pl.when(kind == "webhook").then(200).when(kind.is_in(["s3", "gcs", "azure_blob"])).then(201)
    retry_after = (
        pl.when(status == 429).then(30 + _draw("ha", 3570, 12))
        .when((status == 503) & (_draw("ha", 4, 24) == 0)).then(pl.lit(120, pl.Int64))
    )
    visibility = (
        pl.when(destination == "audit-sftp").then(pl.lit("private"))
        .when(pl.col("hidden") < 3).then(pl.lit(None, pl.Utf8))
        .otherwise(pl.lit("public"))
    )
    return deliveries.select(
        attempt_id=pl.format("att-{}-{}-{}", "number", "d", a.cast(pl.Utf8).str.zfill(2)),
        export_id="export_id",
        destination=destination,
        connector_kind=kind,
        connector_visibility=visibility,
        attempted_at=pl.col("first_at") + a * pl.col("gap"),
        outcome=pl.when(delivered).then(pl.lit("delivered")).otherwise(pl.lit("failed")),
        http_status=pl.when(delivered).then(delivered_status).otherwise(status),
        error_code=pl.when(delivered).then(pl.lit(None, pl.Utf8)).otherwise(code),
        retry_after_seconds=pl.when(delivered).then(pl.lit(None, pl.Int64)).otherwise(retry_after),
        idempotency_key=pl.when("keyed").then(pl.format("idem-{}-{}", "export_id", destination)),
        endpoint=_scaled_endpoint(destination, pl.col("export_id"), _draw("ha", 50, 30) == 0),
        row_key="row_key",
    )


def _scaled_reference_rows(base: pl.DataFrame, seed: int, as_of_us: int) -> pl.DataFrame:
    """~1.5 references per export (2% none), with every column custody checks derive from."""
    refs = (
        base.select("i", "number", "export_id", "generated_at", "digest_hex", hr=_hashed(pl.col("i"), seed * 64 + 6))
        .with_columns(n_refs=pl.when(_draw("hr", 50, 0) == 0).then(0).otherwise(1 + _draw("hr", 2, 8)))
        .with_columns(r=pl.int_ranges(0, "n_refs"))
        .explode("r")
        .drop_nulls("r")
        .with_columns(row_key=pl.col("i") * 4 + pl.col("r"))
        .with_columns(hx=_hashed(pl.col("row_key"), seed * 64 + 7))
    )
    provider_code, lock_code = _draw("hx", 20, 0), _draw("hx", 100, 8)
    provider = (
        pl.when(provider_code < 9).then(pl.lit("aws_s3_object_lock"))
        .when(provider_code < 14).then(pl.lit("azure_immutable_blob"))
        .when(provider_code < 18).then(pl.lit("gcs_bucket_lock"))
        .otherwise(pl.lit("filesystem"))
    )
    lock_mode = (
        pl.when(provider == "filesystem").then(pl.when(lock_code < 50).then(pl.lit(None, pl.Utf8))
                                               .otherwise(pl.lit("none")))
        .when((provider == "azure_immutable_blob") & (lock_code >= 80)).then(pl.lit("governance"))
        .when((provider == "aws_s3_object_lock") & (lock_code >= 95)).then(pl.lit("governance"))
        .otherwise(pl.lit("compliance"))
    )
    digest_code, retain_code, hold_code = _draw("hx", 100, 16), _draw("hx", 100, 24), _draw("hx", 100, 48)
    generated = pl.col("generated_at")
    retain_until = (
        pl.when(retain_code < 90).then(generated + (2557 + 30 + _draw("hx", 365, 32)) * _DAY_US)
        .when(retain_code < 94).then(generated + 1826 * _DAY_US)  # retention_short
        .when(retain_code < 96).then(as_of_us + (1 + _draw("hx", 29, 40)) * _DAY_US)  # expiring
        .when(retain_code < 97).then(as_of_us - (1 + _draw("hx", 100, 40)) * _DAY_US)  # expired
    )
    name = pl.col("export_id") + pl.lit("-") + pl.col("r").cast(pl.Utf8) + pl.lit(".tar.zst")
    uri = (
        pl.when(provider == "aws_s3_object_lock")
        .then(pl.format("s3://evidence-archive-prod/exports/{}?versionId={}", name, pl.col("hx").cast(pl.Utf8)))
        .when(provider == "azure_immutable_blob")
        .then(pl.lit("https://evidencearchive.blob.core.windows.net/worm/") + name)
        .when(provider == "gcs_bucket_lock").then(pl.lit("gs://evidence-lock-prod/exports/") + name)
        .otherwise(pl.lit("file:///srv/worm/exports/") + name)
    )
    return refs.select(
        reference_id=pl.format("ref-{}-{}", "number", "r"),
        export_id="export_id",
        archive_uri=uri,
        archive_provider=provider,
        archived_digest=pl.when(digest_code < 94).then(pl.lit("sha256:") + pl.col("digest_hex"))
        .when(digest_code >= 97).then(pl.lit("sha256:") + pl.col("digest_hex").str.reverse()),  # mismatch
        lock_mode=lock_mode,
        retain_until=retain_until,
        legal_hold=pl.when(hold_code < 3).then(True).when(hold_code < 80).then(False),
        archived_at=pl.when(_draw("hx", 200, 56) == 0).then(as_of_us + _HOUR_US)
        .otherwise(generated + (30 + _draw("hx", 1440, 52)) * _MINUTE_US),
        row_key="row_key",
    )


def _scaled_custody_checks(references: pl.DataFrame, seed: int, as_of_us: int) -> pl.DataFrame:
    """0-4 checks per reference (mean 2); 5% stale, 1% object gone, 0.2% of an unknown reference."""
    checks = (
        references.with_columns(hc=_hashed(pl.col("row_key"), seed * 64 + 8))
        .with_columns(n_checks=_draw("hc", 5, 0), stale=_draw("hc", 20, 4) == 0)
        .with_columns(c=pl.int_ranges(0, "n_checks"))
        .explode("c")
        .drop_nulls("c")
        .with_columns(row_key=pl.col("row_key") * 8 + pl.col("c"))
        .with_columns(hk=_hashed(pl.col("row_key"), seed * 64 + 9))
    )
    c = pl.col("c")
    inventory = c % 2 == 1  # odd checks are inventory listings, even ones checksum jobs
    checked_at = as_of_us - c * _DAY_US - _draw("hk", 86_400, 0) * _US
    return checks.select(
        reference_id=pl.when(_draw("hk", 500, 32) == 0).then(pl.col("reference_id") + pl.lit("-gone"))
        .otherwise("reference_id"),
        checked_at=pl.when("stale").then(checked_at - 9 * _DAY_US).otherwise(checked_at),
        object_present=_draw("hk", 100, 20) != 0,
        observed_digest=pl.when(~inventory & (_draw("hk", 2, 28) == 0)).then("archived_digest"),
        observed_lock_mode=pl.when(inventory).then("lock_mode"),
        observed_retain_until=pl.when(inventory).then("retain_until"),
        observed_legal_hold=pl.when(inventory).then("legal_hold"),
        source=pl.when(inventory).then(pl.lit("inventory-listing")).otherwise(pl.lit("checksum-job")),
        row_key="row_key",
    )


# Value faults (every format) and text faults (JSON Lines only), per log. A fault code is drawn
# per row: 0-2 a value fault, 3-4 a text fault, 5 an exact duplicate, 6 a conflicting pair.
_VALUE_FAULTS: dict[str, list[tuple[str, Any]]] = {
    "exports": [("verification_state", "approved"), ("export_digest", "UPPER"), ("release_record_ref", None)],
    "deliveries": [("http_status", 700), ("outcome", "success"), ("retry_after_seconds", 40_000_000),
                   ("attempt_id", None)],
    "archives": [("lock_mode", "worm"), ("archived_digest", "md5:" + "ab" * 16), ("archive_uri", None)],
    "custody_checks": [("observed_lock_mode", "locked"), ("observed_digest", "UPPER"), ("reference_id", None)],
}
_CONFLICTING_CHANGE: dict[str, tuple[str, Any]] = {  # the second copy of a conflicting pair
    "exports": ("release_record_ref", "rel-2026-conflict"),
    "deliveries": ("idempotency_key", "idem-conflict"),
    "archives": ("archive_provider", "filesystem"),
    "custody_checks": ("observed_lock_mode", "governance"),
}
_DATE_FIELD = {"exports": "updated_at", "deliveries": "attempted_at", "archives": "archived_at",
               "custody_checks": "checked_at"}
_WRONG_TYPES: dict[str, list[tuple[str, str]]] = {  # regex, replacement on the JSON text
    "exports": [(r'"release_record_ref":"[^"]*"', '"release_record_ref":4711')],
    "deliveries": [(r'"http_status":(\d+)', '"http_status":"${1}"'), (r'"http_status":(\d+)', '"http_status":${1}.0')],
    "archives": [(r'"legal_hold":(true|false)', '"legal_hold":"${1}"')],
    "custody_checks": [(r'"object_present":(true|false)', '"object_present":"${1}"')],
}


def _with_faults(frame: pl.DataFrame, log: str, seed: int, text_faults: bool) -> pl.DataFrame:
    """The frame with its value faults applied, duplicates repeated, and a `text_fault` code per row."""
    frame = frame.with_columns(hq=_hashed(pl.col("row_key"), seed * 64 + 20))
    fault = _draw("hq", 1000, 0)
    value_kind = _draw("hq", len(_VALUE_FAULTS[log]), 16)
    faulted = []
    for k, (name, bad) in enumerate(_VALUE_FAULTS[log]):
        hit = (fault < 3) & (value_kind == k)
        replacement = pl.col(name).str.to_uppercase() if bad == "UPPER" else pl.lit(bad, frame.schema[name])
        faulted.append(pl.when(hit).then(replacement).otherwise(pl.col(name)).alias(name))
    n_text = 3 + len(_WRONG_TYPES[log])  # malformed, naive, invalid timestamp, wrong types
    text_fault = pl.when((fault >= 3) & (fault < 5) & text_faults).then(_draw("hq", n_text, 16))
    frame = frame.with_columns(*faulted, text_fault=text_fault,
                               copies=pl.when(fault.is_in([5, 6])).then(2).otherwise(1), conflict=fault == 6)
    frame = frame.with_columns(copy=pl.int_ranges(0, "copies")).explode("copy")
    name, value = _CONFLICTING_CHANGE[log]
    second = (pl.col("copy") == 1) & pl.col("conflict")
    return frame.with_columns(pl.when(second).then(pl.lit(value, frame.schema[name])).otherwise(pl.col(name))
                              .alias(name))


def _json_lines(frame: pl.DataFrame, log: str, columns: list[str]) -> pl.Series:
    """One JSON object per row (timestamps as ISO text with Z), with the text faults applied."""
    as_text = [
        pl.col(name).cast(UTC_US).dt.strftime("%Y-%m-%dT%H:%M:%SZ") if name in _TIMESTAMP_FIELDS[log] else pl.col(name)
        for name in columns
    ]
    lines = frame.select(pl.struct(as_text).struct.json_encode().alias("line")).to_series()
    faulty = frame.select(pl.arg_where(pl.col("text_fault").is_not_null())).to_series()
    if faulty.len() == 0:
        return lines
    date = _DATE_FIELD[log]
    kinds = frame["text_fault"].gather(faulty)
    line, kind = pl.col("line"), pl.col("kind")
    fixed = pl.when(kind == 0).then(line.str.slice(0, line.str.len_chars() // 2))  # malformed JSON
    fixed = fixed.when(kind == 1).then(line.str.replace(f'"{date}":"([^"]*)Z"', f'"{date}":"${{1}}"'))  # naive
    fixed = fixed.when(kind == 2).then(line.str.replace(f'"{date}":"([0-9-]+)T', f'"{date}":"${{1}} '))  # invalid
    for k, (pattern, replacement) in enumerate(_WRONG_TYPES[log], start=3):
        fixed = fixed.when(kind == k).then(line.str.replace(pattern, replacement))
    corrupted = pl.DataFrame({"line": lines.gather(faulty), "kind": kinds}).select(fixed.otherwise(line)).to_series()
    return lines.scatter(faulty, corrupted)


class _ScaledLogWriter:
    """Appends chunks of one log to one file: Parquet row groups or JSON Lines."""

    def __init__(self, log: str, path: Path, fmt: str):
        self.log, self.path, self.fmt = log, path, fmt
        self.columns = LOGS[log].field_names
        self.rows = 0
        self._parquet = None
        self._text = open(path, "wb") if fmt == "jsonl" else None

    def write(self, frame: pl.DataFrame) -> None:
        self.rows += frame.height
        if self.fmt == "jsonl":
            lines = _json_lines(frame, self.log, self.columns)
            pl.DataFrame({"line": lines}).write_csv(self._text, include_header=False, quote_style="never")
            return
        import pyarrow.parquet as pq

        typed = frame.select(
            pl.col(name).cast(UTC_US) if name in _TIMESTAMP_FIELDS[self.log] else pl.col(name)
            for name in self.columns
        ).to_arrow()
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.path, typed.schema, compression="zstd")
        self._parquet.write_table(typed.cast(self._parquet.schema))

    def close(self) -> None:
        if self._text:
            self._text.close()
        if self._parquet:
            self._parquet.close()


def write_scaled(out_dir: str | Path, exports: int, fmt: str = "parquet", seed: int = DEFAULT_SEED,
                 as_of: datetime = DEFAULT_AS_OF, progress: Any = None) -> dict[str, Path]:
    """Write the benchmark set for `exports` exports as <log>.<fmt> files; return log name -> path.

    `progress`, when given, is called with one line of text after each chunk.
    """
    if fmt not in ("parquet", "jsonl"):
        raise ValueError(f"format must be parquet or jsonl, not {fmt!r}")
    if exports < 1:
        raise ValueError("exports must be at least 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    as_of_us = int(as_of.timestamp()) * _US + as_of.microsecond
    writers = {log: _ScaledLogWriter(log, out / f"{log}.{fmt}", fmt) for log in LOG_NAMES}
    try:
        for lo in range(0, exports, SCALE_CHUNK_EXPORTS):
            hi = min(lo + SCALE_CHUNK_EXPORTS, exports)
            base = _scaled_export_base(lo, hi, exports, seed, as_of_us)
            references = _scaled_reference_rows(base, seed, as_of_us)
            frames = {
                "exports": _scaled_exports(base, as_of_us),
                "deliveries": _scaled_deliveries(base, seed, as_of_us),
                "archives": references,
                "custody_checks": _scaled_custody_checks(references, seed, as_of_us),
            }
            for log, frame in frames.items():
                writers[log].write(_with_faults(frame, log, seed, text_faults=fmt == "jsonl"))
            if progress:
                progress(f"{hi:,}/{exports:,} exports")
    finally:
        for writer in writers.values():
            writer.close()
    if progress:
        progress(", ".join(f"{log} {writer.rows:,} rows" for log, writer in writers.items()))
    return {log: writer.path for log, writer in writers.items()}
