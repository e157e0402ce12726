"""The whole night on the bundled sample (flow test): every planted case gives the outcome the
sample generator says it covers, nothing is lost, and no planted secret survives anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exportaudit.cli import main
from exportaudit.sample import PLANTED_SECRETS, expected_outcomes, write_sample
from tests.conftest import all_text_in_db, query

AS_OF = "2026-11-20T06:00:00Z"


@pytest.fixture(scope="module")
def sample_night(prefect_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample-night")
    files = write_sample(folder / "sample")
    argv = ["run", "--db", str(folder / "w.duckdb"), "--out", str(folder / "reports"), "--as-of", AS_OF,
            "--exports", str(files["exports"]), "--deliveries", str(files["deliveries"]),
            "--archives", str(files["archives"]), "--custody-checks", str(files["custody_checks"])]
    code = main(argv)
    latest = folder / "reports" / "latest"
    return {
        "code": code, "folder": folder, "db": folder / "w.duckdb",
        "plan": json.loads((latest / "retry-plan.json").read_bytes()),
        "health": json.loads((latest / "archive-health.json").read_bytes()),
        "expected": expected_outcomes(),
    }


def test_sample_night_passes_its_gates(sample_night):
    assert sample_night["code"] == 0


def test_every_planted_delivery_gets_its_reason_code(sample_night):
    got = {(d["export_id"], d["destination"]): d["reason_code"] for d in sample_night["plan"]["decisions"]}
    assert got == sample_night["expected"].decisions
    assert sample_night["plan"]["summary"]["recovered_deliveries"] == len(sample_night["expected"].recovered)
    assert all(count > 0 for count in sample_night["plan"]["summary"]["reason_codes"].values())


def test_every_planted_reference_gets_its_findings(sample_night):
    expected = sample_night["expected"]
    health = sample_night["health"]
    findings: dict = {}
    for alert in health["alerts"]:
        if alert["check"] != "orphan_reference":
            findings.setdefault((alert["export_id"], alert["reference_id"]), set()).add(alert["check"])
    assert findings == {key: set(checks) for key, checks in expected.findings.items() if checks}
    orphans = {a["reference_id"] for a in health["alerts"] if a["check"] == "orphan_reference"}
    assert orphans == expected.orphans
    summary = health["summary"]
    assert summary["unchecked_references"] == len(expected.unchecked_references)
    assert summary["unmatched_custody_checks"] == expected.unmatched_custody_checks
    missing = {export_id for (export_id, _), checks in expected.findings.items() if "missing_reference" in checks}
    assert summary["exports_missing_reference"] == len(missing)
    critical_exports = {k for k, v in expected.custody_status().items() if v == "critical"}
    assert summary["exports_unrepresented"] == len(critical_exports) > len(missing)
    statuses = {e["export_id"]: e["custody_status"] for e in health["exports"]}
    assert {k: v for k, v in statuses.items() if k in expected.custody_status()} == expected.custody_status()
    assert all(count > 0 for count in summary["checks"].values())


def test_nothing_is_lost_and_every_quarantine_reason_is_right(sample_night):
    expected = sample_night["expected"]
    for item in sample_night["plan"]["inputs"]:
        assert item["rows_read"] == expected.rows_read[item["name"]]
        assert item["rows_duplicate"] == expected.exact_duplicates[item["name"]]
        assert item["rows_read"] == item["rows_accepted"] + item["rows_quarantined"] + item["rows_duplicate"]
    got: dict = {}
    for name, row, reasons in query(sample_night["db"], "select source_file, source_row, reason_codes from quarantine"):
        got.setdefault(name, {})[row] = frozenset(reasons)
    assert got == {name: rows for name, rows in expected.quarantine.items() if rows}


def test_no_planted_secret_survives_in_any_output(sample_night):
    folder: Path = sample_night["folder"]
    texts = [all_text_in_db(sample_night["db"])]
    texts += [p.read_text(errors="replace") for p in (folder / "reports").rglob("*") if p.is_file()]
    for secret in PLANTED_SECRETS:
        assert not any(secret in text for text in texts), secret
