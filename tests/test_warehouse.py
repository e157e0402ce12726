"""SPEC 4.4: comments on everything, read-only access between runs, bounded lock wait."""

from __future__ import annotations

import duckdb
import pytest

from exportaudit import warehouse
from tests.conftest import hold_warehouse


def test_every_table_view_and_column_has_a_comment(tmp_path):
    con = warehouse.connect(tmp_path / "w.duckdb")
    warehouse.ensure_schema(con)
    tables = con.execute("select table_name, comment from duckdb_tables()").fetchall()
    views = con.execute("select view_name, comment from duckdb_views() where not internal").fetchall()
    columns = con.execute("select table_name, column_name, comment from duckdb_columns() "
                          "where table_name in (select table_name from duckdb_tables())").fetchall()
    con.close()
    names = {t for t, _ in tables}
    assert {"exports", "deliveries", "archives", "custody_checks", "quarantine", "ingested_files", "runs",
            "retry_plan", "archive_health", "archive_alerts"} <= names
    assert {v for v, _ in views} >= set(warehouse.LATEST_VIEWS)
    assert all(comment for _, comment in tables + views)
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
