"""The nightly run as a Prefect flow (docs/outputs.md#command-line): read inputs -> ingest -> load -> rules ->
validate -> documents -> gates -> outputs -> record run (and, in its transaction, the ledger entry,
ledger.json and attestation.intoto.json: docs/ledger.md) -> point latest. The run directory is
written beside the history rows (a submitted task); the ledger seal waits for it before COMMIT.

Thin wiring: each task calls one adapter or one function; no Polars logic or arithmetic lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from exportaudit.prefect_env import configure_prefect

configure_prefect()

from prefect import flow, task  # noqa: E402  (Prefect reads its settings at import)
from prefect.futures import wait  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from exportaudit import artifacts, evaluation, history, ledger, outputs, warehouse  # noqa: E402
from exportaudit.faults import checkpoint  # noqa: E402
from exportaudit.gates import gates, quarantine_ratio  # noqa: E402
from exportaudit.ingest import (  # noqa: E402
    DecodedInputs, FileAccount, RunRecords, ingest, read_inputs, rows_quarantined,
)
from exportaudit.metrics import run_metrics  # noqa: E402
from exportaudit.policy import Policy, load_policy  # noqa: E402
from exportaudit.prefect_artifacts import publish_prefect_artifacts  # noqa: E402
from exportaudit.progress import Progress  # noqa: E402
from exportaudit.sources.report_ingest import (  # noqa: E402
    RealSources, ingest_reports, log_sources, read_real_sources,
)
from exportaudit.vocabulary import DEFAULT_DB, DEFAULT_OUT, GENERATED_BY_RUN, NEVER  # noqa: E402
from transforms.timestamps import parse_instant  # noqa: E402


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
    metrics: dict = field(default_factory=dict)  # the run's metrics (metrics.json), for the summary


task_options = dict(cache_policy=NO_CACHE, persist_result=False)


@task(name="read inputs", **task_options)
def read_inputs_task(paths_by_log: dict[str, list[str]], preread: DecodedInputs | None):
    return read_inputs(paths_by_log, preread)


@task(name="read real sources", **task_options)
def read_real_sources_task(real_sources: dict[str, list[str]] | None, preread: RealSources | None) -> RealSources:
    return preread if preread is not None else read_real_sources(real_sources)


@task(name="ingest", **task_options)
def ingest_task(con, decoded, sources: RealSources, run_id: str, now: datetime,
                run_records: RunRecords) -> list[FileAccount]:
    return ingest(con, log_sources(decoded, sources), run_id, now, kept=run_records)


@task(name="ingest S3 reports", **task_options)
def ingest_reports_task(con, sources: RealSources, run_id: str, now: datetime) -> list[FileAccount]:
    return ingest_reports(con, sources, run_id, now)


@task(name="load accepted records", **task_options)
def load_accepted_task(con, as_of: datetime, run_records: RunRecords) -> dict:
    return evaluation.accepted(con, evaluation.NIGHT_ANSWERS, as_of, release_cache=True, run_records=run_records)


@task(name="evidence context", **task_options)
def context_task(con, run_id: str, as_of: datetime, started_at: datetime, generated_by: str,
                 accounts: list[FileAccount]) -> dict:
    return evaluation.context(con, run_id=run_id, as_of=as_of, generated_at=started_at, generated_by=generated_by,
                              inputs=[account.as_input() for account in accounts])


@task(name="rules, validation, evidence documents", **task_options)
def evaluate_task(accepted: dict, as_of: datetime, policy: Policy, context: dict, progress: Progress,
                  stager: outputs.DocumentStager):
    """Each evidence document's file (and stored body) is written while the document is encoded."""
    checkpoint("rules:start")
    return evaluation.evaluate(accepted, as_of, policy, context, evaluation.NIGHT_ANSWERS, stage=progress.step,
                               write_document=stager)


