"""The archive reference health report (docs/archive-health.md): exports + archives + custody checks + as_of
+ policy -> one record per checked export and the alerts (custody gaps).

Read top to bottom: checked exports, their references, effective values from the latest
custody checks, then the findings table, one named expression per check.
"""

from __future__ import annotations

import itertools
import tempfile
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator, NamedTuple

import duckdb
import polars as pl

from exportaudit.vocabulary import (
    CRITICAL, HEALTHY, MISSING_REFERENCE, ORPHAN_CHECKS, ORPHAN_REFERENCE, REFERENCE_CHECKS, SEVERITIES, WARNING,
)
from transforms.current_state import current_exports, up_to
from transforms.timestamps import UTC_US

# check -> severity, in the order of docs/archive-health.md (per reference, per export, orphans).
CHECK_SEVERITY = {
    "object_missing": CRITICAL,
    "digest_mismatch": CRITICAL,
    "digest_unverifiable": WARNING,
    "not_immutable": CRITICAL,
    "governance_mode": WARNING,
    "retention_missing": WARNING,
    "retention_expired": CRITICAL,
    "retention_expiring": WARNING,
    "retention_short": WARNING,
    "check_stale": WARNING,
    MISSING_REFERENCE: CRITICAL,
    ORPHAN_REFERENCE: WARNING,
}

CHECK_MESSAGES = {
    "object_missing": "The latest custody check found the archived object missing.",
    "digest_mismatch": "The archived digest differs from the export digest.",
    "digest_unverifiable": "No digest was recorded or observed for this reference; its content cannot be verified.",
    "not_immutable": "The reference has no WORM lock and no legal hold.",
    "governance_mode": "The reference is locked in governance mode, which privileged users can bypass.",
    "retention_missing": "The reference is locked but has no retention date and no legal hold.",
    "retention_expired": "The retention period has ended and there is no legal hold.",
    "retention_expiring": "The retention period ends within the expiry warning window and there is no legal hold.",
    "retention_short": "The retention period ends before the export's required retention.",
    "check_stale": "No recent custody check: the latest one is missing or older than the maximum check age.",
    MISSING_REFERENCE: "The verified export has no archive reference.",
    ORPHAN_REFERENCE: "The archive reference names an export with no export record.",
}

EXPORT_COLUMNS = ("export_id", "release_record_ref", "custody_status", "represented", "reference_count",
                  "intact_reference_count", "critical_count", "warning_count")
ALERT_COLUMNS = ("alert_id", "severity", "check", "export_id", "reference_id", "release_record_ref",
                 "archive_provider", "archive_uri", "message")

_US_PER_DAY = 86_400_000_000


class ArchiveHealth(NamedTuple):
    exports: pl.DataFrame  # one record per checked export, sorted by export_id
    alerts: pl.DataFrame  # every finding, sorted by severity, export_id, reference_id (null first), check
    orphan_references: int
    unchecked_references: int
    unmatched_custody_checks: int
    # Custody checks derived from S3 reports (docs/real-sources.md#how-derived-checks-combine), set by
    # the caller that derived them (exportaudit.evaluation): one per derived check, by source.
    derived_custody_checks: dict = {"s3_inventory": 0, "s3_batch_checksum": 0}
    inconclusive_batch_results: int = 0


def _days(days: float) -> pl.Expr:
    return pl.duration(microseconds=round(float(days) * _US_PER_DAY))


LOCK_STRENGTH = {"none": 0, "governance": 1, "compliance": 2}  # weakest first (docs/archive-health.md#custody-observations)
OBSERVED_FIELDS = ("observed_digest", "observed_lock_mode", "observed_retain_until", "observed_legal_hold")


