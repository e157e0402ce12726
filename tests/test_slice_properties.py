"""Invariants of retry execution verdicts and alert acknowledgement status (hypothesis),
checked against a row-by-row reading of docs/executions-and-acknowledgements.md."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.alert_acknowledgements import ACK_STATUSES, alert_acknowledgement_status
from transforms.retry_executions import VERDICT_SEVERITY, VERDICTS, retry_execution_verdicts
from transforms.timestamps import UTC_US

AS_OF = datetime.fromisoformat("2026-11-20T12:00:00Z")
GRACE = timedelta(minutes=60)
SLA = timedelta(hours=24)
TIMES = [AS_OF + timedelta(minutes=m) for m in (-1500, -1440, -120, -60, -59, -1, 0, 1, 60)]
EVIDENCE_IDS = ["p1", "p2", "p3"]
times = st.sampled_from(TIMES)
deliveries_keys = st.tuples(st.sampled_from(["e1", "e2"]), st.sampled_from(["d1", "d2"]))


def _frame(rows: list[dict], schema: dict) -> pl.LazyFrame:
    return pl.DataFrame([{name: row.get(name) for name in schema} for row in rows], schema=schema, orient="row").lazy()


@st.composite
def plan_strategy(draw) -> list[dict]:
    keys = draw(st.lists(deliveries_keys, unique=True, min_size=1, max_size=4))
    records = []
    for export_id, destination in keys:
        decision = draw(st.sampled_from(["retry", "retry", "wait", "hold", "suppress"]))
        next_at = draw(times) if decision in ("retry", "wait") else None
        records.append(dict(export_id=export_id, destination=destination, decision=decision, next_attempt_at=next_at))
    return records


plans = st.fixed_dictionaries({evidence_id: plan_strategy() for evidence_id in [*EVIDENCE_IDS, "pc"]})
runs = st.lists(st.fixed_dictionaries({"retry_plan_evidence_id": st.sampled_from(EVIDENCE_IDS), "as_of": times,
                                       "finished_at": times}), min_size=1, max_size=4).map(
    lambda rows: [dict(r, run_id=f"r{i}") for i, r in enumerate(rows)])
attempts = st.lists(st.tuples(deliveries_keys, times), max_size=4).map(
    lambda rows: [dict(attempt_id=f"a{i}", export_id=k[0], destination=k[1], attempted_at=t)
                  for i, (k, t) in enumerate(rows)])
executions = st.lists(st.fixed_dictionaries({
    "plan_evidence_id": st.sampled_from([*EVIDENCE_IDS, "pc", "pc", "p-unknown"]),
    "key": deliveries_keys,
    "executed_at": times,
    "result": st.sampled_from(["delivered", "failed", "skipped"]),
    "attempt_id": st.sampled_from([None, "a0", "a0", "a1", "a2", "a9"]),
}), max_size=8).map(lambda rows: [
    dict(execution_id=f"x{i}", plan_evidence_id=r["plan_evidence_id"], export_id=r["key"][0], destination=r["key"][1],
         executed_at=r["executed_at"], result=r["result"], attempt_id=r["attempt_id"], worker=None)
    for i, r in enumerate(rows)])


def expected_verdict(execution: dict, known: set, plans: dict, attempts: list[dict]) -> str:
    """The verdict table read row by row, for one execution."""
    key = (execution["export_id"], execution["destination"])
    if execution["plan_evidence_id"] not in known:
        return "unknown_plan"
    record = next((r for r in plans[execution["plan_evidence_id"]] if (r["export_id"], r["destination"]) == key), None)
    if record is None:
        return "not_in_plan"
    executed = execution["result"] != "skipped"
    if record["decision"] in ("hold", "suppress") and executed:
        return "against_decision"
    if record["decision"] in ("retry", "wait") and executed and execution["executed_at"] < record["next_attempt_at"]:
        return "before_next_attempt"
    logged = [a for a in attempts if a["attempt_id"] == execution["attempt_id"] and a["attempted_at"] <= AS_OF]
    if logged and (logged[0]["export_id"], logged[0]["destination"]) != key:
        return "attempt_mismatch"
    if execution["result"] in ("delivered", "failed") and not logged:
        return "attempt_not_logged"
    return "conforming"


@settings(max_examples=80, deadline=None)
@given(plans, runs, attempts, executions, st.sampled_from(["pc", "p1"]))
def test_every_execution_gets_exactly_one_verdict(plans, run_rows, attempt_rows, execution_rows, current_id):
    history = [dict(record, run_id=run["run_id"])
               for run in run_rows for record in plans[run["retry_plan_evidence_id"]]]
    plan_schema = {"export_id": pl.Utf8, "destination": pl.Utf8, "decision": pl.Utf8, "next_attempt_at": UTC_US}
    result = retry_execution_verdicts(
        _frame(execution_rows, {"execution_id": pl.Utf8, "plan_evidence_id": pl.Utf8, "export_id": pl.Utf8,
                                "destination": pl.Utf8, "executed_at": UTC_US, "result": pl.Utf8,
                                "attempt_id": pl.Utf8, "worker": pl.Utf8}),
        _frame(attempt_rows, {"attempt_id": pl.Utf8, "export_id": pl.Utf8, "destination": pl.Utf8,
                              "attempted_at": UTC_US}),
        _frame(run_rows, {"run_id": pl.Utf8, "as_of": UTC_US, "finished_at": UTC_US,
                          "retry_plan_evidence_id": pl.Utf8}),
        _frame(history, {"run_id": pl.Utf8, **plan_schema}),
        _frame(plans[current_id], plan_schema).collect(), current_id, AS_OF, GRACE.total_seconds() / 60,
    )
    in_scope = [e for e in execution_rows if e["executed_at"] <= AS_OF]
    listed = result.executions
    assert sorted(listed["execution_id"]) == sorted(e["execution_id"] for e in in_scope)  # each exactly once
    assert sum(result.summary["verdicts"].values()) == listed.height == len(in_scope)
    assert list(result.summary["verdicts"]) == list(VERDICTS)

    known = {run["retry_plan_evidence_id"] for run in run_rows} | {current_id}
    verdicts = dict(zip(listed["execution_id"], listed["verdict"]))
    for execution in in_scope:
        assert verdicts[execution["execution_id"]] == expected_verdict(execution, known, plans, attempt_rows)
    for row in listed.to_dicts():
        assert row["severity"] == VERDICT_SEVERITY[row["verdict"]]
        assert (row["plan_decision"] is None) == (row["verdict"] in ("unknown_plan", "not_in_plan"))
    assert listed.select("executed_at", "execution_id").equals(listed.select("executed_at", "execution_id").sort(
        "executed_at", "execution_id"))

    earlier = [run for run in run_rows if run["as_of"] < AS_OF]
    expected_missing = []
    if earlier:
        previous = max(earlier, key=lambda run: (run["as_of"], run["finished_at"], run["run_id"]))
        previous_id = previous["retry_plan_evidence_id"]
        done = {(e["export_id"], e["destination"]) for e in in_scope if e["plan_evidence_id"] == previous_id}
        expected_missing = sorted(
            (r["export_id"], r["destination"], previous_id, r["next_attempt_at"]) for r in plans[previous_id]
            if r["decision"] == "retry" and r["next_attempt_at"] + GRACE <= AS_OF
            and (r["export_id"], r["destination"]) not in done)
    assert [tuple(row.values()) for row in result.not_executed.to_dicts()] == expected_missing
    assert result.summary["retry_not_executed"] == len(expected_missing)


alert_ids = ["a" * 16, "b" * 16, "c" * 16, "d" * 16]
acks = st.lists(st.fixed_dictionaries({
    "alert_id": st.sampled_from(alert_ids), "acknowledged_at": times,
    "expires_at": st.one_of(st.none(), times), "acknowledged_by": st.sampled_from(["ana", "bo"]),
}), max_size=8).map(lambda rows: [dict(r, ack_id=f"k{i}") for i, r in enumerate(rows)])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(alert_ids), st.sampled_from(["critical", "warning"])),
                unique_by=lambda a: a[0], max_size=3),
       acks, st.lists(st.tuples(st.sampled_from(alert_ids), times), max_size=5))
def test_every_alert_gets_one_status(alert_rows, ack_rows, history_rows):
    alerts = pl.DataFrame({"alert_id": [a for a, _ in alert_rows], "severity": [s for _, s in alert_rows],
                           "check": ["object_missing"] * len(alert_rows), "export_id": ["e1"] * len(alert_rows),
                           "reference_id": ["r1"] * len(alert_rows)},
                          schema={"alert_id": pl.Utf8, "severity": pl.Utf8, "check": pl.Utf8, "export_id": pl.Utf8,
                                  "reference_id": pl.Utf8})
    result = alert_acknowledgement_status(
        alerts, _frame(ack_rows, {"ack_id": pl.Utf8, "alert_id": pl.Utf8, "acknowledged_at": UTC_US,
                                  "acknowledged_by": pl.Utf8, "expires_at": UTC_US, "comment": pl.Utf8}),
        _frame([{"alert_id": a, "as_of": t} for a, t in history_rows], {"alert_id": pl.Utf8, "as_of": UTC_US}),
        AS_OF, SLA.total_seconds() / 3600,
    )
    rows = result.alerts.to_dicts()
    assert [row["alert_id"] for row in rows] == [a for a, _ in alert_rows]  # in the given order, once each
    summary = result.summary
    assert sum(summary[status] for status in ACK_STATUSES) == len(rows)

    in_force = [a for a in ack_rows
                if a["acknowledged_at"] <= AS_OF and (a["expires_at"] is None or a["expires_at"] > AS_OF)]
    for row, (alert_id, severity) in zip(rows, alert_rows):
        mine = [a for a in in_force if a["alert_id"] == alert_id]
        dated = [a for a in ack_rows if a["alert_id"] == alert_id and a["acknowledged_at"] <= AS_OF]
        if mine:
            chosen = max(mine, key=lambda a: (a["acknowledged_at"], a["ack_id"]))
            assert (row["ack_status"], row["acknowledged_by"], row["acknowledged_at"], row["ack_expires_at"]) == \
                ("acknowledged", chosen["acknowledged_by"], chosen["acknowledged_at"], chosen["expires_at"])
        else:
            assert row["ack_status"] == ("expired" if dated else "unacknowledged")
            assert row["acknowledged_by"] is row["acknowledged_at"] is row["ack_expires_at"] is None
        first_seen = min([AS_OF, *[t for a, t in history_rows if a == alert_id]])
        assert row["first_seen_at"] == first_seen
        assert row["overdue"] == (severity == "critical" and not mine and AS_OF - first_seen >= SLA)
    raised = {a for a, _ in alert_rows}
    stale = sorted((a["alert_id"], a["ack_id"]) for a in in_force if a["alert_id"] not in raised)
    assert list(zip(result.stale_acknowledgements["alert_id"], result.stale_acknowledgements["ack_id"])) == stale
    assert summary["stale"] == len(stale) and summary["overdue"] == sum(row["overdue"] for row in rows)
