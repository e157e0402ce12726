"""docs/outputs.md, docs/outputs.md#policy-file, docs/outputs.md#command-line: the nightly run end to end as a Prefect flow, on small data in temp dirs."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from exportaudit.cli import main
from exportaudit.evidence import ARCHIVE_HEALTH_KIND, RETRY_PLAN_KIND
from exportaudit.metrics import METRICS
from tests.conftest import (DIGEST_B, all_text_in_db, archive_record, custody_record, delivery_record,
                            export_record, query, write_csv, write_jsonl)

AS_OF = "2026-11-20T06:00:00Z"
DOCUMENT_KEYS = {"schema_version", "metadata_kind", "evidence_id", "run_id", "as_of", "generated_at", "generated_by",
                 "policy", "dataset", "inputs", "summary"}


def small_logs(folder: Path) -> dict[str, list[str]]:
    exports = write_jsonl(folder / "exports.jsonl", [
        export_record(export_id="exp-1"), export_record(export_id="exp-2", release_record_ref="<script>alert(1)</script>"),
        export_record(export_id="exp-3", verification_state="failed"),
    ])
    deliveries = write_csv(folder / "deliveries.csv", [
        delivery_record(attempt_id="a1", export_id="exp-1", endpoint="https://u:hunter2@grc.example.com/x?sig=SIG123"),
        delivery_record(attempt_id="a2", export_id="exp-2", destination="<script>alert(1)</script>", http_status=500),
        delivery_record(attempt_id="a3", export_id="exp-3", http_status=404),
        delivery_record(attempt_id="a4", export_id="exp-9", connector_visibility="private",
                        endpoint="https://hidden-host.example.com/in"),
    ])
    archives = write_jsonl(folder / "archives.jsonl", [
        archive_record(reference_id="ref-1", export_id="exp-1"),
        archive_record(reference_id="ref-2", export_id="exp-2", archived_digest=DIGEST_B,
                       archive_uri="s3://vault/k?X-Amz-Signature=AMZSIG"),
        archive_record(reference_id="ref-9", export_id="exp-404"),
    ])
    custody = write_jsonl(folder / "custody.jsonl", [custody_record(reference_id="ref-1"),
                                                     custody_record(reference_id="ghost")])
    return {"--exports": [str(exports)], "--deliveries": [str(deliveries)], "--archives": [str(archives)],
            "--custody-checks": [str(custody)]}


def run(tmp_path: Path, logs: dict, *extra: str, db: str = "w.duckdb", out: str = "reports") -> int:
    argv = ["run", "--db", str(tmp_path / db), "--out", str(tmp_path / out), "--as-of", AS_OF, *extra]
    for flag, paths in logs.items():
        argv += [flag, *paths]
    return main(argv)


def load(tmp_path: Path, name: str, out: str = "reports") -> dict:
    return json.loads((tmp_path / out / "latest" / name).read_bytes())


def canonical(document) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_night_writes_evidence_metrics_and_report(prefect_server, tmp_path, logs_dir):
    assert run(tmp_path, small_logs(logs_dir)) == 0
    latest = tmp_path / "reports" / "latest"
    assert sorted(p.name for p in latest.iterdir()) == [
        "alert-acknowledgements.json", "archive-health.json", "attestation.intoto.json", "ledger.json",
        "metrics.json", "metrics.prom", "report.html", "report.md", "retry-executions.json", "retry-plan.json"]
    plan, health = load(tmp_path, "retry-plan.json"), load(tmp_path, "archive-health.json")
    assert set(plan) == DOCUMENT_KEYS | {"decisions"} and set(health) == DOCUMENT_KEYS | {"exports", "alerts"}
    assert (plan["metadata_kind"], health["metadata_kind"]) == (RETRY_PLAN_KIND, ARCHIVE_HEALTH_KIND)
    assert plan["schema_version"] == health["schema_version"] == "exportaudit.evidence.v1"
    assert set(plan["policy"]) == {"max_attempts", "base_delay_minutes", "backoff_multiplier", "max_delay_minutes",
                                   "max_delivery_age_days", "idempotent_connector_kinds"}
    assert set(health["policy"]) == {"required_retention_days", "expiry_warning_days", "max_check_age_days",
                                     "accept_governance_mode", "s3_inventory_prefixes"}
    # the files are the canonical JSON of the documents
    assert (latest / "retry-plan.json").read_bytes() == canonical(plan)
    for document in (plan, health):  # evidence_id recomputed independently
        content = {k: v for k, v in document.items()
                   if k not in ("evidence_id", "run_id", "generated_at", "generated_by", "inputs")}
        assert document["evidence_id"] == hashlib.sha256(canonical(content)).hexdigest()
    shas = sorted(hashlib.sha256(Path(p).read_bytes()).hexdigest() for ps in small_logs(logs_dir).values() for p in ps)
    assert plan["dataset"] == {"files": 4, "sha256": hashlib.sha256("\n".join(shas).encode()).hexdigest()}
    assert [i["name"] for i in plan["inputs"]] == ["exports.jsonl", "deliveries.csv", "archives.jsonl", "custody.jsonl"]
    assert all(i["rows_read"] == i["rows_accepted"] + i["rows_quarantined"] + i["rows_duplicate"] for i in plan["inputs"])
    summary = plan["summary"]
    assert (summary["failed_deliveries"], summary["retryable_deliveries"], summary["held_deliveries"],
            summary["suppressed_deliveries"]) == (4, 1, 2, 1)
    assert summary["reason_codes"]["export_unknown"] == 1 and len(summary["reason_codes"]) == 10
    h = health["summary"]
    assert (h["verified_exports"], h["orphan_references"], h["unchecked_references"], h["unmatched_custody_checks"]) == (
        2, 1, 0, 1)
    assert h["checks"]["orphan_reference"] == 1 and len(h["checks"]) == 12
    assert h["archive_health_alert_count"] == len(health["alerts"]) == h["critical_alerts"] + h["warning_alerts"]


def test_metrics_in_both_formats_and_prometheus_text_parses(prefect_server, tmp_path, logs_dir):
    run(tmp_path, small_logs(logs_dir))
    metrics = load(tmp_path, "metrics.json")["metrics"]
    prom = (tmp_path / "reports" / "latest" / "metrics.prom").read_text()
    samples, typed = {}, set()
    for line in prom.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif not line.startswith("#"):
            name, value = line.split(" ")
            assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name)
            samples[name] = float(value)
    for name in METRICS:
        assert f"exportaudit_{name}" in metrics and f"exportaudit_{name}" in samples and f"exportaudit_{name}" in typed
    assert samples["exportaudit_retry_plan_count"] == 1 == metrics["exportaudit_retry_plan_count"]
    assert samples["exportaudit_retryable_deliveries"] == metrics["exportaudit_retryable_deliveries"] == 1
    plan, health = load(tmp_path, "retry-plan.json")["summary"], load(tmp_path, "archive-health.json")["summary"]
    from_summaries = {  # each run metric is the evidence summary's count (docs/outputs.md#metrics)
        "waiting_deliveries": plan["waiting_deliveries"], "held_deliveries": plan["held_deliveries"],
        "suppressed_deliveries": plan["suppressed_deliveries"], "recovered_deliveries": plan["recovered_deliveries"],
        "archive_health_alert_count": health["archive_health_alert_count"],
        "archive_health_critical_alert_count": health["critical_alerts"],
        "archive_health_warning_alert_count": health["warning_alerts"], "verified_exports": health["verified_exports"],
        "exports_missing_reference": health["exports_missing_reference"],
        "exports_unrepresented": health["exports_unrepresented"], "archive_health_report_count": 1,
    }
    for name, value in from_summaries.items():
        assert metrics[f"exportaudit_{name}"] == samples[f"exportaudit_{name}"] == value, name


def test_same_inputs_as_of_and_policy_give_identical_evidence(prefect_server, tmp_path, logs_dir):
    logs = small_logs(logs_dir)
    run(tmp_path, logs, db="one.duckdb", out="one")
    run(tmp_path, logs, db="two.duckdb", out="two")
    run(tmp_path, logs, db="two.duckdb", out="three")  # same warehouse again: files skipped, same dataset
    for name, body in (("retry-plan.json", ["decisions", "summary"]), ("archive-health.json", ["exports", "alerts"])):
        docs = [load(tmp_path, name, out) for out in ("one", "two", "three")]
        assert len({d["evidence_id"] for d in docs}) == 1
        assert len({d["run_id"] for d in docs}) == 3
        for key in body:
            assert canonical(docs[0][key]) == canonical(docs[1][key]) == canonical(docs[2][key])
    assert [i["skipped"] for i in load(tmp_path, "retry-plan.json", "three")["inputs"]] == [True] * 4


def test_history_grows_one_run_per_run_and_latest_moves_atomically(prefect_server, tmp_path, logs_dir):
    logs = small_logs(logs_dir)
    run(tmp_path, logs)
    first = (tmp_path / "reports" / "latest").resolve().name
    run(tmp_path, logs, "--as-of", "2026-11-21T06:00:00Z")
    latest = tmp_path / "reports" / "latest"
    assert latest.is_symlink() and latest.resolve().name != first
    assert (tmp_path / "reports" / first / "retry-plan.json").exists()
    assert not [p for p in (tmp_path / "reports").iterdir() if p.name.startswith(".")]
    db = tmp_path / "w.duckdb"
    runs = query(db, "select run_id, status, retryable_deliveries from runs order by finished_at")
    assert [r[0] for r in runs] == [first, latest.resolve().name]
    assert query(db, "select count(distinct run_id) from retry_plan") == [(2,)]
    assert query(db, "select run_id from latest_run") == [(latest.resolve().name,)]
    assert query(db, "select count(*) from latest_archive_alerts") == [(len(load(tmp_path, "archive-health.json")["alerts"]),)]
    assert load(tmp_path, "metrics.json")["metrics"]["exportaudit_retry_plans_total"] == 2


def test_report_escapes_input_values_and_is_self_contained(prefect_server, tmp_path, logs_dir):
    run(tmp_path, small_logs(logs_dir))
    page = (tmp_path / "reports" / "latest" / "report.html").read_text()
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page) and "<link" not in page
    assert "<svg" in page
    markdown = (tmp_path / "reports" / "latest" / "report.md").read_text()
    assert "<script" not in markdown and "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown


def test_no_secret_in_any_output(prefect_server, tmp_path, logs_dir):
    run(tmp_path, small_logs(logs_dir))
    texts = [p.read_text() for p in (tmp_path / "reports" / "latest").iterdir()] + [all_text_in_db(tmp_path / "w.duckdb")]
    for secret in ("hunter2", "SIG123", "AMZSIG", "hidden-host.example.com"):
        assert not any(secret in text for text in texts), secret


@pytest.mark.parametrize(("fail_on", "expected"), [("never", 0), ("warning", 3), ("critical", 3)])
def test_fail_on_gate(prefect_server, tmp_path, logs_dir, fail_on, expected):
    assert run(tmp_path, small_logs(logs_dir), "--fail-on", fail_on) == expected
    assert (tmp_path / "reports" / "latest" / "report.html").exists()  # written before the gate says no


def test_fail_on_critical_passes_with_warnings_only(prefect_server, tmp_path, logs_dir):
    exports = write_jsonl(logs_dir / "e.jsonl", [export_record()])
    archives = write_jsonl(logs_dir / "a.jsonl", [archive_record(lock_mode="governance")])
    custody = write_jsonl(logs_dir / "c.jsonl", [custody_record(checked_at="2026-11-19T00:00:00Z")])
    deliveries = write_jsonl(logs_dir / "d.jsonl", [])
    logs = {"--exports": [str(exports)], "--deliveries": [str(deliveries)], "--archives": [str(archives)],
            "--custody-checks": [str(custody)]}
    assert run(tmp_path, logs, "--fail-on", "critical") == 0
    assert run(tmp_path, logs, "--fail-on", "warning", db="w2.duckdb") == 3


def test_quarantine_ratio_gate_writes_everything_then_exits_3(prefect_server, tmp_path, logs_dir):
    logs = small_logs(logs_dir)
    bad = write_jsonl(logs_dir / "bad.jsonl", ["not json"])
    logs["--exports"].append(str(bad))  # 1 of 13 rows quarantined: 0.077 > 0.05
    assert run(tmp_path, logs) == 3
    assert query(tmp_path / "w.duckdb", "select status, exit_code from runs") == [("gate_failed", 3)]
    policy = logs_dir / "policy.toml"
    policy.write_text("max_quarantine_ratio = 0.1\n")
    assert run(tmp_path, logs, "--policy", str(policy), db="w2.duckdb") == 0


def test_a_run_directory_that_cannot_be_written_records_nothing(prefect_server, tmp_path, logs_dir, capsys):
    """The run directory is written beside the history rows; the ledger seal waits for it, so a
    failed write rolls the run back: no runs row, no ledger entry, no result rows."""
    assert run(tmp_path, small_logs(logs_dir)) == 0
    run_ids = [p.name for p in (tmp_path / "reports").iterdir() if p.name != "latest"]
    (tmp_path / "blocked").write_text("a file where the output directory should be")
    capsys.readouterr()
    assert run(tmp_path, small_logs(logs_dir), out="blocked") == 1
    assert "blocked" in capsys.readouterr().err
    db = tmp_path / "w.duckdb"
    assert [r[0] for r in query(db, "select run_id from runs")] == run_ids
    assert query(db, "select count(*) from ledger")[0][0] == 1
    assert query(db, "select count(distinct run_id) from retry_plan")[0][0] == 1


def test_unusable_arguments_exit_2_without_starting_anything(tmp_path, logs_dir, capsys):
    logs = small_logs(logs_dir)
    assert run(tmp_path, logs, "--as-of", "2026-11-20T06:00:00") == 2
    bad_policy = logs_dir / "p.toml"
    bad_policy.write_text("max_attempts = 0\n")
    assert run(tmp_path, logs, "--policy", str(bad_policy)) == 2
    assert "max_attempts" in capsys.readouterr().err
    assert run(tmp_path, logs, "--fail-on", "sometimes") == 2
    logs["--archives"] = [str(logs_dir / "missing.jsonl")]
    assert run(tmp_path, logs) == 2
    assert "missing.jsonl" in capsys.readouterr().err
    assert not (tmp_path / "w.duckdb").exists() and not (tmp_path / "reports").exists()


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for option in ("--exports", "--deliveries", "--archives", "--custody-checks", "--as-of", "--db", "--out",
                   "--policy", "--fail-on"):
        assert option in text