def latest_custody(custody_checks: pl.LazyFrame, as_of: datetime) -> pl.LazyFrame:
    """Per reference, over the checks at or before as_of (docs/inputs.md#custody-checks-log): the latest
    checked_at; object_present of the checks at that instant (false if any of them says false); and each
    observed_* field's latest non-null value. Checks sharing an instant (different sources, or two
    S3 reports made together) never hide a disagreement: the weakest observation wins — lock mode
    none < governance < compliance, legal hold false < true, the earliest retain_until, the smallest
    digest in code-point order."""
    checks = up_to(custody_checks, "checked_at", as_of).select(
        "reference_id", "checked_at", "object_present", *OBSERVED_FIELDS,
    ).with_columns(
        __lock_rank=pl.col("observed_lock_mode").replace_strict(LOCK_STRENGTH, default=None, return_dtype=pl.Int8),
    ).collect()  # read once, used by both steps below

    # Two steps (filtered aggregations inside one group_by took 4-5 s on 3M checks): first, beside
    # each check, its reference's latest instant, overall and per observed field where it is not
    # null (window maxima: five columns added to the checks, where a group_by and a join back
    # copied every column: 2M checks +1.1 -> +0.9 GiB; the archive health at 1M exports, 2.9M
    # checks, 4.2 -> 3.7 s); then, per reference, on the checks at those instants, object_present
    # and the weakest values (a when/then keeps the rows of other instants null, which all() and
    # min() skip).
    observed = ("observed_digest", "__lock_rank", "observed_retain_until", "observed_legal_hold")
    checked_at = pl.col("checked_at")
    latest = checks.with_columns(
        latest_checked_at=checked_at.max().over("reference_id"),
        **{f"__at_{column}": pl.when(pl.col(column).is_not_null()).then(checked_at).max().over("reference_id")
           for column in observed},
    )
    del checks

    def at(instant: str, column: str) -> pl.Expr:
        return pl.when(checked_at == pl.col(instant)).then(pl.col(column))

    found = latest.group_by("reference_id").agg(
        pl.col("latest_checked_at").first(),
        object_present=at("latest_checked_at", "object_present").all(),
        **{column: at(f"__at_{column}", column).min() for column in observed},
    )
    lock_mode = pl.col("__lock_rank").replace_strict({rank: mode for mode, rank in LOCK_STRENGTH.items()},
                                                     default=None, return_dtype=pl.Utf8)
    return found.lazy().with_columns(observed_lock_mode=lock_mode).drop("__lock_rank")


def reference_findings(references: pl.LazyFrame, as_of: datetime, policy) -> pl.LazyFrame:
    """One boolean column per reference check (docs/archive-health.md), on effective values."""
    now = pl.lit(as_of, dtype=UTC_US)
    digest = pl.coalesce("observed_digest", "archived_digest")
    lock_mode = pl.coalesce("observed_lock_mode", "lock_mode", pl.lit("none"))
    retain_until = pl.coalesce("observed_retain_until", "retain_until")
    legal_hold = pl.coalesce("observed_legal_hold", "legal_hold", pl.lit(False))
    effective = references.with_columns(
        effective_digest=digest, effective_lock_mode=lock_mode,
        effective_retain_until=retain_until, effective_legal_hold=legal_hold,
    )
    digest, lock_mode = pl.col("effective_digest"), pl.col("effective_lock_mode")
    retain_until, no_hold = pl.col("effective_retain_until"), ~pl.col("effective_legal_hold")
    checks = {
        "object_missing": pl.col("object_present") == False,  # noqa: E712 (null: never checked)
        "digest_mismatch": digest.is_not_null() & (digest != pl.col("export_digest")),
        "digest_unverifiable": digest.is_null(),
        "not_immutable": (lock_mode == "none") & no_hold,
        "governance_mode": (lock_mode == "governance") & pl.lit(not policy.accept_governance_mode),
        "retention_missing": lock_mode.is_in(["compliance", "governance"]) & retain_until.is_null() & no_hold,
        "retention_expired": (retain_until <= now) & no_hold,
        "retention_expiring": (retain_until > now) & (retain_until <= now + _days(policy.expiry_warning_days)) & no_hold,
        "retention_short": retain_until < pl.col("required_retain_until"),
        "check_stale": pl.col("latest_checked_at").is_null()
        | (pl.col("latest_checked_at") < now - _days(policy.max_check_age_days)),
    }
    return effective.with_columns(**{check: expr.fill_null(False) for check, expr in checks.items()})


