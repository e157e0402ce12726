"""Typed inline frames of accepted records, as the warehouse hands them to the rules."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl

from exportaudit.contract import LOGS, TIMESTAMP
from exportaudit.warehouse import ACCEPTED_SCHEMAS
from transforms.timestamps import parsed_timestamp


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def frame(log_name: str, records: list[dict]) -> pl.LazyFrame:
    """Records (timestamps as ISO text) -> a LazyFrame with the accepted table's contract types."""
    log = LOGS[log_name]
    schema = ACCEPTED_SCHEMAS[log_name]
    text_schema = {f.name: (pl.Utf8 if f.kind == TIMESTAMP else schema.columns[f.name].dtype.type) for f in log.fields}
    rows = [{name: record.get(name) for name in log.field_names} for record in records]
    df = pl.DataFrame(rows, schema=text_schema, orient="row") if rows else pl.DataFrame(schema=text_schema)
    return df.lazy().with_columns(parsed_timestamp(pl.col(f.name)).alias(f.name)
                                  for f in log.fields if f.kind == TIMESTAMP)
