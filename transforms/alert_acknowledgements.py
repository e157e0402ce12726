"""Archive alert acknowledgements: this run's alerts + accepted acknowledgements + the alerts of
earlier runs + as_of + SLA -> an acknowledgement status per alert, and the acknowledgements in
force for alerts this run no longer raises (stale)
(docs/executions-and-acknowledgements.md, "Alert acknowledgement status").

Read top to bottom: the acknowledgements that count at as_of (dated <= as_of), those in
force (not lapsed), the one that acknowledges each alert, when each alert was first seen,
then the per-alert status and the stale acknowledgements.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import polars as pl

from exportaudit.vocabulary import CRITICAL
from transforms.current_state import up_to
from transforms.timestamps import UTC_US

ACK_STATUSES = ("acknowledged", "expired", "unacknowledged")

ALERT_ACK_COLUMNS = (
    "alert_id", "severity", "check", "export_id", "reference_id", "ack_status", "acknowledged_by",
    "acknowledged_at", "ack_expires_at", "first_seen_at", "overdue",
)
STALE_COLUMNS = ("ack_id", "alert_id", "acknowledged_by", "acknowledged_at")

_US_PER_HOUR = 3_600_000_000


class AlertAckResult(NamedTuple):
    alerts: pl.DataFrame  # one row per alert of this run, in the archive-health alert order
    stale_acknowledgements: pl.DataFrame  # in force, for no alert of this run; sorted by alert_id, ack_id
    summary: dict  # acknowledged, expired, unacknowledged, overdue, stale


def acknowledgements_in_force(acknowledgements: pl.LazyFrame, as_of: datetime) -> pl.LazyFrame:
    """Acknowledgements dated <= as_of that have not lapsed: expires_at null or > as_of (an
    acknowledgement expiring exactly at as_of has lapsed)."""
    dated = up_to(acknowledgements, "acknowledged_at", as_of)
    return dated.filter(pl.col("expires_at").is_null() | (pl.col("expires_at") > pl.lit(as_of, dtype=UTC_US)))


def alert_acknowledgement(in_force: pl.LazyFrame) -> pl.LazyFrame:
    """Per alert_id, the acknowledgement that holds: the latest in force by acknowledged_at, then
    the greatest ack_id (code point order)."""
    return (
        in_force.sort(["acknowledged_at", "ack_id"], descending=True)
        .unique(subset="alert_id", keep="first")
        .select("alert_id", "acknowledged_by", "acknowledged_at", ack_expires_at="expires_at")
    )


def first_seen(alert_ids: pl.LazyFrame, alert_history: pl.LazyFrame, as_of: datetime) -> pl.LazyFrame:
    """Per alert_id of this run (alert_ids: unique), in its order: the smallest as_of among the runs
    whose alerts hold it, this run included (so never after this as_of)."""
    earlier = (
        alert_history.select("alert_id", pl.col("as_of").cast(UTC_US))
        .join(alert_ids, on="alert_id", how="semi")
        .group_by("alert_id")
        .agg(earliest=pl.col("as_of").min())
    )
    return alert_ids.join(earlier, on="alert_id", how="left", maintain_order="left").select(
        "alert_id", first_seen_at=pl.min_horizontal("earliest", pl.lit(as_of, dtype=UTC_US)))


def alert_acknowledgement_status(alerts: pl.LazyFrame | pl.DataFrame, acknowledgements: pl.LazyFrame,
                                 alert_history: pl.LazyFrame, as_of: datetime,
                                 ack_sla_hours: float) -> AlertAckResult:
    """ack_status, first_seen_at and overdue for each alert of this run's archive
    health report, and the stale acknowledgements.

    alerts: this run's archive-health alerts, in their order (alert_id, severity, check, export_id,
      reference_id, ...).
    acknowledgements: accepted alert_acknowledgements (ack_id, alert_id, acknowledged_at,
      acknowledged_by, expires_at).
    alert_history: the alerts of earlier runs with their run's as_of (alert_id, as_of).
    """
    now = pl.lit(as_of, dtype=UTC_US)
    alerts = alerts.lazy().select("alert_id", "severity", "check", "export_id", "reference_id").collect()
    alert_ids = alerts.lazy().select("alert_id")
    dated = up_to(acknowledgements, "acknowledged_at", as_of).collect().lazy()  # used three times below
    in_force = acknowledgements_in_force(dated, as_of)
    ever_dated = dated.select("alert_id").unique().with_columns(has_dated_ack=pl.lit(True))

    # Only the new columns are made (each alert_id is one alert, so the left joins keep the alerts'
    # rows and order); the alerts' own columns are shared, not copied: at 2.4M alerts a join of
    # the whole rows and a sort back into order added ~0.5 GiB to the night's peak.
    sla = pl.lit(round(float(ack_sla_hours) * _US_PER_HOUR), dtype=pl.Int64)
    first_seen_at = first_seen(alert_ids, alert_history, as_of).collect().get_column("first_seen_at")
    status_columns = (
        alert_ids.join(alert_acknowledgement(in_force), on="alert_id", how="left", maintain_order="left")
        .join(ever_dated, on="alert_id", how="left", maintain_order="left")
        .with_columns(first_seen_at=first_seen_at)
        .with_columns(
            ack_status=pl.when(pl.col("acknowledged_at").is_not_null()).then(pl.lit("acknowledged"))
            .when(pl.col("has_dated_ack")).then(pl.lit("expired"))  # dated <= as_of, all lapsed
            .otherwise(pl.lit("unacknowledged")),
        )
        .drop("alert_id", "has_dated_ack")
        .collect()
    )
    statuses = alerts.hstack(status_columns).with_columns(
        overdue=(pl.col("severity") == CRITICAL) & (pl.col("ack_status") != "acknowledged")
        & ((now - pl.col("first_seen_at")).dt.total_microseconds() >= sla),
    ).select(ALERT_ACK_COLUMNS)
    stale = (
        in_force.join(alert_ids, on="alert_id", how="anti")
        .sort(["alert_id", "ack_id"])
        .select(STALE_COLUMNS)
        .collect()
    )
    return AlertAckResult(statuses, stale, alert_ack_summary(statuses, stale))


def alert_ack_summary(alerts: pl.DataFrame, stale: pl.DataFrame) -> dict:
    """The document's summary: alerts per ack_status, overdue alerts, stale acknowledgements."""
    counts = alerts["ack_status"].value_counts()
    by_status = dict(zip(counts["ack_status"], counts["count"]))
    return {
        **{status: int(by_status.get(status, 0)) for status in ACK_STATUSES},
        "overdue": int(alerts["overdue"].sum()),
        "stale": stale.height,
    }
