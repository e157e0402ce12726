"""Custody checks derived from S3 reports (docs/real-sources.md#s3-inventory-reports, 10.3): archive references + S3 Inventory
and Batch Operations completion report rows + as_of + the policy's inventory prefixes ->
custody checks in the shape of docs/inputs.md#custody-checks-log. Pure Polars; no file, clock or database.

Interface
---------
``derived_custody(archives, inventory_reports, inventory_rows, batch_rows, as_of,
s3_inventory_prefixes=("",)) -> DerivedCustody``

- ``archives``: accepted archive records with ``reference_id``, ``archived_at`` (UTC) and
  the S3 identity of exportaudit.sources.s3_uri: ``s3_bucket``, ``s3_key``,
  ``s3_version_id`` (the string ``"null"`` names the null version; null: no version id).
- ``inventory_reports``: one row per inventory report (``s3_inventory.REPORT_SCHEMA``):
  ``report_id``, ``report_time``, ``source_bucket``, ``all_versions``,
  ``has_object_lock_mode``. A report covers its bucket even when it has no row.
- ``inventory_rows``: rows as read (``s3_inventory.ROW_SCHEMA``): ``report_id``, ``key``,
  ``version_id`` (null when empty), ``is_latest``, ``is_delete_marker``,
  ``object_lock_mode`` (GOVERNANCE/COMPLIANCE, any case), ``object_lock_retain_until_date``,
  ``object_lock_legal_hold_status`` (ON/OFF, any case) and, when present,
  ``reason_codes``: quarantined rows (non-empty list) are not used.
- ``batch_rows``: completion report rows (``s3_batch.ROW_SCHEMA``): ``report_id``,
  ``report_time``, ``bucket``, ``key``, ``version_id``, ``task_status``,
  ``observed_digest``, ``not_found`` and, when present, ``reason_codes``.
- Any of the three report frames may be None (no such reports).

``DerivedCustody.checks`` has the custody-check columns consumed by
transforms.archive_health (``reference_id, checked_at, object_present, observed_digest,
observed_lock_mode, observed_retain_until, observed_legal_hold, source``) plus
``report_id``; one row per (report, covered reference), sorted by checked_at,
reference_id, source, report_id. ``DerivedCustody.counts`` is the health summary's
``derived_custody_checks`` ({"s3_inventory": n, "s3_batch_checksum": n}) and
``inconclusive_batch_results`` the number of (failed row that proves nothing, reference
it matches) pairs.

Rules
-----
Only reports with report_time <= as_of and references with archived_at <= as_of take part
(of any export). Inventory (source ``s3_inventory``, checked_at = report time): a report
covers the references with s3_bucket = its sourceBucket and s3_key starting with one of
the prefixes; a version-pinned reference (``"null"`` included) is not covered by a
current-versions report. A pinned reference matches the row of its key and version
(an empty VersionId is ``"null"``); an unpinned one the key's row with IsLatest true
(all-versions report) or the key's row (current-versions report). No matching row, or a
delete marker: object_present false and every observed field null. Otherwise
observed_lock_mode = the lowercased ObjectLockMode, ``none`` when empty, null when the
report has no such column; observed_retain_until = ObjectLockRetainUntilDate;
observed_legal_hold = ON -> true, OFF -> false, else null; observed_digest null.
Batch (source ``s3_batch_checksum``, checked_at = ReportCreationDate): rows match
references by bucket, key and version (a reference without a version id, and one pinned
to ``"null"``, match rows of the null version: VersionId empty or ``null``). A succeeded
row: present, observed_digest from the row (SHA256 FULL_OBJECT) or null; a failed
``not_found`` row: absent; any other failed row: no check, counted as inconclusive; rows
of another task status: nothing.

Decision where the documented contract is silent: when several rows of one report match one reference
(it never happens in a well-formed report), they give one check combined like checks at
one instant (docs/inputs.md#custody-checks-log): absent if any says absent (then all observed fields null), else
the weakest value of each observed field.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import polars as pl

from transforms.timestamps import UTC_US

S3_INVENTORY, S3_BATCH_CHECKSUM = "s3_inventory", "s3_batch_checksum"
NULL_VERSION = "null"
CHECK_SCHEMA: dict[str, pl.DataType] = {
    "reference_id": pl.Utf8,
    "checked_at": UTC_US,
    "object_present": pl.Boolean,
    "observed_digest": pl.Utf8,
    "observed_lock_mode": pl.Utf8,
    "observed_retain_until": UTC_US,
    "observed_legal_hold": pl.Boolean,
    "source": pl.Utf8,
    "report_id": pl.Utf8,
}
_LOCK_RANK = {"none": 0, "governance": 1, "compliance": 2}
_INVENTORY_ROW_COLUMNS: dict[str, pl.DataType] = {  # the inventory row columns used here
    "report_id": pl.Utf8, "key": pl.Utf8, "version_id": pl.Utf8, "is_latest": pl.Boolean,
    "is_delete_marker": pl.Boolean, "object_lock_mode": pl.Utf8, "object_lock_retain_until_date": UTC_US,
    "object_lock_legal_hold_status": pl.Utf8,
}


class DerivedCustody(NamedTuple):
    checks: pl.DataFrame
    counts: dict[str, int]  # derived_custody_checks: {"s3_inventory": n, "s3_batch_checksum": n}
    inconclusive_batch_results: int


def _accepted(rows: pl.DataFrame) -> pl.DataFrame:
    if "reason_codes" in rows.columns:
        return rows.filter(pl.col("reason_codes").list.len() == 0)
    return rows


def _weakest_per_check(matches: pl.DataFrame) -> pl.DataFrame:
    """One check per (report_id, reference_id): absent if any match is absent, else the weakest
    observed values (lock none < governance < compliance, hold false < true, earliest
    retain_until, smallest digest)."""
    lock_rank = pl.col("observed_lock_mode").replace_strict(_LOCK_RANK, default=None, return_dtype=pl.Int8)
    combined = matches.with_columns(__lock_rank=lock_rank).group_by("report_id", "reference_id").agg(
        checked_at=pl.col("checked_at").first(),
        source=pl.col("source").first(),
        object_present=pl.col("object_present").all(),
        observed_digest=pl.col("observed_digest").min(),
        __lock_rank=pl.col("__lock_rank").min(),
        observed_retain_until=pl.col("observed_retain_until").min(),
        observed_legal_hold=pl.col("observed_legal_hold").min(),
    )
    lock_mode = pl.col("__lock_rank").replace_strict({v: k for k, v in _LOCK_RANK.items()}, default=None,
                                                     return_dtype=pl.Utf8)
    present = pl.col("object_present")
    return combined.with_columns(
        observed_lock_mode=pl.when(present).then(lock_mode),
        observed_digest=pl.when(present).then(pl.col("observed_digest")),
        observed_retain_until=pl.when(present).then(pl.col("observed_retain_until")),
        observed_legal_hold=pl.when(present).then(pl.col("observed_legal_hold")),
    ).select([pl.col(name).cast(dtype) for name, dtype in CHECK_SCHEMA.items()])


def _empty_checks() -> pl.DataFrame:
    return pl.DataFrame(schema=CHECK_SCHEMA)


def _empty_references() -> pl.DataFrame:
    return pl.DataFrame(schema={"reference_id": pl.Utf8, "s3_bucket": pl.Utf8, "s3_key": pl.Utf8,
                                "s3_version_id": pl.Utf8})


def inventory_checks(references: pl.DataFrame, reports: pl.DataFrame, rows: pl.DataFrame,
                     as_of: datetime, prefixes: Sequence[str]) -> pl.DataFrame:
    """docs/real-sources.md#s3-inventory-reports's derived checks (source s3_inventory)."""
    now = pl.lit(as_of, dtype=UTC_US)
    reports = reports.filter(pl.col("report_time") <= now).select(
        "report_id", "report_time", "source_bucket", "all_versions", "has_object_lock_mode")
    if not prefixes or reports.height == 0 or references.height == 0:
        return _empty_checks()
    in_scope = pl.any_horizontal([pl.col("s3_key").str.starts_with(p) for p in prefixes])
    pairs = (
        references.filter(in_scope)
        .join(reports, left_on="s3_bucket", right_on="source_bucket", how="inner")
        .filter(pl.col("all_versions") | pl.col("s3_version_id").is_null())  # pinned: all-versions reports only
    )
    rows = _accepted(rows).join(reports.select("report_id", "all_versions"), on="report_id", how="inner").select(
        "report_id", "key", "all_versions", "is_latest", "is_delete_marker",
        "object_lock_mode", "object_lock_retain_until_date", "object_lock_legal_hold_status",
        version_key=pl.coalesce(pl.col("version_id"), pl.lit(NULL_VERSION)),
        matched=pl.lit(True),
    )
    row_columns = ["is_delete_marker", "object_lock_mode", "object_lock_retain_until_date",
                   "object_lock_legal_hold_status", "matched"]
    pinned = pairs.filter(pl.col("s3_version_id").is_not_null()).join(
        rows.select("report_id", "key", "version_key", *row_columns),
        left_on=["report_id", "s3_key", "s3_version_id"], right_on=["report_id", "key", "version_key"], how="left")
    current_rows = rows.filter(~pl.col("all_versions") | pl.col("is_latest").fill_null(False))
    unpinned = pairs.filter(pl.col("s3_version_id").is_null()).join(
        current_rows.select("report_id", "key", *row_columns),
        left_on=["report_id", "s3_key"], right_on=["report_id", "key"], how="left")
    matches = pl.concat([pinned.select(*pairs.columns, *row_columns), unpinned.select(*pairs.columns, *row_columns)])
    present = pl.col("matched").fill_null(False) & ~pl.col("is_delete_marker").fill_null(False)
    hold = pl.col("object_lock_legal_hold_status").str.to_uppercase()
    matches = matches.with_columns(
        object_present=present,
        observed_digest=pl.lit(None, pl.Utf8),
        observed_lock_mode=pl.when(present & pl.col("has_object_lock_mode")).then(
            pl.coalesce(pl.col("object_lock_mode").str.to_lowercase(), pl.lit("none"))),
        observed_retain_until=pl.when(present).then(pl.col("object_lock_retain_until_date")),
        observed_legal_hold=pl.when(present).then(pl.when(hold == "ON").then(True).when(hold == "OFF").then(False)),
        checked_at=pl.col("report_time"),
        source=pl.lit(S3_INVENTORY),
    )
    return _weakest_per_check(matches)


