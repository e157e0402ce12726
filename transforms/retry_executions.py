"""Retry worker executions checked against the retry plans: accepted executions + the plans of
every run + accepted delivery attempts + as_of + grace -> one verdict per execution, and the
retries the previous plan ordered that nobody executed
(docs/executions-and-acknowledgements.md, "Retry execution verdicts").

Read top to bottom: which plan each execution refers to (any run, this one included), the
verdict table as named expressions in table order (first that applies wins), then the previous
plan and its `retry` records with no execution.

Literal readings kept on purpose (see the doc): a `skipped` execution of a delivery not in the
plan is still `not_in_plan`; attempt_id is checked only for existence (attempted_at <= as_of)
and its (export_id, destination), not for the attempt's outcome or time; an execution dated
before its plan's as_of is judged like any other.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import polars as pl

from exportaudit.vocabulary import CRITICAL, HOLD, RETRY, SCHEDULED_DECISIONS, SUPPRESS, WARNING
from transforms.current_state import up_to
from transforms.timestamps import UTC_US

# verdict -> severity, in the order of the verdict table: the first that applies wins. conforming has none.
VERDICT_SEVERITY = {
    "unknown_plan": WARNING,
    "not_in_plan": CRITICAL,
    "against_decision": CRITICAL,
    "before_next_attempt": WARNING,
    "attempt_mismatch": CRITICAL,
    "attempt_not_logged": WARNING,
    "conforming": None,
}
VERDICTS = tuple(VERDICT_SEVERITY)
EXECUTION_RESULTS = ("delivered", "failed", "skipped")
NOT_EXECUTED_SEVERITY = WARNING  # every retry_not_executed finding is a warning (for the gates)

EXECUTION_COLUMNS = (
    "execution_id", "plan_evidence_id", "export_id", "destination", "executed_at", "result", "attempt_id", "worker",
    "verdict", "severity", "plan_decision", "plan_next_attempt_at",
)
NOT_EXECUTED_COLUMNS = ("export_id", "destination", "plan_evidence_id", "next_attempt_at")

_US_PER_MINUTE = 60_000_000
_DELIVERY = ["export_id", "destination"]


class RetryExecutionResult(NamedTuple):
    executions: pl.DataFrame  # one row per execution dated <= as_of, sorted by executed_at, execution_id
    not_executed: pl.DataFrame  # retry_not_executed findings, sorted by export_id, destination
    summary: dict  # {"verdicts": {verdict: count, every verdict}, "retry_not_executed": n}


def plan_records(plan_runs: pl.LazyFrame, plan_history: pl.LazyFrame, current_plan: pl.LazyFrame,
                 current_plan_evidence_id: str, wanted: pl.LazyFrame) -> pl.LazyFrame:
    """The plan records of every run, this one included, keyed by the plan's evidence_id, that
    match `wanted` (a frame of some of plan_evidence_id, export_id, destination): one row per
    (plan_evidence_id, export_id, destination). Equal evidence ids have equal records (the
    evidence_id names the content), so the first met stands for them all. Plans run to millions
    of records and few are wanted: the match is made before `unique`."""
    earlier = plan_history.join(plan_runs.select("run_id", "retry_plan_evidence_id"), on="run_id", how="inner")
    this_run = current_plan.with_columns(retry_plan_evidence_id=pl.lit(current_plan_evidence_id, dtype=pl.Utf8))
    columns = ["retry_plan_evidence_id", *_DELIVERY, "decision", "next_attempt_at"]
    return (
        pl.concat([this_run.select(columns), earlier.select(columns)], how="vertical_relaxed")
        .rename({"retry_plan_evidence_id": "plan_evidence_id"})
        .join(wanted, on=wanted.collect_schema().names(), how="semi", maintain_order="left")
        .unique(subset=["plan_evidence_id", *_DELIVERY], keep="first", maintain_order=True)
    )


def known_plan_ids(plan_runs: pl.LazyFrame, current_plan_evidence_id: str) -> pl.LazyFrame:
    """Retry-plan evidence ids of every run in the warehouse, this one included (a run whose plan
    is empty still has one)."""
    this_run = pl.LazyFrame({"plan_evidence_id": [current_plan_evidence_id]}, schema={"plan_evidence_id": pl.Utf8})
    earlier = plan_runs.select(plan_evidence_id="retry_plan_evidence_id")
    return pl.concat([this_run, earlier]).drop_nulls().unique()


def previous_plan_evidence_id(plan_runs: pl.LazyFrame, as_of: datetime) -> str | None:
    """Evidence id of the previous plan: the run with the greatest as_of strictly
    earlier than this as_of, whenever it ran; ties: the run recorded last (greatest finished_at,
    then greatest run_id, as the latest-run view orders runs). None when there is no such run."""
    earlier = (
        plan_runs.filter(pl.col("as_of") < pl.lit(as_of, dtype=UTC_US))
        .sort(["as_of", "finished_at", "run_id"], nulls_last=True)  # not yet finished: recorded last
        .select("retry_plan_evidence_id")
        .tail(1)
        .collect()
    )
    return earlier.item() if earlier.height else None


def verdict(conditions: dict[str, pl.Expr]) -> pl.Expr:
    """The first verdict whose condition holds, in table order; conforming when none does."""
    chosen = pl.lit("conforming")
    for name in reversed(VERDICTS[:-1]):
        chosen = pl.when(conditions[name].fill_null(False)).then(pl.lit(name)).otherwise(chosen)
    return chosen


def retry_execution_verdicts(executions: pl.LazyFrame, deliveries: pl.LazyFrame, plan_runs: pl.LazyFrame,
                             plan_history: pl.LazyFrame, current_plan: pl.LazyFrame | pl.DataFrame,
                             current_plan_evidence_id: str, as_of: datetime,
                             execution_grace_minutes: float) -> RetryExecutionResult:
    """One verdict per execution dated <= as_of, and the previous plan's retries
    not executed within the grace window.

    executions: accepted retry_executions (execution_id, plan_evidence_id, export_id, destination,
      executed_at, result, attempt_id, worker).
    deliveries: accepted delivery attempts (attempt_id, export_id, destination, attempted_at).
    plan_runs: the runs table of earlier runs (run_id, as_of, finished_at, retry_plan_evidence_id).
    plan_history: the retry_plan rows of earlier runs (run_id, export_id, destination, decision,
      next_attempt_at).
    current_plan, current_plan_evidence_id: this run's plan records (RetryPlan.records) and its evidence_id.
    """
    now = pl.lit(as_of, dtype=UTC_US)
    in_scope = up_to(executions, "executed_at", as_of).collect().lazy()  # used three times below: computed once
    # Only the plan records and attempts the executions name are looked up (plans and attempts run
    # to millions of rows; executions are few): filtered on their keys first, before `unique`.
    previous_id = previous_plan_evidence_id(plan_runs, as_of)  # None: no previous plan

    def records(wanted: pl.LazyFrame) -> pl.LazyFrame:
        return plan_records(plan_runs, plan_history, current_plan.lazy(), current_plan_evidence_id, wanted)

    executed_records = records(in_scope.select("plan_evidence_id", *_DELIVERY).unique())
    known = known_plan_ids(plan_runs, current_plan_evidence_id).with_columns(plan_known=pl.lit(True))
    attempts = (
        up_to(deliveries, "attempted_at", as_of)
        .join(in_scope.select("attempt_id").unique(), on="attempt_id", how="semi")
        .select("attempt_id", attempt_export_id="export_id", attempt_destination="destination").unique("attempt_id")
    )

    judged = (
        in_scope.select(EXECUTION_COLUMNS[:8])
        .join(known, on="plan_evidence_id", how="left")
        .join(executed_records.rename({"decision": "plan_decision", "next_attempt_at": "plan_next_attempt_at"}),
              on=["plan_evidence_id", *_DELIVERY], how="left")
        .join(attempts, on="attempt_id", how="left")
    )

    decision, result = pl.col("plan_decision"), pl.col("result")
    executed = result != "skipped"
    attempt_logged = pl.col("attempt_export_id").is_not_null()
    conditions = {
        "unknown_plan": pl.col("plan_known").is_null(),
        "not_in_plan": decision.is_null(),
        "against_decision": decision.is_in([HOLD, SUPPRESS]) & executed,
        "before_next_attempt": decision.is_in(list(SCHEDULED_DECISIONS)) & executed
        & (pl.col("executed_at") < pl.col("plan_next_attempt_at")),
        "attempt_mismatch": attempt_logged & ((pl.col("attempt_export_id") != pl.col("export_id"))
                                              | (pl.col("attempt_destination") != pl.col("destination"))),
        "attempt_not_logged": result.is_in(["delivered", "failed"]) & ~attempt_logged,
    }
    verdicts = (
        judged.with_columns(verdict=verdict(conditions))
        .with_columns(severity=pl.col("verdict").replace_strict(VERDICT_SEVERITY, return_dtype=pl.Utf8))
        .sort(["executed_at", "execution_id"])
        .select(EXECUTION_COLUMNS)
        .collect()
    )

    grace = pl.duration(microseconds=round(float(execution_grace_minutes) * _US_PER_MINUTE))
    previous_plan = records(pl.LazyFrame({"plan_evidence_id": [previous_id]}, schema={"plan_evidence_id": pl.Utf8}))
    carried_out = (in_scope.filter(pl.col("plan_evidence_id") == pl.lit(previous_id, dtype=pl.Utf8))
                   .select(_DELIVERY).unique())
    not_executed = (
        previous_plan.filter(
            (pl.col("decision") == RETRY)  # wait records are not checked
            & (pl.col("next_attempt_at") + grace <= now)
        )
        .join(carried_out, on=_DELIVERY, how="anti")
        .sort(_DELIVERY)
        .select(NOT_EXECUTED_COLUMNS)
        .collect()
    )
    return RetryExecutionResult(verdicts, not_executed, retry_execution_summary(verdicts, not_executed))


def retry_execution_summary(executions: pl.DataFrame, not_executed: pl.DataFrame) -> dict:
    """The document's summary: a count per verdict (every verdict, zeros included), retry_not_executed."""
    counts = executions["verdict"].value_counts()
    by_verdict = dict(zip(counts["verdict"], counts["count"]))
    return {
        "verdicts": {name: int(by_verdict.get(name, 0)) for name in VERDICTS},
        "retry_not_executed": not_executed.height,
    }
