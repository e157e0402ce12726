"""Invariants of ingestion (hypothesis): nothing is lost, whatever the records."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exportaudit import warehouse
from exportaudit.ingest import ingest, read_inputs
from tests.conftest import DIGEST_A, delivery_record

NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)

json_values = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=False),
                        st.text(max_size=12), st.sampled_from(["2026-11-19T00:00:00Z", "2026-11-19T00:00:00",
                                                               "failed", "delivered", "private", DIGEST_A, ""]))
field_names = st.sampled_from(list(delivery_record()) + ["retry_after_seconds", "error_code", "extra"])
records = st.one_of(
    st.builds(lambda overrides: delivery_record(**overrides), st.dictionaries(field_names, json_values, max_size=3)),
    st.builds(lambda i: delivery_record(attempt_id=f"a{i}"), st.integers(0, 3)),
)
lines = st.lists(st.one_of(records.map(json.dumps), st.text(max_size=20)), max_size=25)


def _ingest_lines(folder: Path, chunks: list[list[str]]):
    paths = []
    for i, chunk in enumerate(chunks):
        path = folder / f"d{i}.jsonl"
        path.write_text("\n".join(chunk) + "\n", encoding="utf-8", errors="surrogatepass")
        paths.append(str(path))
    decoded = read_inputs({"deliveries": paths})
    con = duckdb.connect()
    warehouse.ensure_schema(con)
    accounts = ingest(con, decoded, "run-1", NOW)
    return con, accounts


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines, min_size=1, max_size=3))
@example([["\x1f"]])  # Python calls it whitespace; JSON does not: a record (malformed), not a blank line
@example([["\u00a0", " \t\r", ""]])
def test_rows_read_equal_accepted_plus_quarantined_plus_duplicates(chunks):
    with tempfile.TemporaryDirectory() as folder:
        con, accounts = _ingest_lines(Path(folder), chunks)
        stored = con.execute("select count(*) from deliveries").fetchone()[0]
        quarantined = con.execute("select count(*) from quarantine").fetchone()[0]
        con.close()
    for account in accounts:
        assert account.rows_read == account.rows_accepted + account.rows_quarantined + account.rows_duplicate
    new = [a for a in accounts if not a.skipped]
    assert sum(a.rows_accepted for a in new) == stored
    assert sum(a.rows_quarantined for a in new) == quarantined
    non_blank = sum(1 for chunk, a in zip(chunks, accounts) if not a.skipped
                    for line in "\n".join(chunk).split("\n") if line.strip(" \t\r"))
    assert sum(a.rows_read for a in new) == non_blank


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_ingester(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "junk.jsonl"
        path.write_bytes(data)
        con = duckdb.connect()
        warehouse.ensure_schema(con)
        [account] = ingest(con, read_inputs({"deliveries": [str(path)]}), "run-1", NOW)
        con.close()
    assert account.rows_read == account.rows_accepted + account.rows_quarantined + account.rows_duplicate


TIMESTAMP_TEXTS = st.sampled_from([
    "2026-11-19T00:00:00Z", "2026-11-19T00:00:00.123456789Z", "2026-11-19T00:00:60Z", "2026-11-19T00:00:00+02:00",
    "2026-11-19T00:00+0200", "2026-11-19T00:00:00", "", "garbage", "2026-02-30T00:00:00Z", "2026-11-19T23:59:59.5-05",
    "2026-11-19T12:30:45.000001+05:30",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), TIMESTAMP_TEXTS), max_size=12))
def test_column_timestamp_parsing_equals_the_general_rule(texts):
    """parsed_timestamps (fast paths on the rows that fit, the general rule on the rest) gives the
    instants parsed_timestamp gives, row for row, whatever the mix."""
    from transforms.timestamps import parsed_timestamp, parsed_timestamps
    column = pl.Series("t", texts, dtype=pl.Utf8)
    expected = pl.DataFrame({"t": column}).select(parsed_timestamp(pl.col("t"))).to_series()
    assert parsed_timestamps(column).to_list() == expected.to_list()


def _stored(con) -> tuple:
    return tuple(con.execute(sql).fetchall() for sql in (
        "select * exclude (ingest_run_id) from deliveries order by source_row, source_file_sha256",
        "select * exclude (run_id) from quarantine order by source_file_sha256, source_row",
        "select * exclude (run_id, ingested_at) from ingested_files order by file_sha256"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines, min_size=1, max_size=3))
def test_duplicates_do_not_depend_on_the_key_hash(chunks):
    """The key hash only narrows the search for duplicates: with every key hashing alike (all collide),
    the same records are accepted, quarantined and counted as duplicates."""
    from unittest import mock

    from exportaudit import ingest as ingest_module
    with tempfile.TemporaryDirectory() as folder:
        con, _ = _ingest_lines(Path(folder), chunks)
        expected = _stored(con)
        con.close()
    with tempfile.TemporaryDirectory() as folder, \
            mock.patch.object(ingest_module, "key_hash", lambda log: pl.lit(7, pl.UInt64)):
        con, _ = _ingest_lines(Path(folder), chunks)
        assert _stored(con) == expected
        con.close()