def batch_checks(references: pl.DataFrame, rows: pl.DataFrame, as_of: datetime) -> tuple[pl.DataFrame, int]:
    """docs/real-sources.md#s3-batch-operations-checksum-reports's derived checks (source s3_batch_checksum) and the inconclusive pairs."""
    now = pl.lit(as_of, dtype=UTC_US)
    rows = _accepted(rows).filter(pl.col("report_time") <= now).select(
        "report_id", "report_time", "bucket", "key", "task_status", "observed_digest", "not_found",
        version_key=pl.when(pl.col("version_id").is_null() | (pl.col("version_id") == NULL_VERSION))
        .then(pl.lit(NULL_VERSION)).otherwise(pl.col("version_id")),
    )
    pairs = references.with_columns(
        ref_version_key=pl.coalesce(pl.col("s3_version_id"), pl.lit(NULL_VERSION))
    ).join(rows, left_on=["s3_bucket", "s3_key", "ref_version_key"], right_on=["bucket", "key", "version_key"],
           how="inner")
    succeeded = pl.col("task_status") == "succeeded"
    failed = pl.col("task_status") == "failed"
    absent = failed & pl.col("not_found").fill_null(False)
    inconclusive = pairs.filter(failed & ~pl.col("not_found").fill_null(False)).height
    proving = pairs.filter(succeeded | absent).with_columns(
        object_present=succeeded,
        observed_digest=pl.when(succeeded).then(pl.col("observed_digest")),
        observed_lock_mode=pl.lit(None, pl.Utf8),
        observed_retain_until=pl.lit(None, UTC_US),
        observed_legal_hold=pl.lit(None, pl.Boolean),
        checked_at=pl.col("report_time"),
        source=pl.lit(S3_BATCH_CHECKSUM),
    )
    if proving.height == 0:
        return _empty_checks(), inconclusive
    return _weakest_per_check(proving), inconclusive


