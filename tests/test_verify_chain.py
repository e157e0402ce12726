"""docs/ledger.md verify: the chain, run directories against the ledger, evidence ids, exit codes."""

import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest

from exportaudit.attestation import attestation_json, attestation_statement
from exportaudit.evidence import canonical_json, dataset_identity
from exportaudit.ledger import (ATTESTATION_FILE, LEDGER_FILE, append_ledger_entry, artifact_digests,
                                ensure_ledger_table, entry_hash, ledger_json, next_entry, read_ledger)
from exportaudit.verify import (Problem, UnknownRun, exit_code, verify, verify_chain, verify_evidence,
                                verify_run_directory)

RUNS = ["20261121T060000Z-00000001", "20261122T060000Z-00000002", "20261123T060000Z-00000003"]
POLICY = {"retry": {"max_attempts": 5}, "health": {"stale_after_days": 30}}


def evidence_id(run_number: int, document: str) -> str:
    return hashlib.sha256(f"{document}-{run_number}".encode()).hexdigest()


class Warehouse:
    """An in-memory warehouse with just what verify reads, and OUT/ with three recorded runs."""

    def __init__(self, out: Path):
        self.out = out
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        ensure_ledger_table(self.con)
        self.con.execute("create table runs (run_id varchar, finished_at timestamptz, "
                         "retry_plan_evidence_id varchar, archive_health_evidence_id varchar)")
        self.con.execute("create table ingested_files (file_sha256 varchar, run_id varchar, ingested_at timestamptz)")
        self.entries = [self.record(number, run_id) for number, run_id in enumerate(RUNS, 1)]

    def record(self, number: int, run_id: str) -> dict:
        generated_at = f"2026-11-2{number}T06:00:00Z"
        as_of = f"2026-11-2{number}T05:00:00.000500Z"
        self.con.execute("insert into ingested_files values (?, ?, ?::TIMESTAMPTZ)",
                         [hashlib.sha256(f"input-{number}".encode()).hexdigest(), run_id, generated_at])
        files_so_far = [row[0] for row in self.con.execute("select file_sha256 from ingested_files").fetchall()]
        dataset = dataset_identity(files_so_far)
        ids = {"retry-plan.json": evidence_id(number, "plan"), "archive-health.json": evidence_id(number, "health")}
        files = {
            "retry-plan.json": canonical_json({"evidence_id": ids["retry-plan.json"], "run_id": run_id}),
            "archive-health.json": canonical_json({"evidence_id": ids["archive-health.json"], "run_id": run_id}),
            "metrics.prom": f"exportaudit_retry_plan_count 1\n# run {number}\n".encode(),
            "report.md": f"# Run {number}\n".encode(),
        }
        run_dir = self.out / run_id
        run_dir.mkdir(parents=True)
        for name, data in files.items():
            (run_dir / name).write_bytes(data)
        # as the integrator wires it: the entry in the transaction of the run's history rows
        self.con.execute("BEGIN")
        self.con.execute("insert into runs values (?, ?::TIMESTAMPTZ + interval 1 minute, ?, ?)",
                         [run_id, generated_at, ids["retry-plan.json"], ids["archive-health.json"]])
        entry = next_entry(self.con, run_id, as_of, generated_at, dataset["sha256"], artifact_digests(files))
        append_ledger_entry(self.con, entry)
        (run_dir / LEDGER_FILE).write_bytes(ledger_json(entry))
        (run_dir / ATTESTATION_FILE).write_bytes(attestation_json(attestation_statement(entry, POLICY, dataset, ids)))
        self.con.execute("COMMIT")
        return entry

    def recompute(self, run_id, as_of, file_sha256s):
        number = RUNS.index(run_id) + 1
        assert as_of.utcoffset().total_seconds() == 0 and as_of.microsecond == 500
        assert len(file_sha256s) == number
        return {"retry-plan.json": evidence_id(number, "plan"), "archive-health.json": evidence_id(number, "health")}


@pytest.fixture
def warehouse(tmp_path):
    built = Warehouse(tmp_path / "reports")
    yield built
    built.con.close()


def kinds_and_seqs(problems):
    return [(p.kind, p.seq) for p in problems]


# --- the chain ---------------------------------------------------------------------------------

def test_a_chain_of_three_verifies(warehouse):
    entries = read_ledger(warehouse.con)
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert verify_chain(entries) == []
    assert verify(warehouse.con, warehouse.out, recompute=warehouse.recompute) == []


def test_a_deleted_row_is_named_by_its_seq(warehouse):
    warehouse.con.execute("delete from ledger where seq = 2")
    problems = verify_chain(read_ledger(warehouse.con))
    assert kinds_and_seqs(problems) == [("chain", 2)]
    assert "seq 2 missing" in problems[0].line()


def test_a_deleted_row_renumbered_is_still_found(warehouse):
    warehouse.con.execute("delete from ledger where seq = 2")
    warehouse.con.execute("update ledger set seq = 2 where seq = 3")
    problems = verify_chain(read_ledger(warehouse.con))
    assert {p.seq for p in problems} == {2} and len(problems) == 2  # previous_hash and entry_hash


