"""docs/ledger.md end to end: the two sample nights of `make run` append two chained ledger
entries and write ledger.json and attestation.intoto.json; `exportaudit verify --all` exits 0;
each tampering (ledger row deleted, reordered, edited; an artifact byte; a run directory swapped
for another run's; an accepted record edited after the run) makes it exit 1 naming what broke; a
pruned run directory is `missing` (exit 0 with --all, 1 with --run); unusable arguments exit 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from exportaudit.cli import main
from exportaudit.evidence import canonical_json
from exportaudit.ledger import ATTESTATION_FILE, GENESIS, LEDGER_COLUMNS, LEDGER_FILE, entry_hash, read_ledger
from exportaudit.sample import nights as sample_nights
from tests.conftest import hold_warehouse, query

SCHEMA = json.loads((Path(__file__).parent / "data" / "intoto_statement_v1.schema.json").read_text())
DOCUMENTS = ("retry-plan.json", "archive-health.json", "retry-executions.json", "alert-acknowledgements.json")


def make_run(folder: Path) -> tuple[Path, Path]:
    """What `make run` does (exportaudit/sample/nights.py), in a temp folder: the sample, the first
    night over every sample source, the second night's executions and acknowledgements, the second
    night."""
    sample, db, out = folder / "sample", folder / "w.duckdb", folder / "reports"
    subprocess.run([sys.executable, "-m", "exportaudit.sample", "--out", str(sample)], check=True,
                   capture_output=True, cwd=Path(__file__).parent.parent)
    assert sample_nights.run_nights(sample, db, out, folder / "second-night") == 0
    return db, out


@pytest.fixture(scope="module")
def nights(prefect_server, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("verify-run")
    db, out = make_run(folder)
    runs = [run_id for (run_id,) in query(db, "select run_id from ledger order by seq")]
    return {"db": db, "out": out, "runs": runs}


@pytest.fixture
def copy(nights, tmp_path) -> dict:
    """A copy of the two nights' warehouse and reports, to tamper with."""
    db, out = tmp_path / "w.duckdb", tmp_path / "reports"
    shutil.copy(nights["db"], db)
    shutil.copytree(nights["out"], out, symlinks=True)
    return {"db": db, "out": out, "runs": nights["runs"]}


def verify(state: dict, capsys, *args: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["verify", "--db", str(state["db"]), "--out", str(state["out"]), *args])
    return code, capsys.readouterr().out.splitlines()


def tamper(db: Path, *statements: str, params: list | None = None) -> None:
    with duckdb.connect(str(db)) as con:
        for statement in statements:
            con.execute(statement, params or [])


# --- a clean history verifies ------------------------------------------------------------------

def test_two_nights_make_a_chain_of_two_that_verifies(nights, capsys):
    assert len(nights["runs"]) == 2
    assert verify(nights, capsys, "--all") == (0, [])
    for run_id in nights["runs"]:
        assert verify(nights, capsys, "--run", run_id) == (0, [])


def test_each_run_directory_holds_its_entry_and_every_other_file_is_an_artifact(nights):
    with duckdb.connect(str(nights["db"]), read_only=True) as con:
        entries = read_ledger(con)
    previous = GENESIS
    for seq, (entry, run_id) in enumerate(zip(entries, nights["runs"]), 1):
        run_dir = nights["out"] / run_id
        assert (entry["seq"], entry["run_id"], entry["previous_hash"]) == (seq, run_id, previous)
        assert entry["entry_hash"] == entry_hash(entry)
        assert (run_dir / LEDGER_FILE).read_bytes() == canonical_json(entry)
        files = {p.name for p in run_dir.iterdir()}
        assert set(entry["artifacts"]) == files - {LEDGER_FILE, ATTESTATION_FILE}
        assert set(DOCUMENTS) <= set(entry["artifacts"])
        for name, digest in entry["artifacts"].items():
            import hashlib
            assert hashlib.sha256((run_dir / name).read_bytes()).hexdigest() == digest
        plan = json.loads((run_dir / "retry-plan.json").read_bytes())
        assert (entry["as_of"], entry["generated_at"], entry["dataset_sha256"]) == (
            plan["as_of"], plan["generated_at"], plan["dataset"]["sha256"])
        previous = entry["entry_hash"]