def alert_ids(alerts: pl.DataFrame) -> pl.Series:
    """First 16 hex chars of sha256("export_id|reference_id|check"), null reference_id as "".

    Polars has no sha256; DuckDB's in-memory engine hashes the whole column at once.
    """
    keys = alerts.select(
        key=pl.concat_str([pl.col("export_id"), pl.col("reference_id").fill_null(""), pl.col("check")], separator="|")
    )
    with duckdb.connect() as con:
        con.register("alert_keys", keys)
        hashed = con.sql("select left(sha256(key), 16) as alert_id from alert_keys").pl()
    return hashed.get_column("alert_id")


class _ReferencePart(NamedTuple):
    """What the per-reference checks give for one bucket of references (see archive_health)."""
    alerts: pl.DataFrame | pl.LazyFrame  # export_id, reference_id, check, archive_provider, archive_uri
    counts: pl.DataFrame  # per export: reference_count, intact_reference_count (of this bucket's references)
    orphan_references: int
    unchecked_references: int
    unmatched_custody_checks: int


def in_bucket(records: pl.LazyFrame, bucket: int, buckets: int) -> pl.LazyFrame:
    """The records whose reference_id falls in this bucket (of `buckets`, by a hash of the id)."""
    if buckets == 1:
        return records
    return records.filter(pl.col("reference_id").hash() % buckets == bucket)


def _reference_part(archives: pl.LazyFrame, custody_checks: pl.LazyFrame, current: pl.LazyFrame,
                    checked_exports: pl.LazyFrame, as_of: datetime, policy) -> _ReferencePart:
    """The per-reference checks (docs/archive-health.md) of some references: their findings, orphans,
    unchecked references, and the custody checks that match none of them. `archives` and
    `custody_checks` hold the same references (a bucket), `current` and `checked_exports` all exports."""
    references = up_to(archives, "archived_at", as_of).select(
        "reference_id", "export_id", "archived_digest", "lock_mode", "retain_until", "legal_hold")
    custody = latest_custody(custody_checks, as_of)
    # The export ids known at as_of are those of the current exports.
    known = current.select("export_id", export_known=pl.lit(True))
    references = references.join(known, on="export_id", how="left").collect().lazy()
    orphans = references.filter(pl.col("export_known").is_null()).select("export_id", "reference_id")

    checked_references = reference_findings(
        references.join(checked_exports, on="export_id", how="inner").join(custody, on="reference_id", how="left"),
        as_of, policy,
    ).select("export_id", "reference_id", *REFERENCE_CHECKS).collect()
    del custody

    reference_alerts = (
        checked_references.lazy()
        .unpivot(index=["export_id", "reference_id"], on=list(REFERENCE_CHECKS), variable_name="check",
                 value_name="fires")
        .filter(pl.col("fires"))
        .drop("fires")
    )
    counts = checked_references.group_by("export_id").agg(
        reference_count=pl.len(),
        intact_reference_count=(~pl.any_horizontal(
            [pl.col(c) for c in REFERENCE_CHECKS if CHECK_SEVERITY[c] == CRITICAL])).sum(),
    )
    del checked_references
    orphan_alerts = orphans.select("export_id", "reference_id", check=pl.lit(ORPHAN_REFERENCE))
    alerts = pl.concat([reference_alerts, orphan_alerts], how="vertical").collect()
    # Late: where each alerted reference is (long columns, read for the alert rows only).
    alerted = alerts.lazy().select("reference_id").unique()
    locations = archives.select("reference_id", "archive_provider", "archive_uri").join(
        alerted, on="reference_id", how="semi").collect(engine="streaming")
    alerts = alerts.join(locations, on="reference_id", how="left")

    unchecked = references.select("export_id").join(
        current.filter(pl.col("verification_state") != "verified").select("export_id"), on="export_id", how="inner")
    archived_ids = archives.select("reference_id").unique()
    unmatched = up_to(custody_checks, "checked_at", as_of).join(archived_ids, on="reference_id", how="anti")
    count = lambda frame: frame.select(pl.len()).collect().item()  # noqa: E731
    return _ReferencePart(alerts, counts, count(orphans), count(unchecked), count(unmatched))


