"""Acknowledgement status of each archive health alert, first_seen_at, overdue, and stale
acknowledgements, with their boundaries (docs/executions-and-acknowledgements.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from schemas.alert_ack_status import schema as ack_status_schema
from transforms.alert_acknowledgements import alert_acknowledgement_status
from transforms.timestamps import UTC_US

US = timedelta(microseconds=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


AS_OF = at("2026-11-20T12:00:00Z")
A1, A2, A3 = "a" * 16, "b" * 16, "c" * 16  # alert ids

ALERT_SCHEMA = {"alert_id": pl.Utf8, "severity": pl.Utf8, "check": pl.Utf8, "export_id": pl.Utf8,
                "reference_id": pl.Utf8, "message": pl.Utf8}
ACK_SCHEMA = {"ack_id": pl.Utf8, "alert_id": pl.Utf8, "acknowledged_at": UTC_US, "acknowledged_by": pl.Utf8,
              "expires_at": UTC_US, "comment": pl.Utf8}
HISTORY_SCHEMA = {"alert_id": pl.Utf8, "as_of": UTC_US}


def _frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    def value(name, v):
        return at(v) if schema[name] == UTC_US and isinstance(v, str) else v
    return pl.DataFrame([{name: value(name, row.get(name)) for name in schema} for row in rows],
                        schema=schema, orient="row")


def alert(alert_id=A1, severity="critical", check="object_missing", export_id="exp-1", reference_id="ref-1") -> dict:
    return dict(alert_id=alert_id, severity=severity, check=check, export_id=export_id, reference_id=reference_id,
                message="text")


def ack(ack_id="k1", alert_id=A1, acknowledged_at="2026-11-20T08:00:00Z", acknowledged_by="ana", expires_at=None):
    return dict(ack_id=ack_id, alert_id=alert_id, acknowledged_at=acknowledged_at, acknowledged_by=acknowledged_by,
                expires_at=expires_at, comment=None)


def status(alerts, acks=(), history=(), as_of=AS_OF, sla_hours=24):
    result = alert_acknowledgement_status(
        _frame(alerts, ALERT_SCHEMA), _frame(list(acks), ACK_SCHEMA).lazy(),
        _frame(list(history), HISTORY_SCHEMA).lazy(), as_of, sla_hours,
    )
    ack_status_schema.validate(result.alerts)
    return result


def only(acks=(), **kwargs) -> dict:
    [row] = status([alert()], acks, **kwargs).alerts.to_dicts()
    return row


# --- ack_status ----------------------------------------------------------------------------------
def test_acknowledged_full_record_in_alert_order():
    alerts = [alert(A2, "critical", reference_id=None, check="missing_reference"), alert(A1, "warning", "check_stale")]
    acks = [ack("k1", A1, expires_at="2026-11-21T00:00:00Z")]
    result = status(alerts, acks)
    expected = pl.DataFrame(
        [{"alert_id": A2, "severity": "critical", "check": "missing_reference", "export_id": "exp-1",
          "reference_id": None, "ack_status": "unacknowledged", "acknowledged_by": None, "acknowledged_at": None,
          "ack_expires_at": None, "first_seen_at": AS_OF, "overdue": False},
         {"alert_id": A1, "severity": "warning", "check": "check_stale", "export_id": "exp-1",
          "reference_id": "ref-1", "ack_status": "acknowledged", "acknowledged_by": "ana",
          "acknowledged_at": at("2026-11-20T08:00:00Z"), "ack_expires_at": at("2026-11-21T00:00:00Z"),
          "first_seen_at": AS_OF, "overdue": False}],
        schema={"alert_id": pl.Utf8, "severity": pl.Utf8, "check": pl.Utf8, "export_id": pl.Utf8,
                "reference_id": pl.Utf8, "ack_status": pl.Utf8, "acknowledged_by": pl.Utf8,
                "acknowledged_at": UTC_US, "ack_expires_at": UTC_US, "first_seen_at": UTC_US,
                "overdue": pl.Boolean}, orient="row",
    )
    assert_frame_equal(result.alerts, expected)


def test_unacknowledged_without_acks():
    row = only()
    assert (row["ack_status"], row["acknowledged_by"], row["acknowledged_at"]) == ("unacknowledged", None, None)


def test_an_ack_expiring_exactly_at_as_of_has_lapsed():
    row = only([ack(expires_at=AS_OF)])
    assert (row["ack_status"], row["acknowledged_by"], row["acknowledged_at"], row["ack_expires_at"]) == \
        ("expired", None, None, None)
    assert only([ack(expires_at=AS_OF + US)])["ack_status"] == "acknowledged"


def test_acks_after_as_of_are_ignored():
    assert only([ack(acknowledged_at=AS_OF + US)])["ack_status"] == "unacknowledged"
    # a lapsed ack dated <= as_of plus a later one: expired, not acknowledged
    assert only([ack("k1", expires_at="2026-11-20T09:00:00Z"), ack("k2", acknowledged_at=AS_OF + US)])["ack_status"] \
        == "expired"
    assert only([ack(acknowledged_at=AS_OF)])["ack_status"] == "acknowledged"  # dated exactly at as_of counts


def test_an_older_ack_in_force_counts_when_a_newer_one_lapsed():
    acks = [ack("k1", acknowledged_at="2026-11-19T00:00:00Z", acknowledged_by="old"),
            ack("k2", acknowledged_at="2026-11-20T08:00:00Z", acknowledged_by="new", expires_at="2026-11-20T09:00:00Z")]
    row = only(acks)
    assert (row["ack_status"], row["acknowledged_by"]) == ("acknowledged", "old")


def test_latest_ack_in_force_wins_ties_by_greatest_ack_id():
    acks = [ack("k1", acknowledged_by="first"), ack("k2", acknowledged_by="second"),
            ack("k0", acknowledged_at="2026-11-20T09:00:00Z", acknowledged_by="latest")]
    assert only(acks)["acknowledged_by"] == "latest"
    tied = [ack("k10", acknowledged_by="k10"), ack("k9", acknowledged_by="k9")]  # code point order: "k9" > "k10"
    row = only(tied)
    assert (row["acknowledged_by"], row["ack_expires_at"]) == ("k9", None)


def test_acks_of_other_alerts_do_not_count():
    assert only([ack(alert_id=A2)])["ack_status"] == "unacknowledged"


# --- first_seen_at and overdue -------------------------------------------------------------------
def test_first_seen_at_is_the_smallest_as_of_of_runs_holding_the_alert():
    history = [{"alert_id": A1, "as_of": "2026-11-18T00:00:00Z"}, {"alert_id": A1, "as_of": "2026-11-19T00:00:00Z"},
               {"alert_id": A2, "as_of": "2026-11-01T00:00:00Z"}, {"alert_id": A1, "as_of": "2026-11-25T00:00:00Z"}]
    result = status([alert(A1), alert(A3)], history=history)
    assert result.alerts["first_seen_at"].to_list() == [at("2026-11-18T00:00:00Z"), AS_OF]


def test_overdue_fires_at_exactly_the_sla():
    sla_ago = AS_OF - timedelta(hours=24)
    assert only(history=[{"alert_id": A1, "as_of": sla_ago}])["overdue"] is True
    assert only(history=[{"alert_id": A1, "as_of": sla_ago + US}])["overdue"] is False
    assert only(history=[{"alert_id": A1, "as_of": sla_ago}], sla_hours=24.5)["overdue"] is False
    assert only(sla_hours=0)["overdue"] is True  # first seen now, no SLA at all


def test_overdue_only_for_critical_alerts_not_acknowledged():
    history = [{"alert_id": A1, "as_of": "2026-11-01T00:00:00Z"}, {"alert_id": A2, "as_of": "2026-11-01T00:00:00Z"}]
    alerts = [alert(A1, "critical"), alert(A2, "warning", "check_stale")]
    assert status(alerts, history=history).alerts["overdue"].to_list() == [True, False]
    assert status(alerts, [ack(alert_id=A1)], history=history).alerts["overdue"].to_list() == [False, False]
    lapsed = [ack(alert_id=A1, expires_at="2026-11-20T09:00:00Z")]
    assert status(alerts, lapsed, history=history).alerts["overdue"].to_list() == [True, False]  # expired is overdue


# --- stale acknowledgements and summary ----------------------------------------------------------
def test_stale_acks_are_those_in_force_for_alerts_not_in_this_run():
    acks = [ack("k3", A3), ack("k1", A2), ack("k2", A2, acknowledged_by="bo"),
            ack("k4", A3, expires_at=AS_OF), ack("k5", A3, acknowledged_at=AS_OF + US), ack("k6", A1)]
    result = status([alert(A1)], acks)
    expected = pl.DataFrame(
        {"ack_id": ["k1", "k2", "k3"], "alert_id": [A2, A2, A3], "acknowledged_by": ["ana", "bo", "ana"],
         "acknowledged_at": [at("2026-11-20T08:00:00Z")] * 3},
        schema={"ack_id": pl.Utf8, "alert_id": pl.Utf8, "acknowledged_by": pl.Utf8, "acknowledged_at": UTC_US},
    )
    assert_frame_equal(result.stale_acknowledgements, expected)


def test_summary():
    history = [{"alert_id": A3, "as_of": "2026-11-01T00:00:00Z"}]
    alerts = [alert(A1), alert(A2), alert(A3)]
    acks = [ack("k1", A1), ack("k2", A2, expires_at="2026-11-20T09:00:00Z"), ack("k9", "f" * 16)]
    assert status(alerts, acks, history).summary == {
        "acknowledged": 1, "expired": 1, "unacknowledged": 1, "overdue": 1, "stale": 1,
    }


def test_no_alerts():
    result = status([], [ack()])
    assert result.alerts.height == 0
    assert result.summary == {"acknowledged": 0, "expired": 0, "unacknowledged": 0, "overdue": 0, "stale": 1}


def test_accepted_alert_acknowledgements_model():
    model = pytest.importorskip("schemas.alert_acknowledgements", reason="contract.py does not declare the log yet",
                                exc_type=ImportError)
    lineage = {"extra_fields": pl.Utf8, "source_file_sha256": pl.Utf8, "source_row": pl.Int64, "ingest_run_id": pl.Utf8}
    frame = _frame([ack()], ACK_SCHEMA).with_columns(
        extra_fields=pl.lit(None, pl.Utf8), source_file_sha256=pl.lit("f" * 64), source_row=pl.lit(1, pl.Int64),
        ingest_run_id=pl.lit("r1")).cast(lineage)
    model.schema.validate(frame)
    with pytest.raises(Exception):
        model.schema.validate(frame.with_columns(acknowledged_by=pl.lit(None, pl.Utf8)))
