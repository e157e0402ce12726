"""Retry worker executions checked against the retry plans, verdict by verdict, with their
precedence and boundaries, and the previous plan's retries not executed
(docs/executions-and-acknowledgements.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from schemas.retry_execution_verdicts import schema as verdicts_schema
from transforms.retry_executions import VERDICTS, retry_execution_verdicts
from transforms.timestamps import UTC_US

THIS_PLAN = "plan-this"  # evidence_id of this run's retry plan
PREVIOUS_PLAN = "plan-previous"  # the run of 2026-11-19T12:00:00Z
NEXT_AT = "2026-11-20T10:00:00Z"  # next_attempt_at of the default plan record
US = timedelta(microseconds=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


AS_OF = at("2026-11-20T12:00:00Z")

EXECUTION_SCHEMA = {"execution_id": pl.Utf8, "plan_evidence_id": pl.Utf8, "export_id": pl.Utf8,
                    "destination": pl.Utf8, "executed_at": UTC_US, "result": pl.Utf8, "attempt_id": pl.Utf8,
                    "worker": pl.Utf8}
DELIVERY_SCHEMA = {"attempt_id": pl.Utf8, "export_id": pl.Utf8, "destination": pl.Utf8, "attempted_at": UTC_US}
RUN_SCHEMA = {"run_id": pl.Utf8, "as_of": UTC_US, "finished_at": UTC_US, "retry_plan_evidence_id": pl.Utf8}
PLAN_SCHEMA = {"export_id": pl.Utf8, "destination": pl.Utf8, "decision": pl.Utf8, "next_attempt_at": UTC_US}


def _instant(value):
    return at(value) if isinstance(value, str) else value


def _frame(rows: list[dict], schema: dict) -> pl.LazyFrame:
    timestamps = [name for name, dtype in schema.items() if dtype == UTC_US]
    rows = [{name: (_instant(row.get(name)) if name in timestamps else row.get(name)) for name in schema}
            for row in rows]
    return pl.DataFrame(rows, schema=schema, orient="row").lazy()


def execution(execution_id="x1", plan=PREVIOUS_PLAN, export_id="exp-1", destination="grc", executed_at=NEXT_AT,
              result="delivered", attempt_id="a1", worker="w1") -> dict:
    return dict(execution_id=execution_id, plan_evidence_id=plan, export_id=export_id, destination=destination,
                executed_at=executed_at, result=result, attempt_id=attempt_id, worker=worker)


def attempt(attempt_id="a1", export_id="exp-1", destination="grc", attempted_at="2026-11-20T10:00:01Z") -> dict:
    return dict(attempt_id=attempt_id, export_id=export_id, destination=destination, attempted_at=attempted_at)


def record(export_id="exp-1", destination="grc", decision="retry", next_attempt_at=NEXT_AT) -> dict:
    next_attempt_at = next_attempt_at if decision in ("retry", "wait") else None
    return dict(export_id=export_id, destination=destination, decision=decision, next_attempt_at=next_attempt_at)


def run(run_id, evidence_id, as_of, finished_at=None) -> dict:
    return dict(run_id=run_id, retry_plan_evidence_id=evidence_id, as_of=as_of,
                finished_at=finished_at or _instant(as_of) + timedelta(minutes=5))


DEFAULT_RUNS = [run("r-previous", PREVIOUS_PLAN, "2026-11-19T12:00:00Z")]


def judge(executions, attempts=None, runs=None, history=None, current=(), as_of=AS_OF, grace_minutes=60):
    """Verdicts over: earlier runs (default: the previous run, whose plan holds `history`,
    default one retry record for exp-1/grc) and this run's plan `current` (default empty)."""
    runs = DEFAULT_RUNS if runs is None else runs
    if history is None:
        history = [dict(record(), run_id="r-previous")]
    result = retry_execution_verdicts(
        _frame(executions, EXECUTION_SCHEMA), _frame([attempt()] if attempts is None else attempts, DELIVERY_SCHEMA),
        _frame(runs, RUN_SCHEMA), _frame(history, {"run_id": pl.Utf8, **PLAN_SCHEMA}),
        _frame(list(current), PLAN_SCHEMA).collect(), THIS_PLAN, as_of, grace_minutes,
    )
    verdicts_schema.validate(result.executions)
    return result


def verdict_of(*executions, **kwargs) -> str:
    [row] = judge(list(executions), **kwargs).executions.to_dicts()
    return row["verdict"]


