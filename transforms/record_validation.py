"""Checking decoded records against the contract (docs/inputs.md#input-logs, docs/inputs.md#bad-input-and-quarantine, docs/inputs.md#fine-print-on-types-and-formats): typed values for the
valid ones, and every reason code that applies for the others. Pure Polars.

Fast on big inputs: each check is one boolean expression; the reason lists are built only
for the (few) invalid rows, and each timestamp field is parsed once.
"""

from __future__ import annotations

from typing import NamedTuple

import polars as pl

from exportaudit.contract import BOOL, CODE, DIGEST, ENUM, INT, TIMESTAMP, Field, Log
from transforms.timestamps import NAIVE_PATTERN, UTC_US, parsed_timestamps

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
TRIMMED_CHARACTERS = " \t\r\n"
# Optional decoded column (List[Utf8]) of a source's own reasons, as "code:detail" (e.g.
# "attempt_not_final:status", from a Svix attempt): a record with any is invalid, and they head
# its reason_details; its reason code is the part before ":", like every other reason's.
SOURCE_REASONS = "source_reasons"


class CheckedRecords(NamedTuple):
    valid: pl.DataFrame  # contract fields in their stored types, plus the lineage columns
    invalid: pl.DataFrame  # as decoded, plus reason_codes and reason_details


def normalised_text(decoded: pl.DataFrame, log: Log) -> pl.DataFrame:
    """Empty strings become null; free codes are trimmed and lowercased (empty after that: null).
    A column is rewritten only when it needs it (a cheap scan first): big columns are not copied.

    An empty string is null in every field, whatever its type and format (docs/inputs.md): `""`
    in a JSON int or bool field, a quoted `""` CSV cell, an empty value in a Parquet string
    column. The readers flag such a value as a wrong type for int and bool fields; it is not one,
    so its type flag is cleared here, once for all formats. In an optional field the record is
    then valid with a null; in a required field it is `missing_required_field`, the same code as
    an absent or JSON-null value, whatever the field's type."""
    updates = []
    empties = decoded.select((pl.col(f.name) == "").any() for f in log.fields).row(0)  # one pass for all fields
    for field, has_empty in zip(log.fields, empties):
        value = pl.col(field.name)
        if has_empty:
            type_ok = f"{field.name}__type_ok"
            updates.append((pl.col(type_ok) | (value == "").fill_null(False)).alias(type_ok))
        if field.kind == CODE:
            value = value.str.strip_chars(TRIMMED_CHARACTERS).str.to_lowercase()
        elif not has_empty:
            continue
        updates.append(pl.when(value == "").then(None).otherwise(value).alias(field.name))
    return decoded.with_columns(updates)


def _instant(field: Field) -> pl.Expr:
    return pl.col(f"__instant_{field.name}")


def field_problems(field: Field) -> list[tuple[str, pl.Expr]]:
    """(reason_code, fires) pairs for one field; `fires` is true when the reason applies."""
    value = pl.col(field.name)
    type_ok = pl.col(f"{field.name}__type_ok")
    checkable = value.is_not_null() & type_ok
    problems = [("wrong_type", ~type_ok)]
    if field.required:
        problems.append(("missing_required_field", value.is_null() & type_ok))
    if field.kind == TIMESTAMP:
        unparsed = checkable & _instant(field).is_null()
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
    return [(code, fires.fill_null(False)) for code, fires in problems]


def _typed(field: Field) -> pl.Expr:
    value = pl.col(field.name)
    if field.kind == TIMESTAMP:
        typed = _instant(field)
    elif field.kind == INT:
        typed = value.cast(pl.Int64, strict=False)
    elif field.kind == BOOL:
        typed = value == "true"
    else:
        typed = value
    return typed.alias(field.name)


def reasons(invalid: pl.DataFrame, log: Log) -> pl.DataFrame:
    """reason_details ("code:field") and reason_codes (distinct codes) of invalid records."""
    details = [pl.when(fires).then(pl.lit(f"{code}:{field.name}"))
               for field in log.fields for code, fires in field_problems(field)]
    utf8 = pl.when(pl.col("invalid_utf8").fill_null(False)).then(pl.lit("invalid_utf8"))
    field_details = pl.concat_list([utf8, *details]).list.drop_nulls()
    malformed_details = pl.concat_list([pl.lit("malformed_json"), utf8]).list.drop_nulls()
    reason_details = (  # a malformed line has no fields to check
        pl.when(pl.col("record_error") == "malformed_json").then(malformed_details).otherwise(field_details)
    )
    if SOURCE_REASONS in invalid.columns:  # a source's own reasons come first
        reason_details = pl.concat_list([pl.col(SOURCE_REASONS).fill_null([]), reason_details])
    return invalid.with_columns(reason_details=reason_details).with_columns(
        reason_codes=pl.col("reason_details").list.eval(pl.element().str.split(":").list.first())
        .list.unique(maintain_order=True),
    )


def _instants(frame: pl.DataFrame, field: Field) -> pl.Series:
    """The field's UTC instants: given natively by the reader (Parquet), else parsed from text."""
    name, text = f"__instant_{field.name}", frame[field.name]
    if name not in frame.columns:
        return parsed_timestamps(text).alias(name)
    given = frame[name].cast(UTC_US)
    to_parse = (given.is_null() & text.is_not_null()).arg_true()
    if len(to_parse):
        given = given.scatter(to_parse, parsed_timestamps(text.gather(to_parse)))
    return given.alias(name)


def checked_records(decoded: pl.DataFrame, log: Log) -> CheckedRecords:
    """Split decoded records into valid (typed) and invalid (with every reason that applies)."""
    frame = normalised_text(decoded, log)
    frame = frame.with_columns(_instants(frame, f) for f in log.fields if f.kind == TIMESTAMP)
    problems = [fires for field in log.fields for _, fires in field_problems(field)]
    if SOURCE_REASONS in frame.columns:
        problems.append(pl.col(SOURCE_REASONS).list.len().fill_null(0) > 0)
    frame = frame.with_columns(__invalid=pl.any_horizontal(problems) | pl.col("record_error").is_not_null()
                               | pl.col("invalid_utf8").fill_null(False))
    instants = [f"__instant_{f.name}" for f in log.fields if f.kind == TIMESTAMP]
    any_invalid = frame["__invalid"].any()
    valid = (frame.filter(~pl.col("__invalid")) if any_invalid else frame).with_columns(_typed(f) for f in log.fields)
    valid = valid.with_columns(pl.col(f.name).cast(UTC_US) for f in log.fields if f.kind == TIMESTAMP)
    invalid = reasons(frame.filter(pl.col("__invalid")), log)
    return CheckedRecords(valid.drop("__invalid", *instants), invalid.drop("__invalid", *instants))
