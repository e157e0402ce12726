"""docs/ledger.md ledger: entry hashing (known answer), the chain through the table, the transaction."""

import hashlib
import json
from datetime import datetime, timezone

import duckdb
import pytest

from exportaudit.ledger import (ATTESTATION_FILE, GENESIS, LEDGER_COLUMNS, LEDGER_DESCRIPTION, LEDGER_FILE,
                                LEDGER_TABLE, LedgerConflict, append_ledger_entry, artifact_digests,
                                ensure_ledger_table, entry_hash, ledger_entry, ledger_json, next_entry, read_ledger)

SHA_A, SHA_B, SHA_D = "a" * 64, "b" * 64, "d" * 64


def python_canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@pytest.fixture
def con():
    connection = duckdb.connect()
    ensure_ledger_table(connection)
    yield connection
    connection.close()


def test_entry_hash_known_answer():
    as_of = datetime(2026, 11, 20, 6, 0, 0, tzinfo=timezone.utc)
    generated_at = datetime(2026, 11, 20, 6, 0, 1, 120, tzinfo=timezone.utc)
    artifacts = {"report.md": SHA_B, "retry-plan.json": SHA_A, "résumé.html": SHA_D}
    entry = ledger_entry(1, "20261120T060001Z-abcd1234", as_of, generated_at, SHA_D, artifacts, GENESIS)

    expected = {
        "seq": 1, "run_id": "20261120T060001Z-abcd1234", "as_of": "2026-11-20T06:00:00Z",
        "generated_at": "2026-11-20T06:00:01.000120Z", "dataset_sha256": SHA_D,
        "artifacts": {"report.md": SHA_B, "retry-plan.json": SHA_A, "résumé.html": SHA_D},
        "previous_hash": "0" * 64,
    }
    expected_hash = hashlib.sha256(python_canonical(expected)).hexdigest()
    assert entry == {**expected, "entry_hash": expected_hash}
    assert entry_hash(entry) == expected_hash
    # ledger.json is the canonical JSON of the whole entry, UTF-8 (not \u escapes)
    assert ledger_json(entry) == python_canonical({**expected, "entry_hash": expected_hash})
    assert "résumé.html".encode() in ledger_json(entry)


def test_timestamps_are_written_as_in_evidence_documents():
    offset = datetime.fromisoformat("2026-11-20T08:00:00+02:00")
    entry = ledger_entry(1, "r", offset, "2026-11-20T06:00:00.500000Z", SHA_A, {"x": SHA_B}, GENESIS)
    assert entry["as_of"] == "2026-11-20T06:00:00Z"
    assert entry["generated_at"] == "2026-11-20T06:00:00.500000Z"  # text is kept as given
    with pytest.raises(ValueError):
        ledger_entry(1, "r", datetime(2026, 1, 1), "2026-01-01T00:00:00Z", SHA_A, {"x": SHA_B}, GENESIS)


