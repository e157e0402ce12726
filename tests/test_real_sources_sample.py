"""exportaudit/sample/real_sources.py: the real-source part of the sample is deterministic, passes every
integrity check, and implies the custody gaps its docstring lists."""

from __future__ import annotations

import polars as pl

from exportaudit.sample.common import DEFAULT_AS_OF
from exportaudit.sample.real_sources import EXPECTED_ALERTS, real_source_files, write_real_sources
from exportaudit.sources import s3_batch, s3_inventory, svix
from exportaudit.sources.s3_uri import archive_s3_identity
from transforms.derived_custody import derived_custody



def test_bytes_are_deterministic():
    assert real_source_files() == real_source_files()


def test_reports_pass_integrity_and_derive_the_planted_checks(tmp_path):
    paths = write_real_sources(tmp_path)
    [inventory] = s3_inventory.check_reports([paths["s3_inventory"]])
    [batch] = s3_batch.check_reports([paths["s3_batch_report"]])
    archives = pl.read_ndjson(paths["archives"])
    archives = pl.concat([archives, archive_s3_identity(archives)], how="horizontal").with_columns(
        pl.col("archived_at").str.to_datetime(time_zone="UTC").cast(pl.Datetime("us", "UTC")))
    derived = derived_custody(archives, s3_inventory.inventory_reports_frame([inventory]),
                              s3_inventory.read_report_rows(inventory), s3_batch.read_report_rows(batch),
                              DEFAULT_AS_OF)
    assert derived.counts == {"s3_inventory": 5, "s3_batch_checksum": 4}
    assert derived.inconclusive_batch_results == 1
    absent = set(derived.checks.filter(~pl.col("object_present"))["reference_id"])
    assert absent == {ref for ref, checks in EXPECTED_ALERTS.items() if "object_missing" in checks}
    [decoded] = [s.records for s in svix.svix_sources([paths["svix_attempts"]])]
    assert decoded.height == 3
