"""Building blocks shared by the table models: Pandera columns for contract fields."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from exportaudit.contract import BOOL, DIGEST, ENUM, INT, TIMESTAMP, Field, Log
from transforms.record_validation import DIGEST_PATTERN
from transforms.timestamps import UTC_US

STORED_TYPES = {TIMESTAMP: UTC_US, INT: pl.Int64, BOOL: pl.Boolean}

# Lineage columns every accepted table carries besides its contract fields.
LINEAGE_COLUMNS = {
    "extra_fields": pa.Column(pl.Utf8, nullable=True,
                              description="Fields of the record outside the contract, as a JSON object (redacted); "
                                          "null when none. Ignored by the rules."),
    "source_file_sha256": pa.Column(pl.Utf8, description="sha256 of the file the record came from."),
    "source_row": pa.Column(pl.Int64, description="JSON line number, or CSV / Parquet data row number (1-based)."),
    "ingest_run_id": pa.Column(pl.Utf8, description="Run that ingested the record."),
}


def contract_column(field: Field) -> pa.Column:
    checks = []
    if field.kind == ENUM:
        checks.append(pa.Check.isin(list(field.values)))
    elif field.kind == DIGEST:
        checks.append(pa.Check.str_matches(DIGEST_PATTERN))
    elif field.kind == INT:
        checks.append(pa.Check.in_range(field.low, field.high))
    return pa.Column(STORED_TYPES.get(field.kind, pl.Utf8), nullable=not field.required, checks=checks,
                     description=field.description)


def accepted_schema(log: Log) -> pa.DataFrameSchema:
    """Model of an accepted-records table: the contract fields in stored types, then lineage.

    Natural-key uniqueness is guaranteed by the de-duplication step (and tested there),
    so it is not re-checked here: it is the costliest check at scale.
    """
    columns = {field.name: contract_column(field) for field in log.fields}
    return pa.DataFrameSchema({**columns, **LINEAGE_COLUMNS}, name=log.name, description=log.description,
                              strict=True, ordered=True)
