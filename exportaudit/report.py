"""The release-review report (docs/outputs.md#report), rendered by pure functions from the evidence
documents: Markdown and a self-contained HTML page (inline CSS and SVG, no external
assets). Every value that comes from the inputs is escaped."""

from __future__ import annotations

import html
import json
import re

import polars as pl

from exportaudit.evidence import Evidence, records_json
from exportaudit.vocabulary import DECISIONS, HOLD, RETRY, SEVERITIES, SUPPRESS, WAIT

ROWS_PER_GROUP = 100  # the full lists are in the JSON evidence; the report stays readable
DECISION_TITLES = {RETRY: "Retry now", WAIT: "Wait", HOLD: "Hold — a person must decide",
                   SUPPRESS: "Suppressed — never retried automatically"}
HEADLINE = [
    ("retryable_deliveries", "Retryable deliveries"), ("waiting_deliveries", "Waiting deliveries"),
    ("held_deliveries", "Held deliveries"), ("suppressed_deliveries", "Suppressed deliveries"),
    ("recovered_deliveries", "Recovered deliveries"), ("verified_exports", "Verified exports"),
    ("exports_unrepresented", "Exports without an intact archive"),
    ("archive_health_critical_alert_count", "Critical alerts"), ("archive_health_warning_alert_count", "Warning alerts"),
    ("quarantined_rows", "Quarantined rows"),
    # docs/executions-and-acknowledgements.md#metrics-warehouse-report-and-api (shown when the run computed them)
    ("nonconforming_retry_executions", "Nonconforming retry executions"),
    ("retries_not_executed", "Retries not executed"),
    ("unacknowledged_critical_alerts", "Unacknowledged critical alerts"), ("overdue_alerts", "Overdue alerts"),
]
TREND_SERIES = [("retryable_deliveries", "retryable", "#1f77b4"), ("held_deliveries", "held", "#ff7f0e"),
                ("archive_health_critical_alert_count", "critical alerts", "#d62728"),
                ("archive_health_warning_alert_count", "warning alerts", "#9467bd")]
PLAN_COLUMNS = [("export_id", "Export"), ("destination", "Destination"), ("reason_code", "Reason"),
                ("error_class", "Error class"), ("failed_attempts", "Failed"), ("last_attempt_at", "Last attempt"),
                ("next_attempt_at", "Next attempt"), ("endpoint", "Endpoint")]
ALERT_COLUMNS = [("alert_id", "Alert"), ("check", "Check"), ("export_id", "Export"), ("reference_id", "Reference"),
                 ("archive_provider", "Provider"), ("archive_uri", "Archive URI"), ("message", "Finding")]
EXECUTION_COLUMNS = [("execution_id", "Execution"), ("verdict", "Verdict"), ("export_id", "Export"),
                     ("destination", "Destination"), ("executed_at", "Executed"), ("result", "Result"),
                     ("attempt_id", "Attempt"), ("plan_decision", "Plan decision"),
                     ("plan_next_attempt_at", "Plan next attempt"), ("worker", "Worker")]
NOT_EXECUTED_COLUMNS = [("export_id", "Export"), ("destination", "Destination"), ("next_attempt_at", "Next attempt"),
                        ("plan_evidence_id", "Plan evidence id")]
ACK_COLUMNS = [("alert_id", "Alert"), ("severity", "Severity"), ("check", "Check"), ("export_id", "Export"),
               ("reference_id", "Reference"), ("first_seen_at", "First seen"), ("overdue", "Overdue"),
               ("acknowledged_by", "Acknowledged by"), ("acknowledged_at", "Acknowledged"),
               ("ack_expires_at", "Expires")]
STALE_COLUMNS = [("ack_id", "Acknowledgement"), ("alert_id", "Alert"), ("acknowledged_by", "Acknowledged by"),
                 ("acknowledged_at", "Acknowledged")]
# Groups of the follow-up sections: (title, css class, filter, columns, record list)
EXECUTION_GROUPS = [
    ("Critical verdicts", "critical", pl.col("severity") == "critical", EXECUTION_COLUMNS, "executions"),
    ("Warning verdicts", "warning", pl.col("severity") == "warning", EXECUTION_COLUMNS, "executions"),
    ("Conforming", "conforming", pl.col("severity").is_null(), EXECUTION_COLUMNS, "executions"),
    ("Retries not executed (warning)", "warning", pl.lit(True), NOT_EXECUTED_COLUMNS, "not_executed"),
]
ACK_GROUPS = [
    ("Overdue", "critical", pl.col("overdue"), ACK_COLUMNS, "alerts"),
    ("Unacknowledged", "unacknowledged", pl.col("ack_status") == "unacknowledged", ACK_COLUMNS, "alerts"),
    ("Expired acknowledgements", "expired", pl.col("ack_status") == "expired", ACK_COLUMNS, "alerts"),
    ("Acknowledged", "acknowledged", pl.col("ack_status") == "acknowledged", ACK_COLUMNS, "alerts"),
    ("Stale acknowledgements (no such alert this run)", "stale", pl.lit(True), STALE_COLUMNS,
     "stale_acknowledgements"),
]
INPUT_COLUMNS = [("log", "Log"), ("name", "File"), ("rows_read", "Read"), ("rows_accepted", "Accepted"),
                 ("rows_quarantined", "Quarantined"), ("rows_duplicate", "Duplicate"), ("skipped", "Skipped")]


