"""Pandera model of the archive health export records (docs/archive-health.md): one per checked export."""

import pandera.polars as pa
import polars as pl

from exportaudit.vocabulary import CUSTODY_STATUSES

schema = pa.DataFrameSchema(
    {
        "export_id": pa.Column(pl.Utf8, unique=True, description="A verified export."),
        "release_record_ref": pa.Column(pl.Utf8, description="Release record of the export's current state."),
        "custody_status": pa.Column(pl.Utf8, checks=pa.Check.isin(CUSTODY_STATUSES),
                                    description="critical if not represented, else warning if any finding, else healthy."),
        "represented": pa.Column(pl.Boolean, description="At least one intact reference (no critical finding)."),
        "reference_count": pa.Column(pl.Int64, checks=pa.Check.ge(0), description="References archived by as_of."),
        "intact_reference_count": pa.Column(pl.Int64, checks=pa.Check.ge(0), description="References with no critical finding."),
        "critical_count": pa.Column(pl.Int64, checks=pa.Check.ge(0), description="Critical alerts, missing_reference included."),
        "warning_count": pa.Column(pl.Int64, checks=pa.Check.ge(0), description="Warning alerts."),
    },
    name="archive_health",
    description="Archive reference health: one record per export whose current state is verified (docs/archive-health.md).",
    strict=True,
    ordered=True,
)
