"""Checking decoded records against the contract (SPEC 1, 1.5, 1.6): typed values for the
valid ones, and every reason code that applies for the others. Pure Polars.
"""

from __future__ import annotations

import polars as pl

from exportaudit.contract import BOOL, CODE, DIGEST, ENUM, INT, TIMESTAMP, Field, Log
from transforms.timestamps import NAIVE_PATTERN, UTC_US, parsed_timestamp

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
TRIMMED_CHARACTERS = " \t\r\n"


def normalised_text(decoded: pl.LazyFrame, log: Log) -> pl.LazyFrame:
    """Empty strings become null; free codes are trimmed and lowercased (empty after that: null)."""
    updates = []
    for field in log.fields:
        value = pl.col(field.name)
        if field.kind == CODE:
            value = value.str.strip_chars(TRIMMED_CHARACTERS).str.to_lowercase()
        updates.append(pl.when(value == "").then(None).otherwise(value).alias(field.name))
    return decoded.with_columns(updates)


def _field_problems(field: Field) -> list[tuple[str, pl.Expr]]:
    """(reason_code, fires) pairs for one field; its value is present and of the right type
    unless the reason says otherwise."""
    value = pl.col(field.name)
    type_ok = pl.col(f"{field.name}__type_ok")
    checkable = value.is_not_null() & type_ok
    problems = [("wrong_type", ~type_ok)]
    if field.required:
        problems.append(("missing_required_field", value.is_null() & type_ok))
    if field.kind == TIMESTAMP:
        unparsed = checkable & parsed_timestamp(value).is_null()
        naive = value.str.contains(NAIVE_PATTERN)
        problems += [("naive_timestamp", unparsed & naive), ("invalid_timestamp", unparsed & ~naive)]
    elif field.kind == DIGEST:
        problems.append(("malformed_digest", checkable & ~value.str.contains(DIGEST_PATTERN)))
    elif field.kind == ENUM:
        problems.append(("unknown_enum_value", checkable & ~value.is_in(list(field.values))))
    elif field.kind == INT:
        number = value.cast(pl.Int64, strict=False)
        in_range = number.is_not_null() & number.is_between(field.low, field.high)
        problems.append(("out_of_range", checkable & ~in_range))
    return problems


def _typed(field: Field) -> pl.Expr:
    value = pl.col(field.name)
    if field.kind == TIMESTAMP:
        typed = parsed_timestamp(value)
    elif field.kind == INT:
        typed = value.cast(pl.Int64, strict=False)
    elif field.kind == BOOL:
        typed = value == "true"
    else:
        typed = value
    return typed.alias(field.name)


def validated_records(decoded: pl.LazyFrame, log: Log) -> pl.LazyFrame:
    """Decoded records with `reason_codes` and `reason_details` (empty lists when valid) and,
    for valid records, the contract fields in their stored types."""
    details = [
        pl.when(fires.fill_null(False)).then(pl.lit(f"{code}:{field.name}"))
        for field in log.fields
        for code, fires in _field_problems(field)
    ]
    record_error = pl.col("record_error")
    field_details = pl.concat_list(details).list.drop_nulls()
    reason_details = (
        pl.when(record_error == "malformed_json").then(pl.concat_list(pl.lit("malformed_json")))  # nothing else to check
        .when(record_error.is_not_null()).then(pl.concat_list([record_error.cast(pl.Utf8), field_details]))
        .otherwise(field_details)
    )
    checked = normalised_text(decoded, log).with_columns(reason_details=reason_details).with_columns(
        reason_codes=pl.col("reason_details").list.eval(pl.element().str.split(":").list.first()).list.unique(
            maintain_order=True),
    )
    return checked.with_columns([_typed(field) for field in log.fields]).with_columns(
        pl.col(f.name).cast(UTC_US) for f in log.fields if f.kind == TIMESTAMP
    )