def _text(value) -> str:
    return "—" if value is None else str(value)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md_escape(value) -> str:
    """A value safe inside a Markdown table cell: specials backslash-escaped, HTML neutralised."""
    text = _text(value).replace("\r", " ").replace("\n", " ")
    text = html.escape(text, quote=False)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _groups(frame: pl.DataFrame, key: str, order) -> dict[str, tuple[int, list[dict]]]:
    """Per value of `key`: how many rows, and the first ROWS_PER_GROUP of them as JSON-ready dicts."""
    groups = {}
    for value in order:
        rows = frame.filter(pl.col(key) == value)
        groups[value] = (rows.height, json.loads(records_json(rows.head(ROWS_PER_GROUP))))
    return groups


def _filtered_groups(document: Evidence, groups, file_name: str) -> list[tuple]:
    """(title, css class, count, first rows, columns, file) per group of a follow-up document."""
    out = []
    for title, css_class, condition, columns, records in groups:
        rows = document.records[records].filter(condition)
        out.append((title, css_class, rows.height, json.loads(records_json(rows.head(ROWS_PER_GROUP))), columns,
                    file_name))
    return out


def _sections(plan: Evidence, health: Evidence, executions: Evidence | None = None,
              acknowledgements: Evidence | None = None) -> dict[str, list[tuple]]:
    """Report sections: per heading, its groups as (title, css class, count, first rows, columns, file)."""
    decisions = _groups(plan.records["decisions"], "decision", DECISIONS)
    alerts = _groups(health.records["alerts"], "severity", SEVERITIES)
    follow_ups = {}
    if executions is not None:
        follow_ups["Retry worker executions"] = _filtered_groups(executions, EXECUTION_GROUPS, "retry-executions.json")
    if acknowledgements is not None:
        follow_ups["Alert acknowledgements"] = _filtered_groups(acknowledgements, ACK_GROUPS,
                                                                "alert-acknowledgements.json")
    return {
        "Delivery retry plan": [(DECISION_TITLES[d], d, count, rows, PLAN_COLUMNS, "retry-plan.json")
                                for d, (count, rows) in decisions.items()],
        "Archive reference health": [(f"{s.capitalize()} alerts", s, count, rows, ALERT_COLUMNS, "archive-health.json")
                                     for s, (count, rows) in alerts.items()],
        **follow_ups,
    }


def _headline(metrics: dict) -> list[tuple[str, str]]:
    """The headline tiles of the metrics the run has (the follow-up ones only when computed)."""
    return [(key, title) for key, title in HEADLINE if key in metrics]


