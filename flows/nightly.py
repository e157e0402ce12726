"""The nightly run as a Prefect flow (SPEC 8): ingest -> rules -> validate -> write.

Thin wiring: each task calls one adapter or one transform; no Polars logic lives here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from exportaudit.prefect_env import configure_prefect

configure_prefect()

from prefect import flow, task  # noqa: E402  (Prefect reads its settings at import)
from prefect.cache_policies import NO_CACHE  # noqa: E402

from exportaudit import artifacts, evidence, history, report, warehouse  # noqa: E402
from exportaudit.faults import checkpoint  # noqa: E402
from exportaudit.gates import gates  # noqa: E402
from exportaudit.ingest import FileAccount, ingest, read_inputs  # noqa: E402
from exportaudit.metrics import metrics_document, prometheus_text, run_metrics  # noqa: E402
from exportaudit.policy import Policy, load_policy  # noqa: E402
from exportaudit.prefect_artifacts import publish_prefect_artifacts  # noqa: E402
from exportaudit.progress import Progress  # noqa: E402
from schemas import archive_alerts, archive_health, retry_plan  # noqa: E402
from transforms.archive_health import archive_health as archive_health_transform  # noqa: E402
from transforms.retry_plan import retry_plan as retry_plan_transform  # noqa: E402
from transforms.timestamps import parse_instant  # noqa: E402

# Files decoded by the command line before the flow starts (to refuse unreadable input with
# exit 2 before anything runs), handed over so they are not read twice.
PREREAD: dict[str, list] = {}

EXIT_OK, EXIT_GATE = 0, 3


@dataclass
class NightResult:
    run_id: str
    exit_code: int
    status: str
    run_dir: Path
    gates_failed: list[str] = field(default_factory=list)
    plan_summary: dict = field(default_factory=dict)
    health_summary: dict = field(default_factory=dict)
    inputs: list[dict] = field(default_factory=list)
    quarantine_ratio: float = 0.0
    stage_seconds: dict = field(default_factory=dict)
    stage_peak_rss_mib: dict = field(default_factory=dict)


task_options = dict(cache_policy=NO_CACHE, persist_result=False)


@task(name="read inputs", **task_options)
def read_inputs_task(paths_by_log: dict[str, list[str]], preread_key: str | None):
    return PREREAD.pop(preread_key) if preread_key in PREREAD else read_inputs(paths_by_log)


@task(name="ingest", **task_options)
def ingest_task(con, decoded, run_id: str, now: datetime) -> list[FileAccount]:
    return ingest(con, decoded, run_id, now)


@task(name="load accepted records", **task_options)
def load_accepted_task(con) -> dict:
    return {log: warehouse.accepted_records(con, log) for log in warehouse.ACCEPTED_SCHEMAS}


@task(name="retry plan", **task_options)
def retry_plan_task(accepted: dict, as_of: datetime, policy: Policy):
    return retry_plan_transform(accepted["deliveries"], accepted["exports"], as_of, policy)


@task(name="archive health", **task_options)
def archive_health_task(accepted: dict, as_of: datetime, policy: Policy):
    return archive_health_transform(accepted["exports"], accepted["archives"], accepted["custody_checks"], as_of, policy)


@task(name="validate outputs", **task_options)
def validate_task(plan, health) -> None:
    retry_plan.schema.validate(plan.records)
    archive_health.schema.validate(health.exports)
    archive_alerts.schema.validate(health.alerts)


@task(name="evidence documents", **task_options)
def evidence_task(plan, health, policy: Policy, context: dict) -> tuple[evidence.Evidence, evidence.Evidence]:
    return (evidence.retry_plan_document(plan, policy=policy, **context),
            evidence.archive_health_document(health, policy=policy, **context))


@task(name="write run directory", **task_options)
def write_outputs_task(out_dir: Path, run_id: str, files: dict[str, bytes]) -> Path:
    return artifacts.write_run_directory(out_dir, run_id, files)


@task(name="record run in warehouse", **task_options)
def record_run_task(con, run_row: dict, plan, health) -> None:
    history.record_run(con, run_row, plan.records, health.exports, health.alerts)


@task(name="point latest", **task_options)
def point_latest_task(out_dir: Path, run_id: str) -> None:
    artifacts.point_latest(out_dir, run_id)


@flow(name="exportaudit-nightly", validate_parameters=False, log_prints=False)
def nightly(paths_by_log: dict[str, list[str]], db: str = str(warehouse.DEFAULT_DB), out: str = "reports",
            as_of: str | None = None, policy_path: str | None = None, fail_on: str = "never",
            generated_by: str = "exportaudit run", run_id: str | None = None, preread_key: str | None = None,
            show_progress: bool = False) -> NightResult:
    """One night. Parameters are plain values so a schedule can run it too; as_of None means now."""
    started = time.monotonic()
    started_at = datetime.now(timezone.utc)
    as_of = parse_instant(as_of) if as_of else started_at
    policy = load_policy(policy_path)
    run_id = run_id or history.new_run_id(started_at)
    out_dir = Path(out)
    progress = Progress(enabled=show_progress)

    with progress.step("read inputs"):
        decoded = read_inputs_task(paths_by_log, preread_key)
    con = warehouse.connect(db)
    try:
        warehouse.ensure_schema(con)
        with progress.step("ingest"):
            accounts = ingest_task(con, decoded, run_id, started_at)
        with progress.step("load accepted records"):
            accepted = load_accepted_task(con)
        with progress.step("rules"):
            checkpoint("rules:start")
            plan = retry_plan_task(accepted, as_of, policy)
            health = archive_health_task(accepted, as_of, policy)
        with progress.step("validation"):
            validate_task(plan, health)
        with progress.step("artifacts and report"):
            inputs = [account.as_input() for account in accounts]
            context = dict(run_id=run_id, as_of=as_of, generated_at=started_at, generated_by=generated_by,
                           dataset=evidence.dataset_identity(history.ingested_sha256s(con)), inputs=inputs)
            plan_doc, health_doc = evidence_task(plan, health, policy, context)
            read = sum(a.rows_read for a in accounts)
            quarantined = sum(a.rows_quarantined for a in accounts)
            ratio = quarantined / read if read else 0.0
            failed = gates(policy, fail_on, ratio, health_doc["summary"])
            values = run_metrics(plan_doc["summary"], health_doc["summary"], quarantined, time.monotonic() - started)
            run_row = history.run_row(run_id, as_of, started_at, failed, plan_doc, health_doc, values, ratio, read)
            totals = history.history_totals(con, including_current=True)
            trend = history.trend(con, current=run_row)
            files = {
                "retry-plan.json": plan_doc.canonical_bytes(),
                "archive-health.json": health_doc.canonical_bytes(),
                "metrics.json": evidence.canonical_json(metrics_document(run_id, plan_doc["as_of"], values, totals)),
                "metrics.prom": prometheus_text(values, totals).encode(),
                "report.md": report.render_markdown(plan_doc, health_doc, values, trend).encode(),
                "report.html": report.render_html(plan_doc, health_doc, values, trend).encode(),
            }
            run_dir = write_outputs_task(out_dir, run_id, files)
        with progress.step("warehouse writes"):
            record_run_task(con, run_row, plan, health)
        point_latest_task(out_dir, run_id)
        publish_prefect_artifacts(plan_doc, health_doc, values)
    finally:
        con.close()
    return NightResult(run_id=run_id, exit_code=EXIT_GATE if failed else EXIT_OK, status=run_row["status"],
                       run_dir=run_dir, gates_failed=failed, plan_summary=plan_doc["summary"],
                       health_summary=health_doc["summary"], inputs=inputs, quarantine_ratio=ratio,
                       stage_seconds=progress.seconds, stage_peak_rss_mib=progress.peak_rss_mib)