def test_the_attestation_is_an_in_toto_statement_over_the_artifacts(nights):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    for run_id in nights["runs"]:
        run_dir = nights["out"] / run_id
        entry = json.loads((run_dir / LEDGER_FILE).read_bytes())
        statement = json.loads((run_dir / ATTESTATION_FILE).read_bytes())
        assert [error.message for error in validator.iter_errors(statement)] == []
        assert statement["_type"] == "https://in-toto.io/Statement/v1"
        assert statement["predicateType"] == "https://exportaudit.dev/evidence-run/v1"
        assert {s["name"]: s["digest"]["sha256"] for s in statement["subject"]} == entry["artifacts"]
        predicate = statement["predicate"]
        assert predicate["ledger_entry_hash"] == entry["entry_hash"]
        assert (predicate["run_id"], predicate["as_of"]) == (run_id, entry["as_of"])
        assert predicate["dataset"]["sha256"] == entry["dataset_sha256"]
        ids = {name: json.loads((run_dir / name).read_bytes())["evidence_id"] for name in DOCUMENTS}
        assert predicate["evidence_ids"] == ids
        assert predicate["policy"]["max_attempts"] == 5 and "ack_sla_hours" in predicate["policy"]
        stored = query(nights["db"], "select retry_plan_evidence_id, archive_health_evidence_id, "
                                     "retry_executions_evidence_id, alert_acknowledgements_evidence_id from runs "
                                     f"where run_id = '{run_id}'")
        assert stored == [tuple(ids[name] for name in DOCUMENTS)]


def test_the_report_shows_the_seq_and_the_previous_entry_hash(nights):
    first, second = (json.loads((nights["out"] / run_id / LEDGER_FILE).read_bytes()) for run_id in nights["runs"])
    report_md = (nights["out"] / nights["runs"][1] / "report.md").read_text()
    report_html = (nights["out"] / nights["runs"][1] / "report.html").read_text()
    assert f"seq `2`, previous_hash `{first['entry_hash']}`" in report_md
    assert f"seq <code>2</code>, previous_hash <code>{first['entry_hash']}</code>" in report_html
    assert second["entry_hash"] not in report_md  # it hashes the report: it is in ledger.json
    assert f"previous_hash `{GENESIS}`" in (nights["out"] / nights["runs"][0] / "report.md").read_text()


def test_the_ledger_table_and_every_column_have_comments(nights):
    [(comment,)] = query(nights["db"], "select comment from duckdb_tables() where table_name = 'ledger'")
    assert comment
    columns = query(nights["db"], "select column_name, comment from duckdb_columns() where table_name = 'ledger'")
    assert [name for name, _ in columns] == [name for name, _, _ in LEDGER_COLUMNS]
    assert all(text for _, text in columns)


def test_verify_opens_the_warehouse_read_only(nights, capsys, monkeypatch):
    monkeypatch.setenv("EXPORTAUDIT_LOCK_TIMEOUT", "0")
    holder = hold_warehouse(nights["db"], 30, read_only=True)  # a read-write open could not share the file
    try:
        assert verify(nights, capsys, "--all") == (0, [])
    finally:
        holder.kill()
        holder.wait()


# --- tampering ---------------------------------------------------------------------------------

def test_a_deleted_ledger_row_is_named(copy, capsys):
    tamper(copy["db"], "delete from ledger where seq = 1")
    code, lines = verify(copy, capsys, "--all")
    assert code == 1 and any(line.startswith("chain seq 1") and "seq 1 missing" in line for line in lines)


def test_a_deleted_tail_row_is_named_through_the_runs_table(copy, capsys):
    tamper(copy["db"], "delete from ledger where seq = 2")
    code, lines = verify(copy, capsys, "--all")
    assert code == 1 and any(line.startswith("chain") and copy["runs"][1] in line and "no ledger entry" in line
                             for line in lines)


def test_the_tail_removed_from_ledger_and_runs_is_named_through_latest(copy, capsys):
    tamper(copy["db"], "delete from ledger where seq = 2", f"delete from runs where run_id = '{copy['runs'][1]}'")
    code, lines = verify(copy, capsys, "--all")
    assert code == 1 and any(line.startswith("chain") and "latest points to run" in line for line in lines)