def test_entry_hash_changes_with_every_field():
    entry = ledger_entry(2, "r", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", SHA_A, {"x": SHA_B}, SHA_D)
    for field, value in (("seq", 3), ("run_id", "s"), ("as_of", "2026-01-01T00:00:01Z"),
                         ("generated_at", "2026-01-02T00:00:00Z"), ("dataset_sha256", SHA_B),
                         ("artifacts", {"x": SHA_A}), ("previous_hash", SHA_A)):
        assert entry_hash({**entry, field: value}) != entry["entry_hash"], field


def test_artifact_digests_leave_out_ledger_and_attestation():
    files = {"retry-plan.json": b"{}", LEDGER_FILE: b"x", ATTESTATION_FILE: b"y", "report.md": b"# r\n"}
    assert artifact_digests(files) == {"report.md": hashlib.sha256(b"# r\n").hexdigest(),
                                       "retry-plan.json": hashlib.sha256(b"{}").hexdigest()}
    for name in (LEDGER_FILE, ATTESTATION_FILE):
        with pytest.raises(ValueError, match=name):
            ledger_entry(1, "r", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", SHA_A, {name: SHA_B}, GENESIS)


@pytest.mark.parametrize("bad", [{"x": "A" * 64}, {"x": "a" * 63}, {"x": None}])
def test_artifact_digests_must_be_sha256_hex(bad):
    with pytest.raises(ValueError):
        ledger_entry(1, "r", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", SHA_A, bad, GENESIS)


def test_first_entry_is_seq_1_after_genesis_and_the_chain_continues(con):
    entries = []
    for number in range(1, 4):
        con.execute("BEGIN")
        entry = next_entry(con, f"run-{number}", f"2026-11-2{number}T06:00:00Z", f"2026-11-2{number}T06:00:01Z",
                           SHA_A, {"retry-plan.json": SHA_B, "report.md": hashlib.sha256(bytes([number])).hexdigest()})
        append_ledger_entry(con, entry)
        con.execute("COMMIT")
        entries.append(entry)
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[0]["previous_hash"] == GENESIS
    assert [e["previous_hash"] for e in entries[1:]] == [e["entry_hash"] for e in entries[:-1]]
    stored = read_ledger(con)
    assert stored == entries  # the table holds exactly what was hashed
    assert all(entry_hash(e) == e["entry_hash"] for e in stored)
    text = con.execute("select artifacts from ledger where seq = 1").fetchall()[0][0]
    assert text.encode() == python_canonical(entries[0]["artifacts"])


def test_entry_commits_and_rolls_back_with_the_run_rows(con):
    con.execute("create table runs (run_id varchar)")
    con.execute("BEGIN")
    con.execute("insert into runs values ('run-1')")
    append_ledger_entry(con, next_entry(con, "run-1", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", SHA_A,
                                        {"x": SHA_B}))
    con.execute("ROLLBACK")
    assert con.execute("select count(*) from runs").fetchall() == [(0,)]
    assert read_ledger(con) == []


def test_append_refuses_entries_that_do_not_continue_the_chain(con):
    first = next_entry(con, "run-1", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", SHA_A, {"x": SHA_B})
    append_ledger_entry(con, first)
    with pytest.raises(LedgerConflict):
        append_ledger_entry(con, first)  # seq 1 again
    stale = ledger_entry(2, "run-2", "2026-01-02T00:00:00Z", "2026-01-02T00:00:00Z", SHA_A, {"x": SHA_B}, SHA_D)
    with pytest.raises(LedgerConflict):
        append_ledger_entry(con, stale)  # previous_hash is not seq 1's entry_hash
    second = next_entry(con, "run-2", "2026-01-02T00:00:00Z", "2026-01-02T00:00:00Z", SHA_A, {"x": SHA_B})
    with pytest.raises(ValueError, match="recompute"):
        append_ledger_entry(con, {**second, "run_id": "run-x"})
    append_ledger_entry(con, second)
    assert [e["seq"] for e in read_ledger(con)] == [1, 2]


def test_concurrent_appends_cannot_both_commit_the_same_seq(con):
    one, two = con.cursor(), con.cursor()
    one.execute("BEGIN")
    two.execute("BEGIN")
    append_ledger_entry(one, next_entry(one, "run-1", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", SHA_A,
                                        {"x": SHA_B}))
    append_ledger_entry(two, next_entry(two, "run-2", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", SHA_A,
                                        {"x": SHA_B}))
    one.execute("COMMIT")
    with pytest.raises(duckdb.Error):
        two.execute("COMMIT")
    assert [e["run_id"] for e in read_ledger(con)] == ["run-1"]


def test_table_and_every_column_have_comments(con):
    assert LEDGER_TABLE == "ledger" and all(len(column) == 3 for column in LEDGER_COLUMNS)
    assert con.execute("select comment from duckdb_tables() where table_name = 'ledger'").fetchall() == [
        (LEDGER_DESCRIPTION,)]
    comments = dict(con.execute("select column_name, comment from duckdb_columns() "
                                "where table_name = 'ledger'").fetchall())
    assert list(comments) == [name for name, _, _ in LEDGER_COLUMNS]
    assert all(comments.values())
    ensure_ledger_table(con)  # idempotent
