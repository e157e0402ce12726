"""Pandera model of alert acknowledgement status (docs/executions-and-acknowledgements.md): one record per archive
health alert of the run, with its acknowledgement at as_of."""

import pandera.polars as pa
import polars as pl

from exportaudit.vocabulary import CHECKS, CRITICAL, SEVERITIES
from transforms.alert_acknowledgements import ACK_STATUSES
from transforms.timestamps import UTC_US


def _ack_fields_only_when_acknowledged(data) -> pl.LazyFrame:
    acknowledged = pl.col("ack_status") == "acknowledged"
    return data.lazyframe.select(
        (pl.col("acknowledged_by").is_not_null() == acknowledged)
        & (pl.col("acknowledged_at").is_not_null() == acknowledged)
        & (acknowledged | pl.col("ack_expires_at").is_null())
    )


def _overdue_only_when_critical_and_not_acknowledged(data) -> pl.LazyFrame:
    return data.lazyframe.select(
        ~pl.col("overdue") | ((pl.col("severity") == CRITICAL) & (pl.col("ack_status") != "acknowledged"))
    )


schema = pa.DataFrameSchema(
    {
        "alert_id": pa.Column(pl.Utf8, unique=True, checks=pa.Check.str_matches(r"^[0-9a-f]{16}$"),
                              description="Stable alert id of the archive health report."),
        "severity": pa.Column(pl.Utf8, checks=pa.Check.isin(SEVERITIES), description="critical or warning."),
        "check": pa.Column(pl.Utf8, checks=pa.Check.isin(CHECKS), description="Archive health check that fired."),
        "export_id": pa.Column(pl.Utf8, description="Export the alert is about."),
        "reference_id": pa.Column(pl.Utf8, nullable=True,
                                  description="Archive reference; null for export-level alerts."),
        "ack_status": pa.Column(pl.Utf8, checks=pa.Check.isin(ACK_STATUSES),
                                description="acknowledged (an acknowledgement in force), expired (acknowledgements "
                                            "dated by as_of, all lapsed) or unacknowledged."),
        "acknowledged_by": pa.Column(pl.Utf8, nullable=True,
                                     description="Person or system of the acknowledgement in force; null unless "
                                                 "acknowledged."),
        "acknowledged_at": pa.Column(UTC_US, nullable=True,
                                     description="When that acknowledgement was made (UTC); null unless acknowledged."),
        "ack_expires_at": pa.Column(UTC_US, nullable=True,
                                    description="When that acknowledgement lapses (UTC); null when it does not, or "
                                                "unless acknowledged."),
        "first_seen_at": pa.Column(UTC_US, description="Smallest as_of among the runs that raised this alert id, "
                                                       "this run included (UTC)."),
        "overdue": pa.Column(pl.Boolean, description="Critical, not acknowledged, and raised for at least "
                                                     "ack_sla_hours since first_seen_at."),
    },
    checks=[pa.Check(_ack_fields_only_when_acknowledged, name="ack_fields_only_when_acknowledged"),
            pa.Check(_overdue_only_when_critical_and_not_acknowledged,
                     name="overdue_only_when_critical_unacknowledged")],
    name="alert_ack_status",
    description="Archive health alert acknowledgements: one record per alert of the run.",
    strict=True,
    ordered=True,
)
