"""docs/real-sources.md#s3-inventory-reports / 10.3: custody checks derived from S3 Inventory and Batch Operations reports."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from exportaudit.sources import s3_batch, s3_inventory
from exportaudit.sources.s3_uri import s3_identity_columns
from tests.test_s3_batch import SHA_HEX, sha_message, write_batch
from tests.test_s3_inventory import (
    CURRENT_SCHEMA,
    all_versions_row,
    csv_gz,
    write_inventory,
)
from transforms.derived_custody import CHECK_SCHEMA, derived_custody
from transforms.timestamps import UTC_US

T0 = datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
AS_OF = datetime(2024, 5, 2, tzinfo=timezone.utc)
RETAIN = datetime(2031, 1, 1, tzinfo=timezone.utc)
INV_COLUMNS = ("reference_id", "object_present", "observed_lock_mode", "observed_retain_until", "observed_legal_hold")


def archives(*refs: tuple[str, str], archived_at: datetime = T0 - timedelta(days=1)) -> pl.DataFrame:
    frame = pl.DataFrame({"reference_id": [r for r, _ in refs], "archive_uri": [u for _, u in refs]})
    return frame.with_columns(*s3_identity_columns(pl.col("archive_uri")),
                              archived_at=pl.lit(archived_at, dtype=UTC_US))


def inventory_report(report_id: str = "r1", bucket: str = "evidence-bucket", time: datetime = T0,
                     all_versions: bool = True, lock_columns: bool = True) -> pl.DataFrame:
    return pl.DataFrame([{
        "report_id": report_id, "manifest": f"{report_id}/manifest.json", "source_bucket": bucket,
        "report_time": time, "file_format": "CSV", "data_files": 1, "all_versions": all_versions,
        "has_object_lock_mode": lock_columns, "has_object_lock_retain_until_date": lock_columns,
        "has_object_lock_legal_hold_status": lock_columns}], schema=s3_inventory.REPORT_SCHEMA)


def inventory_rows(*rows: dict, report_id: str = "r1") -> pl.DataFrame:
    defaults = {"report_id": report_id, "source_file": "data/x.csv.gz", "source_row": 1, "report_time": T0,
                "bucket": "evidence-bucket", "version_id": None, "is_latest": True, "is_delete_marker": False,
                "object_lock_mode": "COMPLIANCE", "object_lock_retain_until_date": RETAIN,
                "object_lock_legal_hold_status": "OFF", "reason_codes": []}
    return pl.DataFrame([{**defaults, **row} for row in rows],
                        schema={n: t for n, t in s3_inventory.ROW_SCHEMA.items()
                                if n in {**defaults, "key": None}})


def checks_of(result) -> list[tuple]:
    return result.checks.select(INV_COLUMNS).sort("reference_id").rows()


# ---------------------------------------------------------------------------------------------
# S3 Inventory


def test_all_versions_report_latest_pinned_null_version_and_delete_markers():
    refs = archives(
        ("latest", "s3://evidence-bucket/a.tar"),
        ("pinned-old", "s3://evidence-bucket/a.tar?versionId=v1"),
        ("pinned-null", "s3://evidence-bucket/legacy.tar?versionId=null"),
        ("unpinned-null", "s3://evidence-bucket/legacy.tar"),
        ("deleted", "s3://evidence-bucket/deleted.tar"),
        ("deleted-old-version", "s3://evidence-bucket/deleted.tar?versionId=d1"),
        ("no-such-version", "s3://evidence-bucket/a.tar?versionId=v9"),
        ("no-such-key", "https://evidence-bucket.s3.eu-west-1.amazonaws.com/missing.tar"),
    )
    rows = inventory_rows(
        {"key": "a.tar", "version_id": "v2", "is_latest": True, "object_lock_mode": "GOVERNANCE",
         "object_lock_legal_hold_status": "ON"},
        {"key": "a.tar", "version_id": "v1", "is_latest": False, "object_lock_legal_hold_status": None},
        {"key": "legacy.tar", "version_id": None, "is_latest": True, "object_lock_mode": None,
         "object_lock_retain_until_date": None},
        {"key": "deleted.tar", "version_id": "d2", "is_latest": True, "is_delete_marker": True,
         "object_lock_mode": None, "object_lock_retain_until_date": None, "object_lock_legal_hold_status": None},
        {"key": "deleted.tar", "version_id": "d1", "is_latest": False},
    )
    result = derived_custody(refs, inventory_report(), rows, None, AS_OF)
    assert checks_of(result) == [
        ("deleted", False, None, None, None),  # the current version is a delete marker
        ("deleted-old-version", True, "compliance", RETAIN, False),  # the pinned version is still there
        ("latest", True, "governance", RETAIN, True),
        ("no-such-key", False, None, None, None),
        ("no-such-version", False, None, None, None),
        ("pinned-null", True, "none", None, False),  # empty VersionId is the null version; empty mode: none
        ("pinned-old", True, "compliance", RETAIN, None),
        ("unpinned-null", True, "none", None, False),
    ]
    assert result.checks["source"].unique().to_list() == ["s3_inventory"]
    assert result.checks["checked_at"].unique().to_list() == [T0]
    assert result.checks["observed_digest"].null_count() == result.checks.height
    assert result.counts == {"s3_inventory": 8, "s3_batch_checksum": 0}


def test_current_versions_report_does_not_cover_pinned_references():
    refs = archives(("current", "s3://evidence-bucket/a.tar"), ("pinned", "s3://evidence-bucket/a.tar?versionId=v1"),
                    ("pinned-null", "s3://evidence-bucket/a.tar?versionId=null"),
                    ("absent", "s3://evidence-bucket/b.tar"))
    rows = inventory_rows({"key": "a.tar", "is_latest": None, "object_lock_mode": "compliance"})
    result = derived_custody(refs, inventory_report(all_versions=False), rows, None, AS_OF)
    assert checks_of(result) == [("absent", False, None, None, None), ("current", True, "compliance", RETAIN, False)]


def test_lock_columns_absent_give_null_observations():
    refs = archives(("r", "s3://evidence-bucket/a.tar"))
    rows = inventory_rows({"key": "a.tar", "object_lock_mode": None, "object_lock_retain_until_date": None,
                           "object_lock_legal_hold_status": None})
    result = derived_custody(refs, inventory_report(lock_columns=False), rows, None, AS_OF)
    assert checks_of(result) == [("r", True, None, None, None)]


def test_scope_bucket_prefixes_and_dates():
    refs = pl.concat([
        archives(("in-scope", "s3://evidence-bucket/exports/a.tar"),
                 ("outside-prefix", "s3://evidence-bucket/tmp/a.tar"),
                 ("other-bucket", "s3://other-bucket/exports/a.tar"),
                 ("not-s3", "https://storage.googleapis.com/evidence-bucket/exports/a.tar")),
        archives(("archived-later", "s3://evidence-bucket/exports/late.tar"), archived_at=AS_OF + timedelta(1)),
        archives(("archived-at-as-of", "s3://evidence-bucket/exports/b.tar"), archived_at=AS_OF),
    ])
    reports = pl.concat([inventory_report("r1"), inventory_report("future", time=AS_OF + timedelta(seconds=1))])
    rows = inventory_rows({"key": "exports/a.tar"}, {"key": "tmp/a.tar"})
    result = derived_custody(refs, reports, rows, None, AS_OF, s3_inventory_prefixes=["exports/", "logs/"])
    assert result.checks.select("reference_id", "object_present", "report_id").sort("reference_id").rows() == [
        ("archived-at-as-of", False, "r1"), ("in-scope", True, "r1")]
    everything = derived_custody(refs, reports, rows, None, AS_OF)  # default [""]: the whole bucket
    assert sorted(everything.checks["reference_id"]) == ["archived-at-as-of", "in-scope", "outside-prefix"]
    assert derived_custody(refs, reports, rows, None, AS_OF, s3_inventory_prefixes=[]).checks.height == 0


def test_a_report_without_rows_still_covers_its_bucket_and_quarantined_rows_are_not_used():
    refs = archives(("r", "s3://evidence-bucket/a.tar"))
    empty = derived_custody(refs, inventory_report(), None, None, AS_OF)
    assert checks_of(empty) == [("r", False, None, None, None)]
    rows = inventory_rows({"key": "a.tar", "reason_codes": ["invalid_value"]})
    assert checks_of(derived_custody(refs, inventory_report(), rows, None, AS_OF)) == [("r", False, None, None, None)]


def test_two_reports_at_one_instant_give_two_checks():
    refs = archives(("r", "s3://evidence-bucket/a.tar"))
    reports = pl.concat([inventory_report("r1"), inventory_report("r2")])
    rows = pl.concat([inventory_rows({"key": "a.tar"}, report_id="r1"),
                      inventory_rows({"key": "a.tar", "object_lock_mode": "GOVERNANCE"}, report_id="r2")])
    result = derived_custody(refs, reports, rows, None, AS_OF)
    assert result.checks.select("report_id", "observed_lock_mode").rows() == [("r1", "compliance"),
                                                                              ("r2", "governance")]
    assert result.counts["s3_inventory"] == 2


def test_duplicate_matching_rows_in_one_report_combine_to_the_weakest():
    refs = archives(("r", "s3://evidence-bucket/a.tar"))
    rows = inventory_rows({"key": "a.tar", "object_lock_mode": "COMPLIANCE", "object_lock_legal_hold_status": "ON"},
                          {"key": "a.tar", "object_lock_mode": "GOVERNANCE", "object_lock_legal_hold_status": "OFF"})
    result = derived_custody(refs, inventory_report(all_versions=False), rows, None, AS_OF)
    assert checks_of(result) == [("r", True, "governance", RETAIN, False)]


# ---------------------------------------------------------------------------------------------
# Batch Operations


def batch_rows(*rows: dict, report_id: str = "b1", time: datetime = T0) -> pl.DataFrame:
    defaults = {"report_id": report_id, "source_file": "results/x.csv", "source_row": 1, "report_time": time,
                "bucket": "evidence-bucket", "version_id": None, "task_status": "succeeded",
                "observed_digest": None, "not_found": False, "reason_codes": []}
    return pl.DataFrame([{**defaults, **row} for row in rows],
                        schema={n: t for n, t in s3_batch.ROW_SCHEMA.items() if n in {**defaults, "key": None}})


def test_batch_checks_match_by_bucket_key_and_version():
    digest = f"sha256:{SHA_HEX}"
    refs = archives(
        ("unpinned", "s3://evidence-bucket/a.tar"),
        ("pinned-null", "s3://evidence-bucket/a.tar?versionId=null"),
        ("pinned-v1", "s3://evidence-bucket/a.tar?versionId=v1"),  # only rows of version v1
        ("gone", "s3://evidence-bucket/gone.tar"),
        ("inconclusive", "s3://evidence-bucket/err.tar"),
        ("unmatched", "s3://evidence-bucket/never-listed.tar"),
    )
    rows = batch_rows(
        {"key": "a.tar", "version_id": None, "observed_digest": digest},
        {"key": "a.tar", "version_id": "v2", "observed_digest": "sha256:" + "0" * 64},
        {"key": "gone.tar", "version_id": "null", "task_status": "failed", "not_found": True},
        {"key": "err.tar", "task_status": "failed", "not_found": False},
        {"key": "other-status.tar", "task_status": "cancelled"},
    )
    result = derived_custody(refs, None, None, rows, AS_OF)
    assert result.checks.select("reference_id", "object_present", "observed_digest", "source").sort(
        "reference_id").rows() == [
        ("gone", False, None, "s3_batch_checksum"),
        ("pinned-null", True, digest, "s3_batch_checksum"),
        ("unpinned", True, digest, "s3_batch_checksum"),
    ]
    assert result.inconclusive_batch_results == 1
    assert result.counts == {"s3_inventory": 0, "s3_batch_checksum": 3}
    assert list(result.checks.schema.items()) == list(CHECK_SCHEMA.items())


def test_batch_reports_after_as_of_and_quarantined_rows_are_ignored():
    refs = archives(("r", "s3://evidence-bucket/a.tar"))
    later = batch_rows({"key": "a.tar"}, time=AS_OF + timedelta(seconds=1))
    quarantined = batch_rows({"key": "a.tar", "reason_codes": ["wrong_column_count"]})
    assert derived_custody(refs, None, None, later, AS_OF).checks.height == 0
    assert derived_custody(refs, None, None, quarantined, AS_OF).checks.height == 0


# ---------------------------------------------------------------------------------------------
# End to end: files -> readers -> derived checks


def test_from_report_files(tmp_path):
    inventory = write_inventory(tmp_path, [
        csv_gz([all_versions_row("exports/a+b.tar", "v1", mode="Compliance", hold="Off")]),
        csv_gz([all_versions_row("exports/%C3%A9.tar", "", delete_marker="true", retain="", mode="", hold="")]),
    ])
    current = write_inventory(tmp_path, [csv_gz([["evidence-bucket", "exports/a%2Bb.tar", "1",
                                                  "2024-01-01T00:00:00.000Z", "", "", ""]])],
                              file_schema=CURRENT_SCHEMA, config="weekly")
    batch = write_batch(tmp_path, {"succeeded": [f"evidence-bucket,exports/a+b.tar,,succeeded,200,,{sha_message()}"],
                                   "failed": ["evidence-bucket,exports/%C3%A9.tar,,failed,404,NoSuchKey,"]})
    reports = s3_inventory.check_reports([tmp_path / "inventory"])
    assert [r.manifest_path for r in reports] == [inventory, current]
    batch_reports = s3_batch.check_reports([batch])
    refs = archives(("space", "https://evidence-bucket.s3.amazonaws.com/exports/a%20b.tar"),
                    ("plus", "s3://evidence-bucket/exports/a+b.tar"),
                    ("accent", "https://s3.amazonaws.com/evidence-bucket/exports/%C3%A9.tar"))
    result = derived_custody(
        refs, s3_inventory.inventory_reports_frame(reports),
        pl.concat([s3_inventory.read_report_rows(r) for r in reports]),
        pl.concat([s3_batch.read_report_rows(r) for r in batch_reports]), AS_OF)
    assert result.checks.select("reference_id", "source", "object_present", "observed_lock_mode",
                                "observed_digest").sort("reference_id", "source", "object_present").rows() == [
        ("accent", "s3_batch_checksum", False, None, None),
        ("accent", "s3_inventory", False, None, None),  # delete marker (all-versions)
        ("accent", "s3_inventory", False, None, None),  # not listed (current versions)
        ("plus", "s3_inventory", False, None, None),  # all-versions lists "a b.tar", not "a+b.tar"
        ("plus", "s3_inventory", True, "none", None),  # current versions: %2B is a literal +
        ("space", "s3_batch_checksum", True, None, f"sha256:{SHA_HEX}"),
        ("space", "s3_inventory", False, None, None),  # current versions list only "a+b.tar"
        ("space", "s3_inventory", True, "compliance", None),
    ]
    assert result.counts == {"s3_inventory": 6, "s3_batch_checksum": 2}


@pytest.mark.parametrize("as_of, expected", [(T0 - timedelta(seconds=1), 0), (T0, 1)])
def test_report_time_equal_to_as_of_counts(as_of, expected):
    refs = archives(("r", "s3://evidence-bucket/a.tar"), archived_at=T0 - timedelta(days=2))
    assert derived_custody(refs, inventory_report(), inventory_rows({"key": "a.tar"}), None, as_of).checks.height \
        == expected
