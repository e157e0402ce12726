"""The sample's second night (docs/executions-and-acknowledgements.md): what the operator's retry
worker and alerting system recorded between the first night and the second, acting on the
first night's evidence.

    python -m exportaudit.sample.second_night --db data/exportaudit.duckdb --out data/sample/second-night
                                              [--first-as-of 2026-11-20T06:00:00Z]

writes `retry_executions.jsonl` and `alert_acknowledgements.csv`.

How the first night's evidence is found: the records must cite the first night's retry-plan
evidence_id and alert ids, and the evidence_id names the whole dataset the first night
evaluated (every file ingested, S3 reports included). So this generator runs **after** the first
night and reads them from the warehouse (a read-only connection): the earliest recorded run
at --first-as-of, its `retry_plan` and `archive_alerts` rows, and the accepted delivery
attempts. The earliest run, not the latest: a repeated `make run` records another run at the
same as_of whose dataset already holds the second night's files (another evidence_id), and
citing it would change these files' bytes and make their execution ids conflict with the ones
already ingested. The first night of the bundled sample is deterministic, so the output is too.

Planted cases, evaluated one day after the first night (the Makefile's second night,
2026-11-21T06:00:00Z) with the default policy; every record is dated within hours of the first:
- one execution of each verdict: unknown_plan, not_in_plan, against_decision,
  before_next_attempt, attempt_mismatch, attempt_not_logged, conforming (`EXECUTION_CASES`);
  the first night's other `retry` records, not executed, are retry_not_executed findings;
- acknowledgements: one alert acknowledged (in force), one whose only acknowledgement lapsed
  (expired, a warning alert), one critical alert whose acknowledgement lapsed (expired and
  overdue: 24 hours since first seen), one acknowledgement of an alert id no run raises
  (stale). Every other critical alert of the first night is unacknowledged, hence overdue too.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from exportaudit import warehouse
from exportaudit.sample.common import DEFAULT_AS_OF

UTC = timezone.utc
EXECUTIONS_FILE = "retry_executions.jsonl"
ACKNOWLEDGEMENTS_FILE = "alert_acknowledgements.csv"
UNKNOWN_PLAN_ID = "0" * 64  # no run has this retry-plan evidence_id
MISTYPED_ALERT_ID = "feedfacecafebeef"  # no run raises this alert id: its acknowledgement is stale
# Checks whose alerts do not come and go with the clock (unlike check_stale or retention_expiring): an
# alert of the first night with one of these is raised again on the second.
STABLE_CRITICAL = ("digest_mismatch", "object_missing", "not_immutable", "missing_reference")
STABLE_WARNING = ("governance_mode", "retention_missing", "digest_unverifiable", "retention_short")
ACK_COLUMNS = ["ack_id", "alert_id", "acknowledged_at", "acknowledged_by", "expires_at", "comment"]
# verdict -> execution_id of the execution planted for it
EXECUTION_CASES = {
    "unknown_plan": "exec-01-unknown-plan", "not_in_plan": "exec-02-not-in-plan",
    "against_decision": "exec-03-against-decision", "before_next_attempt": "exec-04-before-next-attempt",
    "attempt_mismatch": "exec-05-attempt-mismatch", "attempt_not_logged": "exec-06-attempt-not-logged",
    "conforming": "exec-07-conforming",
}
ACK_CASES = {"acknowledged": "ack-01-acknowledged", "expired": "ack-02-expired",
             "overdue": "ack-03-lapsed-critical", "stale": "ack-04-stale"}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FirstNight:
    """What the second night's records cite: the first night's plan and alerts, and the attempts."""
    plan_evidence_id: str
    plan: list[dict]  # export_id, destination, decision, next_attempt_at (plan order)
    alerts: list[dict]  # alert_id, severity, check (alert order)
    attempts: list[dict]  # attempt_id, export_id, destination, attempted_at


def read_first_night(db: str | Path, first_as_of: datetime = DEFAULT_AS_OF) -> FirstNight:
    con = warehouse.connect(db, read_only=True)
    try:
        found = con.execute("select run_id, retry_plan_evidence_id from runs where as_of = ? "
                            "order by finished_at, run_id limit 1", [first_as_of]).fetchall()
        if not found:
            raise SystemExit(f"{db}: no run at {_iso(first_as_of)}: run the first night first")
        run_id, plan_id = found[0]

        def rows(sql: str, *params) -> list[dict]:
            cursor = con.execute(sql, list(params))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

        plan = rows("select export_id, destination, decision, next_attempt_at from retry_plan where run_id = ? "
                    "order by export_id, destination", run_id)
        alerts = rows("select alert_id, severity, \"check\" from archive_alerts where run_id = ? order by alert_id",
                      run_id)
        attempts = rows("select attempt_id, export_id, destination, attempted_at from deliveries "
                        "order by attempt_id")
    finally:
        con.close()
    return FirstNight(plan_id, plan, alerts, attempts)


def _first(records: list[dict], condition, what: str) -> dict:
    for record in records:
        if condition(record):
            return record
    raise SystemExit(f"the first night has no {what}: cannot plant that case")


def executions(first: FirstNight, first_as_of: datetime = DEFAULT_AS_OF) -> list[dict]:
    """One execution per verdict, dated between the two nights (ordered by execution_id)."""
    plan_id = first.plan_evidence_id
    in_plan = {(r["export_id"], r["destination"]) for r in first.plan}
    retries = [r for r in first.plan if r["decision"] == "retry"]
    if len(retries) < 3:
        raise SystemExit("the first night's plan has fewer than 3 retry records: cannot plant the cases")
    mismatch, not_logged, conforming = retries[0], retries[1], retries[2]
    closed = _first(first.plan, lambda r: r["decision"] in ("hold", "suppress"), "hold or suppress record")
    waiting = _first(first.plan, lambda r: r["decision"] == "wait" and r["next_attempt_at"] is not None
                     and r["next_attempt_at"] > first_as_of + timedelta(minutes=10), "wait record")
    other_attempt = _first(first.attempts, lambda a: (a["export_id"], a["destination"]) != (
        mismatch["export_id"], mismatch["destination"]) and a["attempted_at"] <= first_as_of, "other attempt")
    own_attempt = _first(first.attempts, lambda a: (a["export_id"], a["destination"]) == (
        conforming["export_id"], conforming["destination"]) and a["attempted_at"] <= first_as_of,
        "attempt of the conforming delivery")
    outside = _first(first.attempts, lambda a: (a["export_id"], a["destination"]) not in in_plan,
                     "delivery outside the plan")
    at = lambda minutes: _iso(first_as_of + timedelta(minutes=minutes))  # noqa: E731
    worker = "retry-worker-1"

    def record(verdict: str, delivery: dict, executed_at: str, result: str, attempt_id: str | None,
               plan_evidence_id: str = plan_id) -> dict:
        return {"execution_id": EXECUTION_CASES[verdict], "plan_evidence_id": plan_evidence_id,
                "export_id": delivery["export_id"], "destination": delivery["destination"],
                "executed_at": executed_at, "result": result, "attempt_id": attempt_id, "worker": worker}

    return [
        record("unknown_plan", conforming, at(5), "skipped", None, UNKNOWN_PLAN_ID),
        record("not_in_plan", outside, at(10), "skipped", None),  # skipped, yet still not in the plan
        record("against_decision", closed, at(15), "delivered", None),
        record("before_next_attempt", waiting, at(1), "failed", None),  # before the wait record's next attempt
        record("attempt_mismatch", mismatch, at(20), "delivered", other_attempt["attempt_id"]),
        record("attempt_not_logged", not_logged, at(25), "delivered", "att-never-logged"),
        record("conforming", conforming, at(30), "failed", own_attempt["attempt_id"]),
    ]


def acknowledgements(first: FirstNight, first_as_of: datetime = DEFAULT_AS_OF) -> list[dict]:
    """The four acknowledgement cases (ordered by ack_id)."""
    critical = [a for a in first.alerts if a["severity"] == "critical" and a["check"] in STABLE_CRITICAL]
    warning = _first(first.alerts, lambda a: a["severity"] == "warning" and a["check"] in STABLE_WARNING,
                     "stable warning alert")
    if len(critical) < 2:
        raise SystemExit("the first night has fewer than 2 stable critical alerts: cannot plant the cases")
    at = lambda hours: _iso(first_as_of + timedelta(hours=hours))  # noqa: E731
    return [
        {"ack_id": ACK_CASES["acknowledged"], "alert_id": critical[0]["alert_id"], "acknowledged_at": at(1),
         "acknowledged_by": "oncall@example.com", "expires_at": "",
         "comment": "replacement copy ordered; see https://tickets.example.com/T-1?token=planted-ticket-token"},
        {"ack_id": ACK_CASES["expired"], "alert_id": warning["alert_id"], "acknowledged_at": at(2),
         "acknowledged_by": "oncall@example.com", "expires_at": at(8), "comment": "snoozed for six hours"},
        {"ack_id": ACK_CASES["overdue"], "alert_id": critical[1]["alert_id"], "acknowledged_at": at(3),
         "acknowledged_by": "pager-bot", "expires_at": at(4), "comment": "auto-acknowledged for one hour"},
        {"ack_id": ACK_CASES["stale"], "alert_id": MISTYPED_ALERT_ID, "acknowledged_at": at(5),
         "acknowledged_by": "oncall@example.com", "expires_at": "", "comment": "mistyped alert id"},
    ]


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def write_second_night(db: str | Path, out_dir: str | Path, first_as_of: datetime = DEFAULT_AS_OF) -> dict[str, Path]:
    """Write the two logs of the second night into out_dir; returns log -> path."""
    first = read_first_night(db, first_as_of)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in executions(first, first_as_of))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ACK_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(acknowledgements(first, first_as_of))
    paths = {"retry_executions": out / EXECUTIONS_FILE, "alert_acknowledgements": out / ACKNOWLEDGEMENTS_FILE}
    _write_atomically(paths["retry_executions"], lines.encode())
    _write_atomically(paths["alert_acknowledgements"], buffer.getvalue().encode())
    return paths


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no offset; write e.g. 2026-11-20T06:00:00Z")
    return moment.astimezone(UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exportaudit.sample.second_night",
                                     description="Write the sample's second-night logs (retry executions, alert "
                                                 "acknowledgements) citing the first night recorded in --db.")
    parser.add_argument("--db", required=True, help="warehouse holding the first night")
    parser.add_argument("--out", required=True, type=Path, help="output directory (created if missing)")
    parser.add_argument("--first-as-of", type=_instant, default=DEFAULT_AS_OF,
                        help="as_of of the first night (default 2026-11-20T06:00:00Z)")
    args = parser.parse_args(argv)
    for log, path in write_second_night(args.db, args.out, args.first_as_of).items():
        print(f"{log}: {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