def derived_custody(archives: pl.DataFrame | pl.LazyFrame, inventory_reports: pl.DataFrame | None,
                    inventory_rows: pl.DataFrame | None, batch_rows: pl.DataFrame | None, as_of: datetime,
                    s3_inventory_prefixes: Sequence[str] = ("",)) -> DerivedCustody:
    """Custody checks derived from every S3 report dated at or before as_of (docs/real-sources.md#s3-inventory-reports, 10.3)."""
    has_inventory = inventory_reports is not None and inventory_reports.height > 0
    has_batch = batch_rows is not None and batch_rows.height > 0
    # Only the S3 identity of the references is read, and only when some report can cover them.
    references = _empty_references() if not (has_inventory or has_batch) else archives.lazy().filter(
        (pl.col("archived_at") <= pl.lit(as_of, dtype=UTC_US)) & pl.col("s3_bucket").is_not_null()
        & pl.col("s3_key").is_not_null()
    ).select("reference_id", "s3_bucket", "s3_key", "s3_version_id").collect()
    parts = []
    if has_inventory:
        if inventory_rows is None:
            inventory_rows = pl.DataFrame(schema=_INVENTORY_ROW_COLUMNS)
        parts.append(inventory_checks(references, inventory_reports, inventory_rows, as_of,
                                      list(s3_inventory_prefixes)))
    inconclusive = 0
    if has_batch:
        checks, inconclusive = batch_checks(references, batch_rows, as_of)
        parts.append(checks)
    checks = pl.concat(parts, how="vertical") if parts else _empty_checks()
    checks = checks.sort("checked_at", "reference_id", "source", "report_id")
    counts = {
        S3_INVENTORY: checks.filter(pl.col("source") == S3_INVENTORY).height,
        S3_BATCH_CHECKSUM: checks.filter(pl.col("source") == S3_BATCH_CHECKSUM).height,
    }
    return DerivedCustody(checks=checks, counts=counts, inconclusive_batch_results=inconclusive)
