"""Run history in the warehouse (docs/outputs.md#warehouse): the runs table, result rows keyed by run_id,
history totals, the runs list, the latest run and the trend of headline metrics.

Every query on run history lives here; the nightly flow, the command line and the HTTP API
all call these functions. Which run is the latest is decided by one ordering,
`warehouse.LATEST_RUN_FIRST`, which the warehouse's latest_* views use too.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import NamedTuple

import polars as pl

from exportaudit import gates, warehouse
from exportaudit.faults import checkpoint
from exportaudit.ingest import FileAccount, rows_read
from exportaudit.metrics import HISTORY_METRICS, METRICS
from exportaudit.warehouse import LATEST_RUN_FIRST
from transforms.timestamps import UTC_US, format_instant

TREND_RUNS = 30
RUNS_LISTED = 1000  # GET /runs: enough history for a glance; the warehouse holds every run


def new_run_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def ingested_sha256s(con) -> list[str]:
    return [row[0] for row in con.execute("select file_sha256 from ingested_files").fetchall()]


def run_row(run_id: str, as_of: datetime, started_at: datetime, gates_failed: list[str], plan_doc,
            health_doc, values: dict, accounts: list[FileAccount]) -> dict:
    """The runs-table row of a run: times, status, both evidence ids and the run's metrics."""
    plan_summary = plan_doc["summary"]
    metrics = {name: values[name] for name in warehouse.RUN_METRIC_COLUMNS if name in values}
    return {
        "run_id": run_id, "as_of": as_of, "started_at": started_at, "finished_at": datetime.now(timezone.utc),
        "status": gates.run_status(gates_failed), "exit_code": gates.exit_code(gates_failed),
        "retry_plan_evidence_id": plan_doc["evidence_id"], "archive_health_evidence_id": health_doc["evidence_id"],
        "quarantine_ratio": float(gates.quarantine_ratio(accounts)),
        "run_duration_seconds": float(values["run_duration_seconds"]),
        **metrics, "failed_deliveries": plan_summary["failed_deliveries"], "rows_read": rows_read(accounts),
    }


def record_run(con, row: dict, plan: pl.DataFrame, health_exports: pl.DataFrame, alerts: pl.DataFrame) -> None:
    """The run and its result rows, in one transaction: a crash leaves no half run."""
    run_id = row["run_id"]
    con.execute("BEGIN")
    try:
        warehouse.append(con, "runs", pl.DataFrame([row]).with_columns(
            pl.col("as_of", "started_at", "finished_at").cast(UTC_US)))
        checkpoint("warehouse:inserted-run")
        for table, frame in (("retry_plan", plan), ("archive_health", health_exports), ("archive_alerts", alerts)):
            warehouse.append(con, table, frame.select(pl.lit(run_id).alias("run_id"), pl.all()))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


class RunTotals(NamedTuple):
    """Sums over every recorded run: one retry plan and one archive health report per run."""
    runs: int
    retryable_deliveries: int
    archive_health_alert_count: int

    def metrics(self) -> dict:
        """As the history metrics of metrics.json and Prometheus (plans and reports ever written)."""
        return dict(zip(HISTORY_METRICS, (self.runs, self.runs)))

    def tiles(self) -> dict:
        """As the Evidence Console's tiles (and /runs totals): the run metrics summed over history."""
        return {"retry_plan_count": self.runs, "retryable_deliveries": self.retryable_deliveries,
                "archive_health_report_count": self.runs, "archive_health_alert_count": self.archive_health_alert_count}


def history_totals(con, current: dict | None = None) -> RunTotals:
    """Totals over the runs table, plus the current run's row when given (it is recorded last)."""
    runs, retryable, alerts = con.execute(
        "select count(*), coalesce(sum(retryable_deliveries), 0), coalesce(sum(archive_health_alert_count), 0) "
        "from runs").fetchall()[0]
    if current:
        runs, retryable, alerts = (runs + 1, retryable + current["retryable_deliveries"],
                                   alerts + current["archive_health_alert_count"])
    return RunTotals(int(runs), int(retryable), int(alerts))


def runs(con, limit: int = RUNS_LISTED) -> list[dict]:
    """Recorded runs, latest first, every column; instants as timestamp text."""
    cursor = con.execute(f"select * from runs order by {LATEST_RUN_FIRST} limit ?", [limit])
    names = [d[0] for d in cursor.description]
    return [{k: (format_instant(v) if isinstance(v, datetime) else v) for k, v in zip(names, row)}
            for row in cursor.fetchall()]


def latest_run(con) -> dict | None:
    """The latest recorded run (as in `runs`), None before the first."""
    return next(iter(runs(con, limit=1)), None)


def trend(con, current: dict | None = None, limit: int = TREND_RUNS) -> list[dict]:
    """Headline metrics of the latest runs, oldest first (the current run last, when given)."""
    columns = [name for name in METRICS if name in warehouse.RUN_METRIC_COLUMNS]
    rows = con.execute(
        f"select run_id, strftime(as_of, '%Y-%m-%dT%H:%M:%SZ'), {', '.join(columns)} from runs "
        f"order by {LATEST_RUN_FIRST} limit ?", [limit - (1 if current else 0)]).fetchall()
    history = [dict(zip(["run_id", "as_of", *columns], row)) for row in reversed(rows)]
    if current:
        history.append({"run_id": current["run_id"], "as_of": format_instant(current["as_of"]),
                        **{c: current.get(c) for c in columns}})
    return history