def test_two_rows_reordered_are_found(warehouse):
    entries = read_ledger(warehouse.con)
    problems = verify_chain([entries[0], entries[2], entries[1]])
    assert problems and problems[0].seq == 2 and problems[0].kind == "chain"
    # the same in the table: seq values of two rows swapped
    warehouse.con.execute("update ledger set seq = 99 where seq = 2")
    warehouse.con.execute("update ledger set seq = 2 where seq = 3")
    warehouse.con.execute("update ledger set seq = 3 where seq = 99")
    problems = verify_chain(read_ledger(warehouse.con))
    assert problems and problems[0].seq == 2
    assert {p.seq for p in problems} == {2, 3}


def test_an_edited_field_is_named_by_its_seq(warehouse):
    warehouse.con.execute("update ledger set dataset_sha256 = ? where seq = 2", ["f" * 64])
    problems = verify_chain(read_ledger(warehouse.con))
    assert kinds_and_seqs(problems) == [("chain", 2)]
    assert "does not recompute" in problems[0].message


def test_edited_artifacts_text_is_found(warehouse):
    warehouse.con.execute("update ledger set artifacts = replace(artifacts, '\"report.md\"', '\"report.txt\"') "
                          "where seq = 1")
    assert kinds_and_seqs(verify_chain(read_ledger(warehouse.con))) == [("chain", 1)]
    warehouse.con.execute("update ledger set artifacts = 'not json' where seq = 3")
    assert kinds_and_seqs(verify_chain(read_ledger(warehouse.con))) == [("chain", 1), ("chain", 3)]


def test_an_edit_with_its_hash_recomputed_breaks_the_next_link(warehouse):
    entries = read_ledger(warehouse.con)
    forged = {**entries[1], "as_of": "2026-01-01T00:00:00Z"}
    forged["entry_hash"] = entry_hash(forged)
    problems = verify_chain([entries[0], forged, entries[2]])
    assert kinds_and_seqs(problems) == [("chain", 3)]
    assert "previous_hash" in problems[0].message and "seq 2" in problems[0].message


def test_a_removed_tail_entry_is_found_through_the_runs_table(warehouse):
    warehouse.con.execute("delete from ledger where seq = 3")
    problems = verify(warehouse.con, warehouse.out)
    assert [(p.kind, p.run_id) for p in problems] == [("chain", RUNS[2])]


def test_a_duplicated_run_id_is_found(warehouse):
    entries = read_ledger(warehouse.con)
    problems = verify_chain([*entries, {**entries[2], "seq": 4}])
    assert ("chain", 4) in kinds_and_seqs(problems)


# --- run directories ---------------------------------------------------------------------------

def test_every_run_directory_verifies(warehouse):
    for entry in read_ledger(warehouse.con):
        assert verify_run_directory(warehouse.out, entry) == []


def test_a_changed_artifact_byte_is_found(warehouse):
    path = warehouse.out / RUNS[1] / "report.md"
    data = bytearray(path.read_bytes())
    data[2] ^= 0x01
    path.write_bytes(bytes(data))
    problems = verify(warehouse.con, warehouse.out)
    assert [(p.kind, p.seq, p.run_id) for p in problems] == [("file", 2, RUNS[1])]
    assert problems[0].message.startswith("report.md: sha256")
    assert exit_code(problems, "all") == 1


def test_deleted_added_and_ledger_json_edits_are_found(warehouse):
    run_dir = warehouse.out / RUNS[0]
    (run_dir / "metrics.prom").unlink()
    (run_dir / "extra.csv").write_bytes(b"x")
    (run_dir / ".report.md.123.tmp").write_bytes(b"half")  # write_atomic's leftovers are not artifacts
    (run_dir / LEDGER_FILE).write_bytes((run_dir / LEDGER_FILE).read_bytes().replace(b'"seq":1', b'"seq":7'))
    messages = [p.message for p in verify_run_directory(warehouse.out, read_ledger(warehouse.con)[0])]
    assert any(m.startswith("ledger.json: differs") and "seq" in m for m in messages)
    assert any(m.startswith("metrics.prom: missing") for m in messages)
    assert any(m.startswith("extra.csv: not recorded") for m in messages)
    assert len(messages) == 3


def test_an_edited_attestation_is_found(warehouse):
    path = warehouse.out / RUNS[2] / ATTESTATION_FILE
    path.write_bytes(path.read_bytes().replace(evidence_id(3, "plan").encode(), b"0" * 64))
    problems = verify_run_directory(warehouse.out, read_ledger(warehouse.con)[2])
    assert [p.kind for p in problems] == ["file"]
    assert "evidence_ids[retry-plan.json]" in problems[0].message