# The checks in code-point order: a check's position here sorts as its name does.
_CHECKS_IN_ORDER = sorted(CHECK_SEVERITY)


def _by_check(values: dict[str, str]) -> pl.Series:
    """values[check] for each check of _CHECKS_IN_ORDER, as a Series to gather from by check code."""
    return pl.Series([values[check] for check in _CHECKS_IN_ORDER], dtype=pl.Utf8)


def _sorted_alerts(alert_rows: list[pl.DataFrame], release_refs: pl.DataFrame) -> pl.DataFrame:
    """The alert rows (frames of export_id, reference_id, check, archive_provider, archive_uri; the
    list is emptied) as ALERT_COLUMNS, sorted by severity, export_id, reference_id (null first),
    check. Memory: the rows are put in order a column at a time, each column let go once gathered,
    and the columns derived from others (release record, alert id, severity, message) are made in
    order, so the alerts are never held twice (a whole-frame join and sort each copied every
    column; at 2.4M alerts this step now adds +240 MiB instead of +340 MiB). check, severity and
    message are gathered by check code from a dozen strings, so their rows share those strings
    (made per row, the message column alone took ~50 bytes an alert)."""
    found = pl.concat(alert_rows, how="vertical_relaxed")
    alert_rows.clear()
    found = found.with_columns(check=pl.col("check").replace_strict(
        {check: code for code, check in enumerate(_CHECKS_IN_ORDER)}, return_dtype=pl.UInt8))
    severity_rank = pl.col("check").replace_strict(
        {code: SEVERITIES.index(CHECK_SEVERITY[check]) for code, check in enumerate(_CHECKS_IN_ORDER)},
        return_dtype=pl.Int8)
    order = found.select(pl.arg_sort_by([severity_rank, pl.col("export_id"), pl.col("reference_id"), pl.col("check")],
                                        nulls_last=False)).to_series()
    columns = {}
    for name in ("check", "export_id", "reference_id", "archive_provider", "archive_uri"):
        columns[name] = found.get_column(name).gather(order)
        found = found.drop(name)
    del found, order
    check_code = columns.pop("check")
    alerts = pl.DataFrame({"check": pl.Series(_CHECKS_IN_ORDER, dtype=pl.Utf8).gather(check_code), **columns})
    del columns
    # The export's release record; orphans have no export record (no release_record_ref).
    release_record_ref = alerts.select("export_id").join(release_refs, on="export_id", how="left",
                                                         maintain_order="left").get_column("release_record_ref")
    alerts = alerts.with_columns(release_record_ref=pl.when(pl.col("check") != ORPHAN_REFERENCE)
                                 .then(release_record_ref))
    return alerts.with_columns(
        alert_id=alert_ids(alerts),
        severity=_by_check(CHECK_SEVERITY).gather(check_code),
        message=_by_check(CHECK_MESSAGES).gather(check_code),
    ).select(ALERT_COLUMNS)


@contextmanager
def _alerts_set_aside(to_disk: bool, directory: Path | None) -> Iterator:
    """set_aside(part) -> the part, its alert rows written to an Arrow IPC file in a temporary
    directory (under `directory`, or the system's) and read back lazily, when to_disk; else as it
    is. The files go when the block ends. Why: held in memory between buckets, the alert rows
    (and the allocator pages they pin) grew the rules' peak by ~0.12 GiB per bucket of 2M
    references (docs/archive-health.md#memory)."""
    if not to_disk:
        yield lambda part: part
        return
    with tempfile.TemporaryDirectory(prefix="exportaudit.alerts.", dir=directory) as spill:
        numbers = itertools.count()

        def set_aside(part: _ReferencePart) -> _ReferencePart:
            path = Path(spill) / f"bucket-{next(numbers)}.arrow"
            part.alerts.write_ipc(path, compression="lz4")
            return part._replace(alerts=pl.scan_ipc(path))
        yield set_aside


