"""Pandera model of archive health alerts (docs/archive-health.md): every custody gap found."""

import pandera.polars as pa
import polars as pl

from exportaudit.vocabulary import CHECKS, SEVERITIES

schema = pa.DataFrameSchema(
    {
        "alert_id": pa.Column(pl.Utf8, unique=True, checks=pa.Check.str_matches(r"^[0-9a-f]{16}$"),
                              description="First 16 hex of sha256(export_id|reference_id|check): stable across runs."),
        "severity": pa.Column(pl.Utf8, checks=pa.Check.isin(SEVERITIES), description="critical or warning."),
        "check": pa.Column(pl.Utf8, checks=pa.Check.isin(CHECKS), description="Check that fired (docs/archive-health.md)."),
        "export_id": pa.Column(pl.Utf8, description="Export the finding is about."),
        "reference_id": pa.Column(pl.Utf8, nullable=True, description="Archive reference; null for export-level alerts."),
        "release_record_ref": pa.Column(pl.Utf8, nullable=True, description="Release record; null for orphans."),
        "archive_provider": pa.Column(pl.Utf8, nullable=True, description="Provider of the reference."),
        "archive_uri": pa.Column(pl.Utf8, nullable=True, description="Archive URI, redacted."),
        "message": pa.Column(pl.Utf8, description="One human sentence describing the finding."),
    },
    name="archive_alerts",
    description="Archive health alerts: custody gaps with a stable id and a severity (docs/archive-health.md).",
    strict=True,
    ordered=True,
)
