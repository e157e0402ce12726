"""One path from accepted records to evidence: the rules, Pandera validation of what they
return, then the evidence documents (docs/outputs.md).

The nightly flow and the HTTP API both call `evaluate`, so the API gives the command line's
answers for the same data, as_of and policy by construction. The API asks for one answer
at a time; the night asks for both.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Callable, NamedTuple

import polars as pl

from exportaudit import evidence, history, warehouse
from exportaudit.policy import Policy
from schemas import archive_alerts, archive_health, retry_plan
from transforms.archive_health import ArchiveHealth
from transforms.archive_health import archive_health as archive_health_rules
from transforms.retry_plan import RetryPlan
from transforms.retry_plan import retry_plan as retry_plan_rules

RETRY_PLAN, ARCHIVE_HEALTH = "retry_plan", "archive_health"
ANSWERS = (RETRY_PLAN, ARCHIVE_HEALTH)

Stage = Callable[[str], AbstractContextManager]  # e.g. Progress.step: times and shows a named stage


def _untimed(_: str) -> AbstractContextManager:
    return nullcontext()


class _Answer(NamedTuple):
    logs: tuple[str, ...]  # the accepted logs its rules read
    rules: Callable[[dict[str, pl.LazyFrame], datetime, Policy], RetryPlan | ArchiveHealth]
    validate: Callable[[RetryPlan | ArchiveHealth], None]
    document: Callable[..., evidence.Evidence]


def _retry_plan(accepted: dict[str, pl.LazyFrame], as_of: datetime, policy: Policy) -> RetryPlan:
    return retry_plan_rules(accepted["deliveries"], accepted["exports"], as_of, policy)


def _archive_health(accepted: dict[str, pl.LazyFrame], as_of: datetime, policy: Policy) -> ArchiveHealth:
    return archive_health_rules(accepted["exports"], accepted["archives"], accepted["custody_checks"], as_of, policy)


def _validate_retry_plan(plan: RetryPlan) -> None:
    retry_plan.schema.validate(plan.records)


def _validate_archive_health(health: ArchiveHealth) -> None:
    archive_health.schema.validate(health.exports)
    archive_alerts.schema.validate(health.alerts)


_STEPS = {
    RETRY_PLAN: _Answer(("deliveries", "exports"), _retry_plan, _validate_retry_plan,
                        evidence.retry_plan_document),
    ARCHIVE_HEALTH: _Answer(("exports", "archives", "custody_checks"), _archive_health, _validate_archive_health,
                            evidence.archive_health_document),
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


def accepted(con, answers: tuple[str, ...] = ANSWERS) -> dict[str, pl.LazyFrame]:
    """The warehouse's accepted records of every log the given answers read."""
    needed = {log: None for answer in answers for log in _STEPS[answer].logs}  # ordered, no repeats
    return {log: warehouse.accepted_records(con, log) for log in needed}


def context(con, *, run_id: str, as_of: datetime, generated_at: datetime, generated_by: str,
            inputs: list[dict]) -> dict:
    """The documents' header values; the dataset is every file the warehouse has ingested."""
    return dict(run_id=run_id, as_of=as_of, generated_at=generated_at, generated_by=generated_by,
                dataset=evidence.dataset_identity(history.ingested_sha256s(con)), inputs=inputs)


def evaluate(accepted_records: dict[str, pl.LazyFrame], as_of: datetime, policy: Policy, context: dict,
             answers: tuple[str, ...] = ANSWERS, stage: Stage = _untimed) -> Evaluation:
    """Rules -> Pandera validation of their output -> evidence documents, for each answer asked for."""
    steps = {answer: _STEPS[answer] for answer in answers}
    with stage("rules"):
        results = {answer: step.rules(accepted_records, as_of, policy) for answer, step in steps.items()}
    with stage("validation"):
        for answer, step in steps.items():
            step.validate(results[answer])
    with stage("evidence documents"):
        documents = {answer: step.document(results[answer], policy=policy, **context)
                     for answer, step in steps.items()}
    return Evaluation(results, documents)
