"""Run history in the warehouse (SPEC 4.4): the runs table, result rows keyed by run_id,
history totals and the trend of headline metrics."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import polars as pl

from exportaudit import warehouse
from exportaudit.faults import checkpoint
from exportaudit.metrics import METRICS

TREND_RUNS = 30


def new_run_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def ingested_sha256s(con) -> list[str]:
    return [row[0] for row in con.execute("select file_sha256 from ingested_files").fetchall()]


def run_row(run_id: str, as_of: datetime, started_at: datetime, gates_failed: list[str], plan_doc,
            health_doc, values: dict, quarantine_ratio: float, rows_read: int) -> dict:
    """The runs-table row of a run: times, status, both evidence ids and the run's metrics."""
    plan_summary = plan_doc["summary"]
    metrics = {name: values[name] for name in warehouse.RUN_METRIC_COLUMNS if name in values}
    return {
        "run_id": run_id, "as_of": as_of, "started_at": started_at, "finished_at": datetime.now(timezone.utc),
        "status": "gate_failed" if gates_failed else "succeeded", "exit_code": 3 if gates_failed else 0,
        "retry_plan_evidence_id": plan_doc["evidence_id"], "archive_health_evidence_id": health_doc["evidence_id"],
        "quarantine_ratio": float(quarantine_ratio), "run_duration_seconds": float(values["run_duration_seconds"]),
        **metrics, "failed_deliveries": plan_summary["failed_deliveries"], "rows_read": rows_read,
    }


def record_run(con, row: dict, plan: pl.DataFrame, health_exports: pl.DataFrame, alerts: pl.DataFrame) -> None:
    """The run and its result rows, in one transaction: a crash leaves no half run."""
    run_id = row["run_id"]
    con.execute("BEGIN")
    try:
        warehouse.append(con, "runs", pl.DataFrame([row]).with_columns(
            pl.col("as_of", "started_at", "finished_at").cast(pl.Datetime("us", "UTC"))))
        checkpoint("warehouse:inserted-run")
        for table, frame in (("retry_plan", plan), ("archive_health", health_exports), ("archive_alerts", alerts)):
            warehouse.append(con, table, frame.select(pl.lit(run_id).alias("run_id"), pl.all()))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def history_totals(con, including_current: bool = False) -> dict:
    """Plans and reports ever written: one of each per recorded run."""
    runs = con.execute("select count(*) from runs").fetchall()[0][0] + (1 if including_current else 0)
    return {"retry_plans_total": runs, "archive_health_reports_total": runs}


def trend(con, current: dict | None = None, limit: int = TREND_RUNS) -> list[dict]:
    """Headline metrics of the latest runs, oldest first (the current run last, when given)."""
    columns = [name for name in METRICS if name in warehouse.RUN_METRIC_COLUMNS]
    rows = con.execute(
        f"select run_id, strftime(as_of, '%Y-%m-%dT%H:%M:%SZ'), {', '.join(columns)} from runs "
        f"order by finished_at desc, run_id desc limit ?", [limit - (1 if current else 0)]).fetchall()
    history = [dict(zip(["run_id", "as_of", *columns], row)) for row in reversed(rows)]
    if current:
        from exportaudit.evidence import format_instant
        history.append({"run_id": current["run_id"], "as_of": format_instant(current["as_of"]),
                        **{c: current.get(c) for c in columns}})
    return history
