"""One path from accepted records to evidence: the rules, Pandera validation of what they
return, then the evidence documents (docs/outputs.md).

The nightly flow and the HTTP API both call `evaluate`, so the API gives the command line's
answers for the same data, as_of and policy by construction. The API asks for one answer
at a time; the night asks for all four (NIGHT_ANSWERS).

The follow-up answers (docs/executions-and-acknowledgements.md) check the operator's records
against this evaluation's own evidence, so they are computed after the answer they depend on
(DEPENDS_ON: the retry executions need this run's retry plan and its evidence_id; the
acknowledgements need this run's alerts), and they also read the recorded run history
(history.HISTORY_INPUTS).
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Callable, NamedTuple

import polars as pl

from exportaudit import evidence, history, warehouse
from exportaudit.policy import Policy
from schemas import alert_ack_status, archive_alerts, archive_health, retry_execution_verdicts, retry_plan
from transforms.alert_acknowledgements import AlertAckResult, alert_acknowledgement_status
from transforms.archive_health import ArchiveHealth
from transforms.archive_health import archive_health as archive_health_rules
from transforms.derived_custody import derived_custody
from transforms.retry_plan import RetryPlan
from transforms.retry_executions import RetryExecutionResult
from transforms.retry_executions import retry_execution_verdicts as retry_execution_rules
from transforms.retry_plan import retry_plan as retry_plan_rules

RETRY_PLAN, ARCHIVE_HEALTH = "retry_plan", "archive_health"
# The S3 report tables the archive health reads, in derived_custody's argument order.
REPORT_INPUTS = ("s3_inventory_reports", "s3_inventory_rows", "s3_batch_rows")
ANSWERS = (RETRY_PLAN, ARCHIVE_HEALTH)
STORED_ANSWERS = ANSWERS  # whose documents evidence_documents keeps (Evaluation.stored_documents)
# docs/executions-and-acknowledgements.md: answers computed after (and from) the answer they depend on.
RETRY_EXECUTIONS, ALERT_ACKNOWLEDGEMENTS = "retry_executions", "alert_acknowledgements"
FOLLOW_UPS = (RETRY_EXECUTIONS, ALERT_ACKNOWLEDGEMENTS)
DEPENDS_ON = {RETRY_EXECUTIONS: RETRY_PLAN, ALERT_ACKNOWLEDGEMENTS: ARCHIVE_HEALTH}
NIGHT_ANSWERS = ANSWERS + FOLLOW_UPS

Stage = Callable[[str], AbstractContextManager]  # e.g. Progress.step: times and shows a named stage


def _untimed(_: str) -> AbstractContextManager:
    return nullcontext()


def _kept(_: str, build: Callable[[object], evidence.Evidence]) -> evidence.Evidence:
    return build(None)  # no sink: the document keeps its text


class _Answer(NamedTuple):
    logs: tuple[str, ...]  # the accepted logs its rules read
    rules: Callable[[dict[str, pl.LazyFrame], datetime, Policy], RetryPlan | ArchiveHealth]
    validate: Callable[[RetryPlan | ArchiveHealth], None]
    document: Callable[..., evidence.Evidence]


def _retry_plan(accepted: dict[str, pl.LazyFrame], as_of: datetime, policy: Policy) -> RetryPlan:
    return retry_plan_rules(accepted["deliveries"], accepted["exports"], as_of, policy)


# The per-reference checks hold about 0.4 KB per archive reference at once (+1.9 GiB for 5M): above
# this many references they run a bucket at a time (docs/archive-health.md#memory).
REFERENCES_PER_BUCKET = 2_000_000


def reference_buckets(archives: pl.LazyFrame) -> int:
    """How many buckets of at most REFERENCES_PER_BUCKET archive references the checks run in."""
    references = archives.select(pl.len()).collect().item()
    return max(1, -(-references // REFERENCES_PER_BUCKET))


def _archive_health(accepted: dict[str, pl.LazyFrame], as_of: datetime, policy: Policy) -> ArchiveHealth:
    """docs/archive-health.md over the accepted custody checks and those derived from every S3 report
    dated at or before as_of (docs/real-sources.md#how-derived-checks-combine)."""
    # Kept lazy (a scan of the snapshot): each step reads only the archive columns it uses, and the
    # long ones (archive_uri, the S3 identity) are read only where needed.
    archives = accepted["archives"]
    if "s3_bucket" not in archives.collect_schema().names():  # records without the S3 identity (inline frames)
        archives = archives.with_columns(pl.lit(None, pl.Utf8).alias(c) for c in ("s3_bucket", "s3_key",
                                                                                  "s3_version_id"))
    reports = [accepted[name].collect() if name in accepted else None for name in REPORT_INPUTS]
    derived = derived_custody(archives, *reports, as_of, policy.s3_inventory_prefixes)
    checks = accepted["custody_checks"]
    if derived.checks.height:
        checks = pl.concat([checks, derived.checks.lazy().select(checks.collect_schema().names())],
                           how="vertical_relaxed")
    health = archive_health_rules(accepted["exports"], archives, checks, as_of, policy,
                                  reference_buckets=reference_buckets(archives),
                                  spill_directory=getattr(accepted, "directory", None))  # beside the snapshots
    return health._replace(derived_custody_checks=derived.counts,
                           inconclusive_batch_results=derived.inconclusive_batch_results)


def _validate_retry_plan(plan: RetryPlan) -> None:
    retry_plan.schema.validate(plan.records)


def _validate_archive_health(health: ArchiveHealth) -> None:
    archive_health.schema.validate(health.exports)
    archive_alerts.schema.validate(health.alerts)


_STEPS = {
    RETRY_PLAN: _Answer(("deliveries", "exports"), _retry_plan, _validate_retry_plan,
                        evidence.retry_plan_document),
    ARCHIVE_HEALTH: _Answer(("exports", "archives", "custody_checks", *REPORT_INPUTS), _archive_health,
                            _validate_archive_health,
                            evidence.archive_health_document),
}


def _retry_executions(accepted: dict[str, pl.LazyFrame], as_of: datetime, policy: Policy, plan: RetryPlan,
                      plan_doc: evidence.Evidence) -> RetryExecutionResult:
    """docs/executions-and-acknowledgements.md#retry-execution-verdicts: this run's plan (and its
    evidence_id) joins the recorded plans of every run."""
    return retry_execution_rules(accepted["retry_executions"], accepted["deliveries"], accepted["plan_runs"],
                                 accepted["plan_history"], plan.records, plan_doc["evidence_id"], as_of,
                                 policy.execution_grace_minutes)


def _alert_acknowledgements(accepted: dict[str, pl.LazyFrame], as_of: datetime, policy: Policy,
                            health: ArchiveHealth, _health_doc: evidence.Evidence) -> AlertAckResult:
    """docs/executions-and-acknowledgements.md#alert-acknowledgement-status for this run's alerts."""
    return alert_acknowledgement_status(health.alerts, accepted["alert_acknowledgements"], accepted["alert_history"],
                                        as_of, policy.ack_sla_hours)


def _validate_retry_executions(result: RetryExecutionResult) -> None:
    retry_execution_verdicts.schema.validate(result.executions)


def _validate_alert_acknowledgements(result: AlertAckResult) -> None:
    alert_ack_status.schema.validate(result.alerts)


# rules(accepted, as_of, policy, result of DEPENDS_ON[answer], its document)
_FOLLOW_UP_STEPS = {
    RETRY_EXECUTIONS: _Answer(("retry_executions", "deliveries", "plan_runs", "plan_history"), _retry_executions,
                              _validate_retry_executions, evidence.retry_executions_document),
    ALERT_ACKNOWLEDGEMENTS: _Answer(("alert_acknowledgements", "alert_history"), _alert_acknowledgements,
                                    _validate_alert_acknowledgements, evidence.alert_acknowledgements_document),
}


class Evaluation(NamedTuple):
    """What the rules returned and its evidence documents, per answer asked for."""
    results: dict[str, RetryPlan | ArchiveHealth]
    documents: dict[str, evidence.Evidence]

    @property
    def plan(self) -> RetryPlan:
        return self.results[RETRY_PLAN]

    @property
    def health(self) -> ArchiveHealth:
        return self.results[ARCHIVE_HEALTH]

    @property
    def plan_doc(self) -> evidence.Evidence:
        return self.documents[RETRY_PLAN]

    @property
    def health_doc(self) -> evidence.Evidence:
        return self.documents[ARCHIVE_HEALTH]

    @property
    def executions(self) -> RetryExecutionResult:
        return self.results[RETRY_EXECUTIONS]

    @property
    def acknowledgements(self) -> AlertAckResult:
        return self.results[ALERT_ACKNOWLEDGEMENTS]

    @property
    def executions_doc(self) -> evidence.Evidence:
        return self.documents[RETRY_EXECUTIONS]

    @property
    def acknowledgements_doc(self) -> evidence.Evidence:
        return self.documents[ALERT_ACKNOWLEDGEMENTS]

    @property
    def stored_documents(self) -> dict[str, evidence.Evidence]:
        """The documents kept in evidence_documents for the API's stored answers: the retry plan and
        the archive health. The follow-up documents also depend on the recorded run history, which the
        stored-answer key (as_of, policy, dataset) does not name, so the API always computes them."""
        return {answer: self.documents[answer] for answer in STORED_ANSWERS if answer in self.documents}

    @property
    def follow_up_documents(self) -> dict[str, evidence.Evidence]:
        """The documents of docs/executions-and-acknowledgements.md computed, by answer name."""
        return {answer: self.documents[answer] for answer in FOLLOW_UPS if answer in self.documents}

    @property
    def follow_up_tables(self) -> dict[str, pl.DataFrame]:
        """The warehouse result tables of the follow-up answers computed -> this evaluation's rows."""
        tables = {}
        if RETRY_EXECUTIONS in self.results:
            tables["retry_execution_verdicts"] = self.executions.executions
        if ALERT_ACKNOWLEDGEMENTS in self.results:
            tables["alert_ack_status"] = self.acknowledgements.alerts
        return tables


def _with_dependencies(answers: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(base answers, follow-up answers) to compute for the answers asked for."""
    base = tuple(dict.fromkeys(DEPENDS_ON.get(answer, answer) for answer in answers))
    return base, tuple(answer for answer in answers if answer in _FOLLOW_UP_STEPS)


class AcceptedRecords(dict):
    """Log name -> its accepted records (a LazyFrame), read from Parquet snapshots of the warehouse
    tables in a temporary directory. `evaluate` removes the directory when it is done (also on error);
    close() does it for a caller that does not evaluate, and it goes when the mapping is collected."""

    def __init__(self, *args, directory: Path | None = None, run_records=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.directory = directory
        self._remove = weakref.finalize(self, shutil.rmtree, directory, True) if directory is not None else None
        self._run_records = run_records  # this run's staging files, read too (ingest.RunRecords)

    def close(self) -> None:
        if self._remove is not None:
            self._remove()
        if self._run_records is not None:
            self._run_records.close()


def _snapshot_directory(con) -> Path:
    """A new directory for the snapshots, next to the warehouse file (`<db>.eval.<random>.tmp`; one per
    evaluation, so concurrent read-only readers do not meet), or in the system's temporary directory
    for an in-memory warehouse or one whose directory is not writable."""
    rows = con.execute("select path from duckdb_databases() where database_name = current_database()").fetchall()
    db = Path(rows[0][0]) if rows and rows[0][0] else None
    if db is not None:
        try:
            return Path(tempfile.mkdtemp(prefix=f"{db.name}.eval.", suffix=".tmp", dir=db.parent))
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix="exportaudit.eval.", suffix=".tmp"))


def accepted(con, answers: tuple[str, ...] = ANSWERS, as_of: datetime | None = None,
             release_cache: bool = False, run_records=None) -> AcceptedRecords:
    """The warehouse's accepted records of every log the given answers read (and the recorded run
    history the follow-up answers read; given the as_of to evaluate at, only the plans it can use).
    The accepted logs are snapshotted to Parquet and scanned lazily (warehouse.accepted_records), so
    the rules read only the columns and rows they use; pass the result to `evaluate`, which removes
    the snapshots. release_cache: then hand DuckDB's cached table blocks back (the night, alone on
    its connection; not the API, whose concurrent requests share one database and its memory limit).
    run_records (ingest.RunRecords): the records this run accepted are read from their staging files
    (warehouse.accepted_records `this_run`); they are removed with the snapshots."""
    base, follow_ups = _with_dependencies(answers)
    steps = [_STEPS[answer] for answer in base] + [_FOLLOW_UP_STEPS[answer] for answer in follow_ups]
    needed = {log: None for step in steps for log in step.logs}  # ordered, no repeats
    directory = _snapshot_directory(con)
    try:
        staged = run_records.logs if run_records is not None else {}
        records = AcceptedRecords(
            {log: warehouse.accepted_records(con, log, directory, (staged[log], run_records.run_id)
                                             if log in staged else None)
             if log in warehouse.ACCEPTED_SCHEMAS
             else history.history_records(con, log, as_of) if log in history.HISTORY_INPUTS
             else warehouse.report_records(con, log) for log in needed}, directory=directory,
            run_records=run_records)
        if release_cache:  # the rules read the snapshots, not DuckDB's cache
            warehouse.release_cached_blocks(con)
        return records
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def context(con, *, run_id: str, as_of: datetime, generated_at: datetime, generated_by: str,
            inputs: list[dict]) -> dict:
    """The documents' header values; the dataset is every file the warehouse has ingested."""
    return dict(run_id=run_id, as_of=as_of, generated_at=generated_at, generated_by=generated_by,
                dataset=evidence.dataset_identity(history.ingested_sha256s(con)), inputs=inputs)


