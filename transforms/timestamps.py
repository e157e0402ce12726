"""Timestamp text <-> UTC instants (docs/inputs.md#input-logs "Values" and 1.6), as Polars expressions.

Accepted text: date `T` time, seconds optional, any number of fraction digits, then
`Z` or an offset `±HH:MM`, `±HHMM` or `±HH`. Stored as UTC microseconds (finer digits
truncated). Written as `YYYY-MM-DDTHH:MM:SSZ`, with `.ffffff` only when not zero.
"""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl

UTC_US = pl.Datetime("us", "UTC")  # every stored instant: UTC, microseconds

TIMESTAMP_PATTERN = (
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}(?::?\d{2})?)$"
)
# Well formed but without an offset: ambiguous, hence invalid for its own reason.
NAIVE_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$"


def parsed_timestamp(text: pl.Expr) -> pl.Expr:
    """UTC instant of a timestamp text; null when the text is not a valid instant."""
    parts = text.str.extract_groups(TIMESTAMP_PATTERN)
    offset = parts.struct.field("8")
    offset_hh_mm = (
        pl.when(offset == "Z")
        .then(pl.lit("+00:00"))
        .when(offset.str.len_chars() == 3)
        .then(offset + ":00")
        .when(offset.str.len_chars() == 5)
        .then(offset.str.slice(0, 3) + ":" + offset.str.slice(3, 2))
        .otherwise(offset)
    )
    fraction = (parts.struct.field("7").fill_null("") + "000000").str.slice(0, 6)  # truncate to µs
    canonical = pl.concat_str(
        [
            parts.struct.field("1"), pl.lit("-"), parts.struct.field("2"), pl.lit("-"), parts.struct.field("3"),
            pl.lit("T"), parts.struct.field("4"), pl.lit(":"), parts.struct.field("5"), pl.lit(":"),
            parts.struct.field("6").fill_null("00"), pl.lit("."), fraction, offset_hh_mm,
        ]
    )
    seconds_ok = parts.struct.field("6").fill_null("00").cast(pl.Int32, strict=False) <= 59
    instant = canonical.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_unit=UTC_US.time_unit,
                                        time_zone=UTC_US.time_zone, strict=False)
    return pl.when(seconds_ok).then(instant).otherwise(None).cast(UTC_US)


# Fast paths: the common spellings, parsed by Polars' native parser. Seconds 00-59 and at most
# six fraction digits, so neither leap seconds nor truncation can differ from the general path.
_FAST_PATHS = [
    (r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:[0-5]\d(\.\d{1,6})?Z$", "%Y-%m-%dT%H:%M:%S%.fZ"),
    (r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:[0-5]\d(\.\d{1,6})?[+-]\d{2}:\d{2}$", "%Y-%m-%dT%H:%M:%S%.f%:z"),
]


def parsed_timestamps(text: pl.Series) -> pl.Series:
    """`parsed_timestamp` for a whole column, fast: common spellings go through Polars' native
    parser; each later path, and the general one, looks only at the rows still unparsed."""
    result = pl.repeat(None, len(text), dtype=UTC_US, eager=True).alias(text.name)
    pending = text.is_not_null().arg_true()  # row numbers not parsed yet
    for pattern, fmt in _FAST_PATHS:
        if len(pending) == 0:
            break
        candidates = text if len(pending) == len(text) else text.gather(pending)
        fits = candidates.str.contains(pattern).fill_null(False)
        if not fits.any():
            continue
        every = fits.all()
        parsed = (candidates if every else candidates.filter(fits)).str.to_datetime(
            fmt, time_unit=UTC_US.time_unit, time_zone=UTC_US.time_zone, strict=False).cast(UTC_US)
        if every and len(pending) == len(text):
            result = parsed.alias(text.name)
        else:
            result = result.scatter(pending if every else pending.filter(fits), parsed)
        pending = pending.clear() if every else pending.filter(~fits)
    if len(pending):
        general = pl.DataFrame({"text": text.gather(pending)}).select(parsed_timestamp(pl.col("text"))).to_series()
        result = result.scatter(pending, general)
    return result


def timestamp_text(instant: pl.Expr) -> pl.Expr:
    """`YYYY-MM-DDTHH:MM:SSZ`, with `.ffffff` before the Z only when microseconds are not zero."""
    utc = instant.dt.convert_time_zone("UTC")
    return (
        pl.when(utc.dt.microsecond() != 0)
        .then(utc.dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"))
        .otherwise(utc.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    )


def parse_instant(text: str) -> datetime:
    """One timestamp text (e.g. --as-of) to an aware UTC datetime; ValueError when invalid."""
    value = parsed_timestamps(pl.Series([text], dtype=pl.Utf8)).item()
    if value is None:
        raise ValueError(f"not an ISO-8601 timestamp with offset: {text!r}")
    return value.astimezone(timezone.utc)


def format_instant(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(timezone.utc)
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{value.microsecond:06d}Z" if value.microsecond else f"{base}Z"
