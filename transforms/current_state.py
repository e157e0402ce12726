"""What the rules see at as_of (docs/inputs.md#input-logs): records dated after as_of are ignored, and the
current state of an export is its record with the greatest updated_at <= as_of."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from transforms.timestamps import UTC_US


def up_to(records: pl.LazyFrame, date_column: str, as_of: datetime) -> pl.LazyFrame:
    """Records dated at or before as_of by their log's date field."""
    return records.filter(pl.col(date_column) <= pl.lit(as_of, dtype=UTC_US))


def current_exports(exports: pl.LazyFrame, as_of: datetime) -> pl.LazyFrame:
    """One row per export known at as_of (one with a record at or before it): its latest state
    (greatest updated_at <= as_of)."""
    # (export_id, updated_at) is the natural key: exactly one record per export has the greatest updated_at.
    in_scope = up_to(exports, "updated_at", as_of)
    return in_scope.filter(pl.col("updated_at") == pl.col("updated_at").max().over("export_id"))
