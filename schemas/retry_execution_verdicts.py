"""Pandera model of retry execution verdicts (docs/executions-and-acknowledgements.md): one record per retry worker
execution dated at or before as_of, with the verdict of checking it against its plan."""

import pandera.polars as pa
import polars as pl

from exportaudit.vocabulary import DECISIONS, SEVERITIES
from transforms.retry_executions import EXECUTION_RESULTS, VERDICT_SEVERITY, VERDICTS
from transforms.timestamps import UTC_US


def _severity_follows_verdict(data) -> pl.LazyFrame:
    expected = pl.col("verdict").replace_strict(VERDICT_SEVERITY, return_dtype=pl.Utf8)
    return data.lazyframe.select(pl.col("severity").eq_missing(expected))


def _plan_fields_only_when_found(data) -> pl.LazyFrame:
    return data.lazyframe.select(
        pl.col("plan_decision").is_null() == pl.col("verdict").is_in(["unknown_plan", "not_in_plan"])
    )


schema = pa.DataFrameSchema(
    {
        "execution_id": pa.Column(pl.Utf8, unique=True, description="Id of the retry worker execution."),
        "plan_evidence_id": pa.Column(pl.Utf8,
                                      description="evidence_id of the retry-plan document the worker acted on."),
        "export_id": pa.Column(pl.Utf8, description="Export the worker re-sent (or skipped)."),
        "destination": pa.Column(pl.Utf8, description="Destination the worker re-sent to (or skipped)."),
        "executed_at": pa.Column(UTC_US, description="When the worker acted (UTC); at or before as_of."),
        "result": pa.Column(pl.Utf8, checks=pa.Check.isin(EXECUTION_RESULTS),
                            description="delivered, failed or skipped, as the worker recorded it."),
        "attempt_id": pa.Column(pl.Utf8, nullable=True, description="Delivery attempt the execution produced, if any."),
        "worker": pa.Column(pl.Utf8, nullable=True, description="Worker that acted, if recorded."),
        "verdict": pa.Column(pl.Utf8, checks=pa.Check.isin(VERDICTS),
                             description="First verdict of the verdict table that applies; conforming when none."),
        "severity": pa.Column(pl.Utf8, nullable=True, checks=pa.Check.isin(SEVERITIES),
                              description="critical or warning, by verdict; null for conforming."),
        "plan_decision": pa.Column(pl.Utf8, nullable=True, checks=pa.Check.isin(DECISIONS),
                                   description="Decision of the plan record for this delivery; null when the plan "
                                               "or the record was not found."),
        "plan_next_attempt_at": pa.Column(UTC_US, nullable=True,
                                          description="next_attempt_at of that plan record (UTC); null when not found "
                                                      "or the decision is hold or suppress."),
    },
    checks=[pa.Check(_severity_follows_verdict, name="severity_follows_verdict"),
            pa.Check(_plan_fields_only_when_found, name="plan_decision_only_when_found")],
    name="retry_execution_verdicts",
    description="Retry worker executions checked against the retry plans: one verdict per execution.",
    strict=True,
    ordered=True,
)
