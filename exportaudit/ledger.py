"""The tamper-evident run ledger (docs/ledger.md): one hash-chained entry per run, in the `ledger`
table (appended in the same transaction as the run's history rows, never updated or deleted)
and, byte for byte, as `ledger.json` in the run directory.

An entry: `seq` (1, 2, ... without gaps), `run_id`, `as_of`, `generated_at` (timestamp text as in
the evidence documents), `dataset_sha256` (docs/outputs.md#evidence-documents), `artifacts` (each file of the run directory
but `ledger.json` and `attestation.intoto.json` -> sha256 of its bytes), `previous_hash` (the
previous entry's `entry_hash`, GENESIS for the first) and `entry_hash` = sha256 of the canonical
JSON (docs/outputs.md#evidence-documents) of the entry without `entry_hash`.

The table holds exactly the values that were hashed: timestamps as their text and `artifacts` as
its canonical JSON text, so recomputing an entry_hash from a row is exact (`read_ledger`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from exportaudit.evidence import Evidence, canonical_json
from transforms.timestamps import format_instant

GENESIS = "0" * 64
LEDGER_FILE = "ledger.json"
ATTESTATION_FILE = "attestation.intoto.json"
# Files of a run directory that are not artifacts: they describe the artifacts (and the entry).
NOT_ARTIFACTS = (LEDGER_FILE, ATTESTATION_FILE)

ENTRY_FIELDS = ("seq", "run_id", "as_of", "generated_at", "dataset_sha256", "artifacts", "previous_hash",
                "entry_hash")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# The table, declared as warehouse.py declares its tables: (name, description, [(column, type, description)]).
# Register with `_create_table(con, LEDGER_TABLE, LEDGER_DESCRIPTION, LEDGER_COLUMNS)` in
# warehouse.ensure_schema, or call `ensure_ledger_table(con)`.
LEDGER_TABLE = "ledger"
LEDGER_DESCRIPTION = ("Tamper-evident run ledger (docs/ledger.md): one hash-chained entry per run, appended in the same "
                      "transaction as the run's history rows; never updated or deleted. Check it with "
                      "`exportaudit verify`.")
LEDGER_COLUMNS = [
    ("seq", "BIGINT PRIMARY KEY", "Position of the entry in the chain: 1, 2, ... without gaps."),
    ("run_id", "VARCHAR", "Id of the run (runs.run_id, the run directory's name)."),
    ("as_of", "VARCHAR", "as_of of the run as hashed: YYYY-MM-DDTHH:MM:SSZ, .ffffff before the Z only when not "
                         "zero (cast with ::TIMESTAMPTZ to compare)."),
    ("generated_at", "VARCHAR", "generated_at of the run's evidence documents, written like as_of."),
    ("dataset_sha256", "VARCHAR", "dataset.sha256 of the run's evidence (docs/outputs.md#evidence-documents): sha256 of the sorted sha256s "
                                  "of every file ingested up to the run."),
    ("artifacts", "VARCHAR", "Canonical JSON object: each file of the run directory but ledger.json and "
                             "attestation.intoto.json -> sha256 (hex) of its bytes."),
    ("previous_hash", "VARCHAR", "entry_hash of the entry with seq - 1; 64 zeros for seq 1."),
    ("entry_hash", "VARCHAR", "sha256 (hex) of the canonical JSON of the entry without entry_hash."),
]


class LedgerConflict(RuntimeError):
    """The entry does not continue the chain the table holds (another run appended first, or a bug)."""


def _instant_text(value: datetime | str) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime in a ledger entry: {value!r}")
        return format_instant(value)
    if not isinstance(value, str):
        raise TypeError(f"timestamp must be a datetime or its text, not {type(value).__name__}")
    return value


def artifact_digests(files: Mapping[str, bytes], known: Mapping[str, str] | None = None) -> dict[str, str]:
    """name -> sha256 of the bytes of each run-directory file, leaving out ledger.json and
    attestation.intoto.json (pass the very bytes given to RunDirectoryWriter.finish). known: sha256s
    already computed from these very bytes, by name (the writer hashes each file as it writes it)."""
    known = known or {}
    return {name: known.get(name) or _sha256(data) for name, data in sorted(files.items()) if name not in NOT_ARTIFACTS}


def _sha256(data) -> str:
    """sha256 of a file's content: bytes, or an evidence document's canonical JSON (known to the
    document since it was encoded: a streamed one is not encoded again)."""
    return data.sha256 if isinstance(data, Evidence) else hashlib.sha256(data).hexdigest()


def entry_hash(entry: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the entry without its entry_hash."""
    return hashlib.sha256(canonical_json({k: v for k, v in entry.items() if k != "entry_hash"})).hexdigest()