def test_reordered_ledger_rows_are_named(copy, capsys):
    tamper(copy["db"], "update ledger set seq = 99 where seq = 1", "update ledger set seq = 1 where seq = 2",
           "update ledger set seq = 2 where seq = 99")
    code, lines = verify(copy, capsys, "--all")
    assert code == 1 and lines[0].startswith("chain seq 1")


def test_an_edited_ledger_row_is_named(copy, capsys):
    tamper(copy["db"], "update ledger set as_of = '2026-11-19T06:00:00Z' where seq = 1")
    code, lines = verify(copy, capsys, "--all")
    assert code == 1 and lines[0].startswith("chain seq 1") and "does not recompute" in lines[0]


def test_a_changed_artifact_byte_is_named(copy, capsys):
    path = copy["out"] / copy["runs"][0] / "report.html"
    data = bytearray(path.read_bytes())
    data[100] ^= 0x20
    path.write_bytes(bytes(data))
    code, lines = verify(copy, capsys, "--all")
    assert code == 1 and lines == [line for line in lines if line.startswith(f"file seq 1 run {copy['runs'][0]}")]
    assert any("report.html: sha256" in line for line in lines)
    assert verify(copy, capsys, "--run", copy["runs"][1]) == (0, [])  # the other run still verifies alone


def test_a_run_directory_replaced_by_another_runs_is_named(copy, capsys):
    first, second = (copy["out"] / run_id for run_id in copy["runs"])
    shutil.rmtree(first)
    shutil.copytree(second, first)
    code, lines = verify(copy, capsys, "--run", copy["runs"][0])
    assert code == 1 and any(f"is the entry of run {copy['runs'][1]}" in line for line in lines)


def test_an_accepted_record_edited_after_the_run_is_found_by_recomputation(copy, capsys):
    tamper(copy["db"], "update deliveries set http_status = 404 where attempt_id = "
                       "(select min(attempt_id) from deliveries where http_status = 503)")
    code, lines = verify(copy, capsys, "--all")
    assert code == 1
    assert any(line.startswith("evidence seq 1") and "retry-plan.json: stored evidence_id" in line for line in lines)
    assert all(line.startswith("evidence") for line in lines)  # files and chain untouched


def test_an_edited_acknowledgement_is_found_in_the_run_that_read_it(copy, capsys):
    tamper(copy["db"], "update alert_acknowledgements set acknowledged_by = 'mallory' "
                       "where ack_id = (select min(ack_id) from alert_acknowledgements)")
    code, lines = verify(copy, capsys, "--all")
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith("evidence seq 2") and "alert-acknowledgements.json" in lines[0]


def test_a_pruned_run_directory_is_missing(copy, capsys):
    shutil.rmtree(copy["out"] / copy["runs"][0])
    code, lines = verify(copy, capsys, "--all")
    assert code == 0 and len(lines) == 1 and lines[0].startswith("missing seq 1")
    code, lines = verify(copy, capsys, "--run", copy["runs"][0])
    assert code == 1 and lines[0].startswith("missing seq 1")
    assert verify(copy, capsys, "--run", copy["runs"][1]) == (0, [])


def test_a_directory_no_run_recorded_is_listed_not_failed(copy, capsys):
    shutil.copytree(copy["out"] / copy["runs"][1], copy["out"] / "20261122T060000Z-0rphan00")
    code, lines = verify(copy, capsys, "--all")
    assert code == 0 and len(lines) == 1 and lines[0].startswith("unrecorded run 20261122T060000Z-0rphan00")


# --- unusable arguments ------------------------------------------------------------------------

@pytest.mark.parametrize("args", [[], ["--all", "--run", "x"], ["--run", "no-such-run"]])
def test_unusable_arguments_exit_2(nights, capsys, args):
    assert verify(nights, capsys, *args)[0] == 2


def test_a_missing_warehouse_exits_2(tmp_path, capsys):
    assert main(["verify", "--db", str(tmp_path / "none.duckdb"), "--out", str(tmp_path), "--all"]) == 2
    assert not (tmp_path / "none.duckdb").exists()


def test_verify_is_a_console_command(nights):
    done = subprocess.run([sys.executable, "-m", "exportaudit.cli", "verify", "--db", str(nights["db"]),
                           "--out", str(nights["out"]), "--all"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 0 and done.stdout == "" and "ok" in done.stderr