# ---------------------------------------------------------------- Markdown
def _md_table(rows: list[dict], columns) -> list[str]:
    lines = ["| " + " | ".join(title for _, title in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(md_escape(row.get(key)) for key, _ in columns) + " |" for row in rows]
    return lines


def _evidence_line(plan: Evidence, health: Evidence, executions: Evidence | None,
                   acknowledgements: Evidence | None, code) -> str:
    parts = [f"retry plan {code(plan['evidence_id'])}", f"archive health {code(health['evidence_id'])}"]
    if executions is not None:
        parts.append(f"retry executions {code(executions['evidence_id'])}")
    if acknowledgements is not None:
        parts.append(f"alert acknowledgements {code(acknowledgements['evidence_id'])}")
    return "Evidence: " + ", ".join(parts)


def _ledger_line(ledger: dict | None, code) -> list[str]:
    """The run's place in the ledger (docs/ledger.md#the-report-and-the-chain): its seq and the
    entry_hash of the entry before it. The run's own entry_hash hashes this report, so it is in
    ledger.json, not here."""
    if ledger is None:
        return []
    return [f"Ledger: entry seq {code(ledger['seq'])}, previous_hash {code(ledger['previous_hash'])} "
            f"(this run's entry_hash is in ledger.json; check with exportaudit verify)"]


def render_markdown(plan: Evidence, health: Evidence, metrics: dict, trend: list[dict],
                    executions: Evidence | None = None, acknowledgements: Evidence | None = None,
                    ledger: dict | None = None) -> str:
    lines = ["# exportaudit — release evidence report", "",
             f"Run `{md_escape(plan['run_id'])}` · as_of **{plan['as_of']}** · generated {plan['generated_at']}", "",
             _evidence_line(plan, health, executions, acknowledgements, lambda v: f"`{md_escape(v)}`"), "",
             *(line for text in _ledger_line(ledger, lambda v: f"`{md_escape(v)}`") for line in (text, "")),
             "## Headline", ""]
    lines += _md_table([{"metric": title, "value": metrics[key]} for key, title in _headline(metrics)],
                       [("metric", "Metric"), ("value", "Value")])
    lines.append("")
    for heading, groups in _sections(plan, health, executions, acknowledgements).items():
        lines += [f"## {heading}", ""]
        for title, _, count, rows, columns, file_name in groups:
            lines += [f"### {title} ({count})", ""]
            if rows:
                lines += _md_table(rows, columns)
                if count > len(rows):
                    lines.append(f"\n…and {count - len(rows)} more in {file_name}")
            lines.append("")
    lines += ["## Input accounting", ""]
    lines += _md_table(plan["inputs"], INPUT_COLUMNS) if plan["inputs"] else ["No input files in this run."]
    lines += ["", "## Trend over runs", ""]
    lines += _md_table(trend, [("as_of", "as_of")] + [(key, label) for key, label, _ in TREND_SERIES])
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- HTML
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.5rem}h2{margin-top:2rem;border-bottom:1px solid #ccc}h3{font-size:1.05rem}
table{border-collapse:collapse;margin:.5rem 0;width:100%}th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;
vertical-align:top;overflow-wrap:break-word}th{background:#f3f3f3}.tiles{display:flex;flex-wrap:wrap;gap:.5rem}
.tile{border:1px solid #ccc;border-radius:6px;padding:.5rem .8rem;min-width:9rem}.tile b{display:block;font-size:1.4rem}
.critical{color:#b00}.warning{color:#8a5a00}.muted{color:#666}code{font-size:.9em}
@media print{body{margin:0}.tile{break-inside:avoid}tr{break-inside:avoid}}
"""


def _h(value) -> str:
    return html.escape(_text(value), quote=True)


def _html_table(rows: list[dict], columns) -> str:
    head = "".join(f"<th scope=col>{_h(title)}</th>" for _, title in columns)
    body = "".join("<tr>" + "".join(f"<td>{_h(row.get(key))}</td>" for key, _ in columns) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def trend_svg(trend: list[dict], width: int = 640, height: int = 180) -> str:
    """A small inline SVG line chart of the headline metrics over runs."""
    if not trend:
        return "<p class=muted>No runs yet.</p>"
    pad = 30
    peak = max([1] + [int(run.get(key) or 0) for run in trend for key, _, _ in TREND_SERIES])
    step = (width - 2 * pad) / max(1, len(trend) - 1)

    def point(i, value):
        return f"{pad + i * step:.1f},{height - pad - (int(value or 0) / peak) * (height - 2 * pad):.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 20}" role="img" '
             f'aria-label="Trend of headline metrics over {len(trend)} runs">',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/>',
             f'<text x="2" y="{pad}" font-size="10">{peak}</text><text x="2" y="{height - pad}" font-size="10">0</text>']
    for n, (key, label, color) in enumerate(TREND_SERIES):
        points = " ".join(point(i, run.get(key)) for i, run in enumerate(trend))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>')
        parts.append(f'<text x="{pad + n * 150}" y="{height + 12}" font-size="11" fill="{color}">{_h(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(plan: Evidence, health: Evidence, metrics: dict, trend: list[dict],
                executions: Evidence | None = None, acknowledgements: Evidence | None = None,
                ledger: dict | None = None) -> str:
    tiles = "".join(f'<div class=tile><span class=muted>{_h(title)}</span><b>{_h(metrics[key])}</b></div>'
                    for key, title in _headline(metrics))
    sections = ["<h1>exportaudit — release evidence report</h1>",
                f"<p>Run <code>{_h(plan['run_id'])}</code> · as_of <b>{_h(plan['as_of'])}</b> · generated "
                f"{_h(plan['generated_at'])}<br>"
                f"{_evidence_line(plan, health, executions, acknowledgements, lambda v: f'<code>{_h(v)}</code>')}"
                + "".join(f"<br>{text}" for text in _ledger_line(ledger, lambda v: f"<code>{_h(v)}</code>")) + "</p>",
                "<h2>Headline</h2>", f"<div class=tiles>{tiles}</div>"]
    for heading, groups in _sections(plan, health, executions, acknowledgements).items():
        sections.append(f"<h2>{_h(heading)}</h2>")
        for title, css_class, count, rows, columns, file_name in groups:
            sections.append(f"<h3 class={css_class}>{_h(title)} ({count})</h3>")
            if rows:
                sections.append(_html_table(rows, columns))
                if count > len(rows):
                    sections.append(f"<p class=muted>…and {count - len(rows)} more in {file_name}</p>")
    sections += ["<h2>Input accounting</h2>",
                 _html_table(plan["inputs"], INPUT_COLUMNS) if plan["inputs"] else "<p>No input files in this run.</p>",
                 "<h2>Trend over runs</h2>", trend_svg(trend)]
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>exportaudit report "
            f"{_h(plan['as_of'])}</title><style>{CSS}</style></head><body>{''.join(sections)}</body></html>\n")