def test_a_run_directory_replaced_by_another_runs_is_found(warehouse):
    shutil.rmtree(warehouse.out / RUNS[0])
    shutil.copytree(warehouse.out / RUNS[1], warehouse.out / RUNS[0])
    problems = verify(warehouse.con, warehouse.out, run_id=RUNS[0])
    assert problems and all(p.kind == "file" and p.seq == 1 for p in problems)
    assert f"is the entry of run {RUNS[1]}" in problems[0].message
    assert {m.split(":")[0] for m in (p.message for p in problems)} >= {
        "ledger.json", "retry-plan.json", "archive-health.json", "report.md", ATTESTATION_FILE}
    assert exit_code(problems, "run") == 1


def test_a_pruned_run_directory_is_missing_not_tampered(warehouse):
    shutil.rmtree(warehouse.out / RUNS[1])
    problems = verify(warehouse.con, warehouse.out, recompute=warehouse.recompute)
    assert kinds_and_seqs(problems) == [("missing", 2)]  # the other runs and the evidence still checked
    assert exit_code(problems, "all") == 0
    only_this_run = verify(warehouse.con, warehouse.out, run_id=RUNS[1], recompute=warehouse.recompute)
    assert kinds_and_seqs(only_this_run) == [("missing", 2)]
    assert exit_code(only_this_run, "run") == 1
    # missing plus anything else is a failure under --all too
    (warehouse.out / RUNS[0] / "report.md").write_bytes(b"edited")
    problems = verify(warehouse.con, warehouse.out)
    assert sorted(kinds_and_seqs(problems)) == [("file", 1), ("missing", 2)]
    assert exit_code(problems, "all") == 1


def test_a_pruned_directory_does_not_hide_a_broken_chain(warehouse):
    shutil.rmtree(warehouse.out / RUNS[0])
    warehouse.con.execute("update ledger set run_id = 'someone-else' where seq = 3")
    problems = verify(warehouse.con, warehouse.out)
    assert ("chain", 3) in kinds_and_seqs(problems) and ("missing", 1) in kinds_and_seqs(problems)
    assert exit_code(problems, "all") == 1


def test_an_unknown_run_is_a_usage_error(warehouse):
    with pytest.raises(UnknownRun):
        verify(warehouse.con, warehouse.out, run_id="no-such-run")


# --- evidence ----------------------------------------------------------------------------------

def test_recomputed_evidence_ids_must_equal_the_stored_ones(warehouse):
    entries = read_ledger(warehouse.con)
    assert all(verify_evidence(warehouse.con, e, warehouse.recompute) == [] for e in entries)

    def drifted(run_id, as_of, file_sha256s):
        return {**warehouse.recompute(run_id, as_of, file_sha256s), "archive-health.json": "9" * 64}

    problems = verify_evidence(warehouse.con, entries[1], drifted)
    assert [(p.kind, p.seq) for p in problems] == [("evidence", 2)]
    assert problems[0].message.startswith("archive-health.json") and "9" * 64 in problems[0].message


def test_an_edited_runs_row_is_found_by_recomputation(warehouse):
    warehouse.con.execute("update runs set retry_plan_evidence_id = ? where run_id = ?", ["8" * 64, RUNS[0]])
    problems = verify(warehouse.con, warehouse.out, recompute=warehouse.recompute)
    assert [(p.kind, p.seq, p.message.split(":")[0]) for p in problems] == [("evidence", 1, "retry-plan.json")]


def test_a_changed_record_of_ingested_files_is_found(warehouse):
    warehouse.con.execute("delete from ingested_files where run_id = ?", [RUNS[0]])
    problems = verify(warehouse.con, warehouse.out, recompute=warehouse.recompute)
    assert kinds_and_seqs(problems) == [("evidence", 1), ("evidence", 2), ("evidence", 3)]
    assert all("dataset sha256" in p.message for p in problems)


def test_a_failing_recomputation_is_a_problem_not_a_crash(warehouse):
    def broken(run_id, as_of, file_sha256s):
        raise RuntimeError("no accepted records")

    problems = verify_evidence(warehouse.con, read_ledger(warehouse.con)[0], broken)
    assert [p.kind for p in problems] == ["evidence"] and "no accepted records" in problems[0].message


# --- problems and exit codes -------------------------------------------------------------------

def test_each_problem_is_one_line():
    problem = Problem("file", 3, "run-3", "report.md: sha256 x\ndiffers")
    assert problem.line() == "file seq 3 run run-3: report.md: sha256 x differs"
    assert Problem("chain", None, None, "m").line() == "chain: m"
    with pytest.raises(ValueError):
        Problem("tampered", 1, "r", "m")


def test_exit_codes():
    missing = Problem("missing", 2, "r2", "run directory not found")
    broken = Problem("chain", 3, "r3", "entry_hash does not recompute")
    assert exit_code([], "all") == exit_code([], "run") == 0
    assert exit_code([missing], "all") == 0
    assert exit_code([missing], "run") == 1
    assert exit_code([missing, broken], "all") == 1
    assert exit_code([broken], "run") == 1
    with pytest.raises(ValueError):
        exit_code([], "some")