def evaluate(accepted_records: dict[str, pl.LazyFrame], as_of: datetime, policy: Policy, context: dict,
             answers: tuple[str, ...] = ANSWERS, stage: Stage = _untimed,
             write_document: Callable[[str, Callable], evidence.Evidence] = _kept) -> Evaluation:
    """Rules -> Pandera validation of their output -> evidence documents, for each answer asked for
    (and the answers a follow-up depends on, computed first). write_document(answer, build): makes
    the answer's document with build(sink), which writes its text to the sink as it is encoded
    (the night's outputs.DocumentStager streams it to the run directory); by default the text is
    kept in the document."""
    def document(answer: str, step: _Answer) -> evidence.Evidence:
        return write_document(answer, lambda sink: step.document(results[answer], policy=policy, sink=sink,
                                                                 **context))

    try:
        base, follow_ups = _with_dependencies(answers)
        steps = {answer: _STEPS[answer] for answer in base}
        with stage("rules"):
            results = {answer: step.rules(accepted_records, as_of, policy) for answer, step in steps.items()}
        with stage("validation"):
            for answer, step in steps.items():
                step.validate(results[answer])
        with stage("evidence documents"):
            # One at a time: built side by side they took 0.6 s less at 1M exports but held both
            # documents' encoding buffers at once (peak +0.15-0.3 GiB, to 3.9 GiB).
            documents = {answer: document(answer, step) for answer, step in steps.items()}
        for answer in follow_ups:  # after the answer each depends on: it needs that document's evidence_id
            step, depends_on = _FOLLOW_UP_STEPS[answer], DEPENDS_ON[answer]
            with stage("rules"):
                results[answer] = step.rules(accepted_records, as_of, policy, results[depends_on],
                                             documents[depends_on])
            with stage("validation"):
                step.validate(results[answer])
            with stage("evidence documents"):
                documents[answer] = document(answer, step)
    finally:  # the snapshots the records were read from (accepted)
        if isinstance(accepted_records, AcceptedRecords):
            accepted_records.close()
    return Evaluation(results, documents)