# --- the verdict table, each verdict firing and not firing ---------------------------------------
def test_conforming_execution_full_record():
    result = judge([execution(worker=None)])
    expected = pl.DataFrame(
        [{"execution_id": "x1", "plan_evidence_id": PREVIOUS_PLAN, "export_id": "exp-1", "destination": "grc",
          "executed_at": at(NEXT_AT), "result": "delivered", "attempt_id": "a1", "worker": None,
          "verdict": "conforming", "severity": None, "plan_decision": "retry", "plan_next_attempt_at": at(NEXT_AT)}],
        schema={**EXECUTION_SCHEMA, "verdict": pl.Utf8, "severity": pl.Utf8, "plan_decision": pl.Utf8,
                "plan_next_attempt_at": UTC_US}, orient="row",
    )
    assert_frame_equal(result.executions, expected)


def test_unknown_plan_fires_for_an_id_no_run_has():
    [row] = judge([execution(plan="plan-nobody")]).executions.to_dicts()
    assert (row["verdict"], row["severity"], row["plan_decision"], row["plan_next_attempt_at"]) == \
        ("unknown_plan", "warning", None, None)


def test_unknown_plan_does_not_fire_for_a_run_with_an_empty_plan():
    runs = [*DEFAULT_RUNS, run("r-empty", "plan-empty", "2026-11-18T12:00:00Z")]
    [row] = judge([execution(plan="plan-empty")], runs=runs).executions.to_dicts()
    assert (row["verdict"], row["severity"]) == ("not_in_plan", "critical")


def test_this_runs_plan_is_a_known_plan():
    assert verdict_of(execution(plan=THIS_PLAN), current=[record()]) == "conforming"
    assert verdict_of(execution(plan=THIS_PLAN), current=[]) == "not_in_plan"


def test_not_in_plan_fires_for_another_delivery_even_when_skipped():
    assert verdict_of(execution(destination="other", attempt_id=None)) == "not_in_plan"
    assert verdict_of(execution(destination="other", result="skipped", attempt_id=None)) == "not_in_plan"


@pytest.mark.parametrize("decision", ["hold", "suppress"])
@pytest.mark.parametrize(("result", "expected"), [("delivered", "against_decision"), ("failed", "against_decision"),
                                                  ("skipped", "conforming")])
def test_against_decision(decision, result, expected):
    history = [dict(record(decision=decision), run_id="r-previous")]
    [row] = judge([execution(result=result)], history=history).executions.to_dicts()
    assert row["verdict"] == expected
    assert (row["plan_decision"], row["plan_next_attempt_at"]) == (decision, None)
    assert row["severity"] == ("critical" if expected == "against_decision" else None)


@pytest.mark.parametrize("decision", ["retry", "wait"])
def test_before_next_attempt_boundary(decision):
    history = [dict(record(decision=decision), run_id="r-previous")]
    one_us_early = at(NEXT_AT) - US
    assert verdict_of(execution(executed_at=one_us_early), history=history) == "before_next_attempt"
    assert verdict_of(execution(executed_at=NEXT_AT), history=history) == "conforming"  # not before: conforming
    assert verdict_of(execution(executed_at=one_us_early, result="skipped"), history=history) == "conforming"


def test_before_next_attempt_severity_is_warning():
    [row] = judge([execution(executed_at="2026-11-20T09:00:00Z", result="failed")]).executions.to_dicts()
    assert (row["verdict"], row["severity"]) == ("before_next_attempt", "warning")


def test_attempt_mismatch_fires_for_an_attempt_of_another_delivery():
    for other in (attempt(destination="elsewhere"), attempt(export_id="exp-2")):
        [row] = judge([execution()], attempts=[other]).executions.to_dicts()
        assert (row["verdict"], row["severity"]) == ("attempt_mismatch", "critical")
    # a skipped execution naming another delivery's attempt: the table has no result condition
    assert verdict_of(execution(result="skipped"), attempts=[attempt(destination="elsewhere")]) == "attempt_mismatch"


def test_attempt_mismatch_ignores_attempts_after_as_of():
    later = attempt(destination="elsewhere", attempted_at=AS_OF + US)
    assert verdict_of(execution(), attempts=[later]) == "attempt_not_logged"
    at_as_of = attempt(destination="elsewhere", attempted_at=AS_OF)
    assert verdict_of(execution(), attempts=[at_as_of]) == "attempt_mismatch"


def test_attempt_outcome_and_time_are_not_checked():
    # an attempt logged before the execution, of the same delivery, is conforming (literal reading)
    assert verdict_of(execution(), attempts=[attempt(attempted_at="2026-11-01T00:00:00Z")]) == "conforming"