def archive_health(exports: pl.LazyFrame, archives: pl.LazyFrame, custody_checks: pl.LazyFrame,
                   as_of: datetime, policy, reference_buckets: int = 1,
                   spill_directory: Path | None = None) -> ArchiveHealth:
    """docs/archive-health.md: findings per reference of every verified export, missing references, orphans.

    Memory: the rules read only the columns they use; the long descriptive ones (release_record_ref,
    archive_provider, archive_uri) are joined in at the end, to the alert rows only (by export_id /
    reference_id: the natural keys of the current exports and of the archives). Every per-reference
    step holds one row per reference: with reference_buckets > 1 they run on one bucket of references
    (and their custody checks) at a time; the per-export counts are kept, and each bucket's alert rows
    are set aside in a file (in a temporary directory under spill_directory) until all are done."""
    current = current_exports(
        exports.select("export_id", "updated_at", "verification_state", "release_record_ref", "export_digest",
                       "generated_at", "required_retain_until"), as_of,
    ).drop("updated_at").collect().lazy()  # used several times below: computed once
    verified = current.filter(pl.col("verification_state") == "verified")
    checked_exports = verified.select(
        "export_id", "export_digest",
        required_retain_until=pl.coalesce(
            "required_retain_until", pl.col("generated_at") + _days(policy.required_retention_days)
        ),
    ).collect().lazy()
    with _alerts_set_aside(reference_buckets > 1, spill_directory) as set_aside:
        parts = [set_aside(_reference_part(in_bucket(archives, bucket, reference_buckets),
                                           in_bucket(custody_checks, bucket, reference_buckets), current,
                                           checked_exports, as_of, policy))
                 for bucket in range(reference_buckets)]
        return _assembled(parts, verified)


def _assembled(parts: list[_ReferencePart], verified: pl.LazyFrame) -> ArchiveHealth:
    """The answer from the buckets' parts and the verified current exports: per-export counts and
    records, missing-reference alerts, and every alert in order."""
    # A reference's counts go to its export: the buckets' counts add up.
    reference_counts = pl.concat([part.counts for part in parts]).group_by("export_id").agg(
        pl.col("reference_count", "intact_reference_count").sum())
    checked = verified.select("export_id", "release_record_ref").collect() \
        .join(reference_counts, on="export_id", how="left").with_columns(pl.col("reference_count", "intact_reference_count").fill_null(0).cast(pl.Int64))
    missing_reference_alerts = checked.lazy().filter(pl.col("reference_count") == 0).select(
        "export_id", reference_id=pl.lit(None, pl.Utf8), check=pl.lit(MISSING_REFERENCE),
        archive_provider=pl.lit(None, pl.Utf8), archive_uri=pl.lit(None, pl.Utf8),  # it names no archive
    ).collect()
    alert_rows = [*(part.alerts.lazy().collect() for part in parts), missing_reference_alerts]
    parts = [part._replace(alerts=None) for part in parts]  # the alert rows live on in alert_rows only
    del missing_reference_alerts
    alerts = _sorted_alerts(alert_rows, checked.select("export_id", "release_record_ref"))
    per_export_alerts = alerts.filter(~pl.col("check").is_in(list(ORPHAN_CHECKS))).group_by("export_id").agg(
        critical_count=(pl.col("severity") == CRITICAL).sum().cast(pl.Int64),
        warning_count=(pl.col("severity") == WARNING).sum().cast(pl.Int64),
    )
    export_records = (
        checked.join(per_export_alerts, on="export_id", how="left")
        .with_columns(pl.col("critical_count", "warning_count").fill_null(0))
        .with_columns(represented=pl.col("intact_reference_count") > 0)
        .with_columns(
            custody_status=pl.when(~pl.col("represented")).then(pl.lit(CRITICAL))
            .when(pl.col("warning_count") + pl.col("critical_count") > 0).then(pl.lit(WARNING))
            .otherwise(pl.lit(HEALTHY))
        )
        .sort("export_id")
        .select(EXPORT_COLUMNS)
    )

    return ArchiveHealth(
        exports=export_records,
        alerts=alerts,
        orphan_references=sum(part.orphan_references for part in parts),
        unchecked_references=sum(part.unchecked_references for part in parts),
        unmatched_custody_checks=sum(part.unmatched_custody_checks for part in parts),
    )