def ledger_entry(seq: int, run_id: str, as_of: datetime | str, generated_at: datetime | str,
                 dataset_sha256: str, artifacts: Mapping[str, str], previous_hash: str) -> dict:
    """One ledger entry with its entry_hash. Timestamps may be aware datetimes or already their text."""
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ValueError(f"seq must be an integer >= 1, not {seq!r}")
    for label, value in (("dataset_sha256", dataset_sha256), ("previous_hash", previous_hash)):
        if not isinstance(value, str) or not _SHA256.match(value):
            raise ValueError(f"{label} must be 64 lowercase hex digits, not {value!r}")
    excluded = sorted(set(artifacts) & set(NOT_ARTIFACTS))
    if excluded:
        raise ValueError(f"not artifacts (they describe the artifacts): {', '.join(excluded)}")
    for name, digest in artifacts.items():
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise ValueError(f"artifact {name!r}: sha256 must be 64 lowercase hex digits, not {digest!r}")
    entry = {
        "seq": seq,
        "run_id": run_id,
        "as_of": _instant_text(as_of),
        "generated_at": _instant_text(generated_at),
        "dataset_sha256": dataset_sha256,
        "artifacts": dict(sorted(artifacts.items())),
        "previous_hash": previous_hash,
    }
    entry["entry_hash"] = entry_hash(entry)
    return entry


def ledger_json(entry: Mapping[str, Any]) -> bytes:
    """The bytes of `ledger.json`: the canonical JSON of the entry."""
    return canonical_json(dict(entry))


def ensure_ledger_table(con) -> None:
    """Create the ledger table with its comments (idempotent; opens no transaction of its own)."""
    columns = ", ".join(f'"{name}" {sql_type}' for name, sql_type, _ in LEDGER_COLUMNS)
    con.execute(f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} ({columns})")
    con.execute(f"COMMENT ON TABLE {LEDGER_TABLE} IS {_quote(LEDGER_DESCRIPTION)}")
    for name, _, text in LEDGER_COLUMNS:
        con.execute(f'COMMENT ON COLUMN {LEDGER_TABLE}."{name}" IS {_quote(text)}')


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_SELECT = f"select {', '.join(ENTRY_FIELDS)} from {LEDGER_TABLE}"


def _entry_from_row(row: tuple) -> dict:
    entry = dict(zip(ENTRY_FIELDS, row))
    try:
        entry["artifacts"] = json.loads(entry["artifacts"])
    except (TypeError, ValueError):
        pass  # kept as stored: its entry_hash will not recompute, and verify says so
    return entry


def read_ledger(con) -> list[dict]:
    """Every entry, ordered by seq, with `artifacts` as an object: exactly the values that were hashed."""
    return [_entry_from_row(row) for row in con.execute(f"{_SELECT} order by seq").fetchall()]


def last_entry(con) -> dict | None:
    rows = con.execute(f"{_SELECT} order by seq desc limit 1").fetchall()
    return _entry_from_row(rows[0]) if rows else None


def next_position(con) -> dict:
    """`seq` and `previous_hash` of the entry the next run will append: what the run's report shows
    (docs/ledger.md#the-report-and-the-chain); the entry_hash cannot be in a file it hashes."""
    last = last_entry(con)
    if last is None:
        return {"seq": 1, "previous_hash": GENESIS}
    return {"seq": int(last["seq"]) + 1, "previous_hash": last["entry_hash"]}


def next_entry(con, run_id: str, as_of: datetime | str, generated_at: datetime | str, dataset_sha256: str,
               artifacts: Mapping[str, str]) -> dict:
    """The entry that continues the chain the table holds. Call it inside the run's history
    transaction, right before `append_ledger_entry`, so the tail cannot move in between."""
    position = next_position(con)
    return ledger_entry(position["seq"], run_id, as_of, generated_at, dataset_sha256, artifacts,
                        position["previous_hash"])


def append_ledger_entry(con, entry: Mapping[str, Any]) -> None:
    """Insert the entry. Opens no transaction: call it inside the one that records the run's
    history rows (history.record_run), so the run and its entry commit or roll back together.
    Refuses an entry whose hash does not recompute or that does not continue the chain."""
    if set(entry) != set(ENTRY_FIELDS):
        raise ValueError(f"a ledger entry has exactly the fields {', '.join(ENTRY_FIELDS)}")
    if entry_hash(entry) != entry["entry_hash"]:
        raise ValueError(f"entry_hash of seq {entry['seq']} does not recompute")
    last = last_entry(con)
    expected = (1, GENESIS) if last is None else (int(last["seq"]) + 1, last["entry_hash"])
    if (entry["seq"], entry["previous_hash"]) != expected:
        raise LedgerConflict(f"entry seq {entry['seq']} does not continue the ledger (expected seq {expected[0]} "
                             f"after previous_hash {expected[1]})")
    values = [canonical_json(entry[name]).decode("utf-8") if name == "artifacts" else entry[name]
              for name in ENTRY_FIELDS]
    con.execute(f"insert into {LEDGER_TABLE} ({', '.join(ENTRY_FIELDS)}) values "
                f"({', '.join('?' for _ in ENTRY_FIELDS)})", values)