@task(name="gates", **task_options)
def gates_task(policy: Policy, fail_on: str, accounts: list[FileAccount], health_summary: dict,
               executions_summary: dict, acknowledgements_summary: dict) -> list[str]:
    return gates(policy, fail_on, quarantine_ratio(accounts), health_summary, executions_summary,
                 acknowledgements_summary)


@task(name="metrics", **task_options)
def metrics_task(evaluated: evaluation.Evaluation, accounts: list[FileAccount], duration_seconds: float) -> dict:
    return run_metrics(evaluated.plan_doc["summary"], evaluated.health_doc["summary"], rows_quarantined(accounts),
                       duration_seconds, evaluated.executions_doc, evaluated.acknowledgements_doc)


@task(name="run row", **task_options)
def run_row_task(run_id: str, as_of: datetime, started_at: datetime, gates_failed: list[str],
                 evaluated: evaluation.Evaluation, values: dict, accounts: list[FileAccount]) -> dict:
    return history.run_row(run_id, as_of, started_at, gates_failed, evaluated.plan_doc, evaluated.health_doc,
                           values, accounts, evaluated.follow_up_documents)


@task(name="history totals", **task_options)
def history_totals_task(con, run_row: dict) -> history.RunTotals:
    return history.history_totals(con, current=run_row)


@task(name="trend", **task_options)
def trend_task(con, run_row: dict) -> list[dict]:
    return history.trend(con, current=run_row)


@task(name="ledger position", **task_options)
def ledger_position_task(con) -> dict:
    return ledger.next_position(con)


@task(name="render outputs", **task_options)
def render_outputs_task(evaluated: evaluation.Evaluation, values: dict, totals: history.RunTotals,
                        trend: list[dict], ledger_position: dict) -> dict[str, bytes]:
    return outputs.run_files(evaluated.plan_doc, evaluated.health_doc, values, totals, trend,
                             evaluated.executions_doc, evaluated.acknowledgements_doc, ledger=ledger_position)


@task(name="write run directory", **task_options)
def write_outputs_task(run_directory: artifacts.RunDirectoryWriter, files: dict) -> Path:
    return run_directory.finish(files)


@task(name="record run in warehouse", **task_options)
def record_run_task(con, run_row: dict, evaluated: evaluation.Evaluation, run_directory: artifacts.RunDirectoryWriter,
                    run_dir_written: Callable[[], Path], files: dict, policy: Policy, ledger_position: dict,
                    stager: outputs.DocumentStager) -> None:
    """The history rows and, in their transaction, the ledger entry with ledger.json and
    attestation.intoto.json (docs/ledger.md#ledger-entry). run_dir_written(): the run directory,
    once every file is written (it is written while the rows go in; the seal waits for it)."""
    seal_written = partial(artifacts.seal_run_directory, run_id=run_row["run_id"], as_of=run_row["as_of"],
                           generated_at=run_row["started_at"], dataset=evaluated.plan_doc["dataset"], files=files,
                           policy=policy, evidence_ids=outputs.evidence_ids(evaluated.documents),
                           position=ledger_position)

    def seal(con):
        run_dir = run_dir_written()  # every file written, and hashed as it was written
        return seal_written(con, run_dir=run_dir, digests=run_directory.digests)

    history.record_run(con, run_row, evaluated.plan.records, evaluated.health.exports, evaluated.health.alerts,
                       evaluated.stored_documents, evaluated.follow_up_tables, seal=seal, bodies=stager.bodies)


@task(name="point latest", **task_options)
def point_latest_task(out_dir: Path, run_id: str) -> None:
    artifacts.point_latest(out_dir, run_id)