@pytest.mark.parametrize("result", ["delivered", "failed"])
def test_attempt_not_logged_fires(result):
    [row] = judge([execution(result=result, attempt_id=None)]).executions.to_dicts()
    assert (row["verdict"], row["severity"]) == ("attempt_not_logged", "warning")
    assert verdict_of(execution(result=result, attempt_id="a-unknown")) == "attempt_not_logged"
    assert verdict_of(execution(result=result, attempt_id="a1"), attempts=[attempt(attempted_at=AS_OF + US)]) == \
        "attempt_not_logged"


def test_attempt_not_logged_does_not_fire_for_skipped():
    assert verdict_of(execution(result="skipped", attempt_id=None)) == "conforming"
    assert verdict_of(execution(result="skipped", attempt_id="a-unknown")) == "conforming"


# --- precedence: the first that applies ------------------------------------------------------------
def test_precedence_of_verdicts():
    mismatch = [attempt(destination="elsewhere")]
    # unknown_plan before everything
    assert verdict_of(execution(plan="plan-nobody", attempt_id=None)) == "unknown_plan"
    assert verdict_of(execution(plan="plan-nobody"), attempts=mismatch) == "unknown_plan"
    # not_in_plan before attempt checks
    assert verdict_of(execution(destination="other"), attempts=[attempt()]) == "not_in_plan"
    # against_decision before attempt checks
    hold = [dict(record(decision="hold"), run_id="r-previous")]
    assert verdict_of(execution(), attempts=mismatch, history=hold) == "against_decision"
    assert verdict_of(execution(attempt_id=None), history=hold) == "against_decision"
    # before_next_attempt before attempt checks
    early = "2026-11-20T09:00:00Z"
    assert verdict_of(execution(executed_at=early), attempts=mismatch) == "before_next_attempt"
    assert verdict_of(execution(executed_at=early, attempt_id=None)) == "before_next_attempt"


# --- scope and order -----------------------------------------------------------------------------
def test_executions_after_as_of_are_not_listed_and_order_is_executed_at_then_id():
    executions = [execution("x3", executed_at="2026-11-20T11:00:00Z"), execution("x2", executed_at=AS_OF),
                  execution("x1", executed_at="2026-11-20T11:00:00Z"), execution("x0", executed_at=AS_OF + US)]
    result = judge(executions)
    assert result.executions["execution_id"].to_list() == ["x1", "x3", "x2"]


def test_equal_evidence_ids_count_once():
    runs = [*DEFAULT_RUNS, run("r-again", PREVIOUS_PLAN, "2026-11-19T12:00:00Z")]
    history = [dict(record(), run_id="r-previous"), dict(record(), run_id="r-again")]
    result = judge([execution()], runs=runs, history=history)
    assert result.executions.height == 1
    assert result.executions["verdict"].to_list() == ["conforming"]


def test_summary_lists_every_verdict():
    result = judge([execution("x1"), execution("x2", plan="plan-nobody"), execution("x3", attempt_id=None)])
    assert result.summary == {
        "verdicts": {"unknown_plan": 1, "not_in_plan": 0, "against_decision": 0, "before_next_attempt": 0,
                     "attempt_mismatch": 0, "attempt_not_logged": 1, "conforming": 1},
        "retry_not_executed": 0,
    }
    assert list(result.summary["verdicts"]) == list(VERDICTS)


def test_no_executions_and_no_runs():
    result = judge([], runs=[], history=[])
    assert result.executions.height == 0 and result.not_executed.height == 0
    assert result.summary["verdicts"] == {verdict: 0 for verdict in VERDICTS}


# --- not executed --------------------------------------------------------------------------------
def not_executed(executions=(), **kwargs) -> list[tuple]:
    frame = judge(list(executions), **kwargs).not_executed
    return [tuple(row.values()) for row in frame.to_dicts()]


def test_retry_not_executed_at_the_grace_boundary():
    grace_ends = at(NEXT_AT) + timedelta(minutes=60)
    assert not_executed(as_of=grace_ends) == [("exp-1", "grc", PREVIOUS_PLAN, at(NEXT_AT))]  # <= fires
    assert not_executed(as_of=grace_ends - US) == []
    assert not_executed(as_of=grace_ends, grace_minutes=60.5) == []
    assert not_executed(as_of=grace_ends, grace_minutes=0) == [("exp-1", "grc", PREVIOUS_PLAN, at(NEXT_AT))]


