"""docs/outputs.md#warehouse: comments on everything, read-only access between runs, bounded lock wait."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from exportaudit import history, warehouse
from tests.conftest import hold_warehouse


def test_every_table_view_and_column_has_a_comment(tmp_path):
    con = warehouse.connect(tmp_path / "w.duckdb")
    warehouse.ensure_schema(con)
    tables = con.execute("select table_name, comment from duckdb_tables()").fetchall()
    views = con.execute("select view_name, comment from duckdb_views() where not internal").fetchall()
    columns = con.execute("select table_name, column_name, comment from duckdb_columns() "
                          "where schema_name = 'main' and not internal").fetchall()  # views' too
    con.close()
    names = {t for t, _ in tables}
    assert {"exports", "deliveries", "archives", "custody_checks", "quarantine", "ingested_files", "runs",
            "retry_plan", "archive_health", "archive_alerts"} <= names
    assert {v for v, _ in views} >= set(warehouse.LATEST_VIEWS)
    assert all(comment for _, comment in tables + views)
    assert {t for t, _, _ in columns} >= set(warehouse.LATEST_VIEWS)
    assert [c for c in columns if not c[2]] == []


def test_schema_creation_is_idempotent_and_readable_read_only(tmp_path):
    db = tmp_path / "w.duckdb"
    for _ in range(2):
        con = warehouse.connect(db)
        warehouse.ensure_schema(con)
        con.close()
    with duckdb.connect(str(db), read_only=True) as reader:
        assert reader.execute("select count(*) from exports").fetchone() == (0,)


def _hold(db, seconds):
    return hold_warehouse(db, seconds, read_only=False)  # another process with the file open for writing


def test_connect_waits_for_another_process_then_succeeds(tmp_path, capsys):
    db = tmp_path / "w.duckdb"
    holder = _hold(db, 1.5)
    try:
        con = warehouse.connect(db, timeout_seconds=60)
        con.close()
    finally:
        holder.wait()
    assert "held by another process; waiting" in capsys.readouterr().err


def test_connect_gives_up_after_the_bound(tmp_path):
    db = tmp_path / "w.duckdb"
    holder = _hold(db, 30)
    try:
        with pytest.raises(warehouse.WarehouseBusy, match="gave up after"):
            warehouse.connect(db, timeout_seconds=0.5)
        assert holder.poll() is None  # still held: it gave up at its bound, not when the holder left
    finally:
        holder.kill()
        holder.wait()


def test_one_latest_run_for_the_view_the_runs_list_and_the_trend(tmp_path):
    con = warehouse.connect(tmp_path / "w.duckdb")
    warehouse.ensure_schema(con)
    assert history.latest_run(con) is None and history.runs(con) == []
    finished = datetime(2026, 11, 20, 6, tzinfo=timezone.utc)
    for run_id, finished_at in (("run-a", finished), ("run-c", finished - timedelta(hours=1)), ("run-b", finished)):
        con.execute("insert into runs (run_id, as_of, finished_at, retryable_deliveries, archive_health_alert_count) "
                    "values (?, ?, ?, 1, 2)", [run_id, finished, finished_at])
    newest_first = ["run-b", "run-a", "run-c"]  # same finished_at: the greater run_id is the latest
    assert [run["run_id"] for run in history.runs(con)] == newest_first
    assert history.latest_run(con)["run_id"] == "run-b" == con.execute("select run_id from latest_run").fetchall()[0][0]
    assert [run["run_id"] for run in history.trend(con)] == newest_first[::-1]
    assert history.history_totals(con) == history.RunTotals(runs=3, retryable_deliveries=3,
                                                            archive_health_alert_count=6)
    con.close()


def test_releasing_cached_blocks_keeps_the_configured_memory_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORTAUDIT_DUCKDB_MEMORY", "1GB")
    con = warehouse.connect(tmp_path / "w.duckdb")
    try:
        limit = con.execute("select current_setting('memory_limit')").fetchall()[0][0]
        warehouse.release_cached_blocks(con)
        warehouse.release_cached_blocks(con)  # twice: no drift from re-reading a rounded value
        assert con.execute("select current_setting('memory_limit')").fetchall()[0][0] == limit
    finally:
        con.close()


@pytest.mark.parametrize("in_memory", [False, True])
def test_a_long_frame_goes_in_through_parquet_with_the_same_rows(tmp_path, monkeypatch, in_memory):
    """warehouse.append: from APPEND_THROUGH_PARQUET_ROWS rows on, through `<db>.append.tmp/` (removed
    after); the table holds what the in-memory route gives, every type and null included."""
    frame = pl.DataFrame({
        "text": ["a", None, "é\n\"x\""], "number": [1, None, -(2**62)], "flag": [True, None, False],
        "at": [datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc), None, datetime(1970, 1, 1, tzinfo=timezone.utc)],
    }).with_columns(pl.col("at").cast(pl.Datetime("us", "UTC")))
    tables = {}
    for route, threshold in (("memory", 10**9), ("parquet", 2)):
        monkeypatch.setattr(warehouse, "APPEND_THROUGH_PARQUET_ROWS", threshold)
        con = duckdb.connect(":memory:" if in_memory else str(tmp_path / f"{route}.duckdb"))
        con.execute("SET TimeZone = 'UTC'")
        con.execute("create table t (flag boolean, \"at\" timestamptz, text varchar, number bigint)")
        warehouse.append(con, "t", frame)
        tables[route] = con.sql("select text, number, flag, \"at\" from t").pl()
        con.close()
    assert_frame_equal(tables["parquet"], tables["memory"])
    assert_frame_equal(tables["parquet"], frame)
    assert sorted(path.name for path in tmp_path.iterdir()) == (
        [] if in_memory else ["memory.duckdb", "parquet.duckdb"])  # no append.tmp left