@flow(name="exportaudit-nightly", validate_parameters=False, log_prints=False)
def nightly(paths_by_log: dict[str, list[str]], db: str = str(DEFAULT_DB), out: str = str(DEFAULT_OUT),
            as_of: str | None = None, policy_path: str | None = None, fail_on: str = NEVER,
            generated_by: str = GENERATED_BY_RUN, run_id: str | None = None, preread: DecodedInputs | None = None,
            show_progress: bool = False, real_sources: dict[str, list[str]] | None = None,
            preread_sources: RealSources | None = None) -> NightResult:
    """One night. Parameters are plain values so a schedule can run it too; as_of None means now.
    `preread`: the files of paths_by_log, decoded already (the command line reads them first).
    `real_sources`: S3 reports and Svix files by option (s3_inventory, s3_batch_report, svix_attempts;
    docs/real-sources.md); `preread_sources`: the same, checked already."""
    progress = Progress(enabled=show_progress)  # also the run's stopwatch
    started_at = datetime.now(timezone.utc)
    as_of = parse_instant(as_of) if as_of else started_at
    policy = load_policy(policy_path)
    run_id = run_id or history.new_run_id(started_at)
    out_dir = Path(out)

    with progress.step("read inputs"):
        decoded = read_inputs_task(paths_by_log, preread)
        sources = read_real_sources_task(real_sources, preread_sources)
    con = warehouse.connect(db)
    run_records = RunRecords(run_id)  # this run's accepted records, read by the rules where ingest staged them
    run_directory = None
    try:
        warehouse.ensure_schema(con)
        with progress.step("ingest"):
            log_accounts = ingest_task(con, decoded, sources, run_id, started_at, run_records)
            report_accounts = ingest_reports_task(con, sources, run_id, started_at)
        accounts = [*log_accounts, *report_accounts]
        with progress.step("load accepted records"):
            accepted = load_accepted_task(con, as_of, run_records)
        context = context_task(con, run_id, as_of, started_at, generated_by, accounts)
        run_directory = artifacts.RunDirectoryWriter(out_dir, run_id)
        stager = outputs.DocumentStager(run_directory, evaluation.STORED_ANSWERS)
        evaluated = evaluate_task(accepted, as_of, policy, context, progress,  # timed as rules, validation, documents
                                  stager)
        with progress.step("artifacts and report"):
            gates_failed = gates_task(policy, fail_on, accounts, evaluated.health_doc["summary"],
                                      evaluated.executions_doc["summary"], evaluated.acknowledgements_doc["summary"])
            values = metrics_task(evaluated, accounts, progress.elapsed_seconds())
            run_row = run_row_task(run_id, as_of, started_at, gates_failed, evaluated, values, accounts)
            totals = history_totals_task(con, run_row)
            trend = trend_task(con, run_row)
            position = ledger_position_task(con)  # the report shows it (docs/ledger.md#the-report-and-the-chain)
            files = render_outputs_task(evaluated, values, totals, trend, position)
        with progress.step("warehouse writes"):
            # The run directory (about a gigabyte of fsync'd JSON at 1M exports) is written in a
            # worker thread while the history rows go in; the ledger seal waits for it before COMMIT.
            run_dir_written = write_outputs_task.submit(run_directory, files)
            try:
                record_run_task(con, run_row, evaluated, run_directory, run_dir_written.result, files, policy,
                                position, stager)
            finally:
                wait([run_dir_written])
            run_dir = run_dir_written.result()
        point_latest_task(out_dir, run_id)
        publish_prefect_artifacts(evaluated.plan_doc, evaluated.health_doc, values)
    except BaseException:
        if run_directory is not None:  # what the run staged there, never renamed into place
            run_directory.discard()
        raise
    finally:
        run_records.close()
        con.close()
    return NightResult(run_id=run_id, exit_code=run_row["exit_code"], status=run_row["status"], run_dir=run_dir,
                       gates_failed=gates_failed, plan_summary=evaluated.plan_doc["summary"],
                       health_summary=evaluated.health_doc["summary"], inputs=context["inputs"],
                       quarantine_ratio=run_row["quarantine_ratio"], stage_seconds=progress.seconds,
                       stage_peak_rss_mib=progress.peak_rss_mib, metrics=values)