def test_retry_not_executed_full_frame_sorted():
    history = [dict(record("exp-2", "b"), run_id="r-previous"), dict(record("exp-1", "z"), run_id="r-previous"),
               dict(record("exp-1", "a", next_attempt_at="2026-11-20T09:00:00Z"), run_id="r-previous")]
    frame = judge([], history=history).not_executed
    expected = pl.DataFrame(
        {"export_id": ["exp-1", "exp-1", "exp-2"], "destination": ["a", "z", "b"],
         "plan_evidence_id": [PREVIOUS_PLAN] * 3,
         "next_attempt_at": [at("2026-11-20T09:00:00Z"), at(NEXT_AT), at(NEXT_AT)]},
        schema={"export_id": pl.Utf8, "destination": pl.Utf8, "plan_evidence_id": pl.Utf8, "next_attempt_at": UTC_US},
    )
    assert_frame_equal(frame, expected)
    assert judge([], history=history).summary["retry_not_executed"] == 3


def test_wait_hold_and_suppress_records_are_not_checked():
    for decision in ("wait", "hold", "suppress"):
        assert not_executed(history=[dict(record(decision=decision), run_id="r-previous")]) == []


@pytest.mark.parametrize("result", ["delivered", "failed", "skipped"])
def test_any_execution_of_that_plan_counts_whatever_its_result_or_verdict(result):
    assert not_executed([execution(result=result)]) == []
    # a non-conforming execution (before its next attempt, attempt not logged) still counts
    assert not_executed([execution(result=result, executed_at="2026-11-19T00:00:00Z", attempt_id=None)]) == []


def test_executions_of_another_plan_or_after_as_of_do_not_count():
    finding = [("exp-1", "grc", PREVIOUS_PLAN, at(NEXT_AT))]
    assert not_executed([execution(plan=THIS_PLAN)], current=[record()]) == finding
    assert not_executed([execution(executed_at=AS_OF + US)]) == finding
    assert not_executed([execution(destination="other")]) == finding


def test_this_runs_plan_is_never_the_previous_plan():
    assert not_executed(runs=[], history=[], current=[record()]) == []


def test_previous_plan_is_the_greatest_earlier_as_of_whenever_it_ran():
    runs = [run("r-old", "plan-old", "2026-11-18T12:00:00Z", finished_at=at("2026-11-25T00:00:00Z")),  # ran late
            run("r-previous", PREVIOUS_PLAN, "2026-11-19T12:00:00Z", finished_at=at("2026-11-19T12:05:00Z")),
            run("r-same", "plan-same", AS_OF), run("r-future", "plan-future", "2026-11-21T00:00:00Z")]
    history = [dict(record("exp-old"), run_id="r-old"), dict(record("exp-prev"), run_id="r-previous"),
               dict(record("exp-same"), run_id="r-same"), dict(record("exp-future"), run_id="r-future")]
    assert [row[0] for row in not_executed(runs=runs, history=history)] == ["exp-prev"]


def test_previous_plan_ties_on_as_of_go_to_the_run_recorded_last():
    tie = "2026-11-19T12:00:00Z"
    runs = [run("r-b", "plan-b", tie, finished_at=at("2026-11-19T13:00:00Z")),
            run("r-a", "plan-a", tie, finished_at=at("2026-11-19T14:00:00Z"))]
    history = [dict(record("exp-a"), run_id="r-a"), dict(record("exp-b"), run_id="r-b")]
    assert not_executed(runs=runs, history=history) == [("exp-a", "grc", "plan-a", at(NEXT_AT))]
    runs[1]["finished_at"] = at("2026-11-19T12:30:00Z")
    assert not_executed(runs=runs, history=history) == [("exp-b", "grc", "plan-b", at(NEXT_AT))]


def test_an_empty_previous_plan_has_nothing_not_executed():
    runs = [run("r-old", "plan-old", "2026-11-18T12:00:00Z"), run("r-empty", "plan-empty", "2026-11-19T12:00:00Z")]
    history = [dict(record(), run_id="r-old")]
    assert not_executed(runs=runs, history=history) == []


# --- input model of the accepted log -------------------------------------------------------------
def test_accepted_retry_executions_model():
    model = pytest.importorskip("schemas.retry_executions", reason="contract.py does not declare the log yet",
                                exc_type=ImportError)
    lineage = {"extra_fields": None, "source_file_sha256": "f" * 64, "source_row": 1, "ingest_run_id": "r1"}
    row = {**execution(), "executed_at": at(NEXT_AT), **lineage}
    frame = pl.DataFrame([row], schema={**EXECUTION_SCHEMA, "extra_fields": pl.Utf8, "source_file_sha256": pl.Utf8,
                                        "source_row": pl.Int64, "ingest_run_id": pl.Utf8}, orient="row")
    model.schema.validate(frame)
    with pytest.raises(Exception):
        model.schema.validate(frame.with_columns(result=pl.lit("retried")))
