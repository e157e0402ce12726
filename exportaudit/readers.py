"""Reading the four logs (docs/inputs.md#input-logs, 1.6): file discovery and decoding of JSONL / CSV / Parquet
into one *decoded* frame shape, whatever the format.

A decoded frame has, per record: `source_row` (JSON line number, CSV data row number, or
Parquet row number, all 1-based), `record_error` ("malformed_json" or null), `invalid_utf8`
(true when the record held bytes that are not UTF-8),
`extra_fields` (JSON object of non-contract fields, or null) and, per contract field `f`,
its text `f` (null when absent) and `f__type_ok` (false when present with the wrong type
for its format). An empty string keeps its text "" here, whatever the field's type: making
it null is a format-free rule, applied by validation. The record's raw text is built only
when it is needed, for quarantined rows (`DecodedFile.raw_texts`). The format-free checks of
the contract happen later, in `transforms.record_validation`.

Decoding is bulk: DuckDB's JSON functions over all lines at once, Polars' CSV and
Parquet readers; no Python loop over records.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from exportaudit.contract import BOOL, INT, TIMESTAMP, Log
from transforms.timestamps import UTC_US

NATIVE_INSTANT = "<native instant>"  # text of a Parquet timestamp-with-zone value (see _parquet_records)

FORMATS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".jsonl.gz": "jsonl", ".ndjson.gz": "jsonl",
    ".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet",
}


class UnreadableInput(Exception):
    """A file that cannot be read: the run stops before anything is written (exit 2)."""

    def __init__(self, path: str | Path, cause: str):
        self.path, self.cause = str(path), cause
        super().__init__(f"{path}: {cause}")


@dataclass
class InputFile:
    log: str
    path: Path
    format: str
    sha256: str
    content: bytes  # decompressed bytes for text formats; raw bytes for Parquet


@dataclass
class DecodedFile:
    file: InputFile
    decoded: pl.DataFrame | None  # the decoded frame described above; None for Parquet (built on demand)
    raw: pl.DataFrame  # source_row + raw_text (JSONL), or the file's own columns (CSV, Parquet)
    log: Log | None = None

    @property
    def records(self) -> pl.DataFrame:
        # Parquet keeps only its compact native frame until ingest asks for the decoded view.
        return self.decoded if self.decoded is not None else _parquet_records(self.raw, self.log)

    def release(self) -> None:
        """Drop the frames once ingested: the night goes on with much less memory."""
        self.decoded, self.raw = _EMPTY_FRAME, _EMPTY_FRAME

    def raw_texts(self, source_rows: pl.Series) -> pl.Series:
        """The raw text of the given records: the JSON line, or the row's cells as a JSON object."""
        if self.file.format == "jsonl":
            return _jsonl_raw_texts(self.file.path, self.file.sha256, source_rows)
        rows = self.raw.with_row_index("__row").filter(pl.col("__row").is_in((source_rows - 1).implode()))
        order = pl.DataFrame({"__row": (source_rows - 1).cast(pl.UInt32)})
        rows = order.join(rows, on="__row", how="left", maintain_order="left").drop("__row")
        return rows.select(_json_object(rows)).to_series()


def _json_object(frame: pl.DataFrame) -> pl.Expr:
    """Each row's cells as a JSON object (text view of temporal and binary columns)."""
    if not frame.width:
        return pl.lit("{}").alias("raw_text")
    cells = [pl.col(name).cast(pl.Utf8, strict=False)
             if dtype.is_temporal() or isinstance(dtype, (pl.Categorical, pl.Enum)) or dtype == pl.Binary
             else pl.col(name) for name, dtype in frame.schema.items()]
    return pl.struct(cells).struct.json_encode().alias("raw_text")


def file_format(path: Path) -> str | None:
    name = path.name.lower()
    for suffix, kind in sorted(FORMATS.items(), key=lambda item: -len(item[0])):
        if name.endswith(suffix):
            return kind
    return None


def resolve_paths(specs: list[str]) -> list[Path]:
    """Files named by each spec (a file, a directory, or a glob), in the order given;
    a directory's and a glob's files sorted by name."""
    paths: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and file_format(p))
            paths.extend(found)
        elif any(ch in spec for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
            if not matches:
                raise UnreadableInput(spec, "no file matches this pattern")
            paths.extend(matches)
        else:
            paths.append(path)
    return paths


def load_file(log: str, path: Path) -> InputFile:
    """The file's bytes (decompressed when .gz) and sha256; UnreadableInput when it cannot be read."""
    kind = file_format(path)
    if kind is None:
        raise UnreadableInput(path, "unknown format (expected .jsonl, .ndjson, .csv, .parquet, or .gz of a text format)")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UnreadableInput(path, "no such file") from None
    except IsADirectoryError:
        raise UnreadableInput(path, "is a directory") from None
    except OSError as error:
        raise UnreadableInput(path, error.strerror or str(error)) from None
    sha256 = hashlib.sha256(data).hexdigest()
    content = data
    if path.name.lower().endswith(".gz") and data:
        try:
            content = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise UnreadableInput(path, f"not a valid gzip file ({error})") from None
    return InputFile(log=log, path=path, format=kind, sha256=sha256, content=content)


def decode_file(file: InputFile, log: Log) -> DecodedFile:
    decoder = {"jsonl": _decode_jsonl, "csv": _decode_csv, "parquet": _decode_parquet}[file.format]
    try:
        records, raw = decoder(file.content, log) if file.content else (_empty(log), pl.DataFrame())
    except UnreadableInput:
        raise
    except Exception as error:  # the reader's own message says what is wrong with the file
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnreadableInput(file.path, f"not a readable {file.format} file ({message[:200]})") from None
    file.content = b""  # decoded: the bytes are no longer needed
    return DecodedFile(file=file, decoded=records, raw=raw, log=log)


_EMPTY_FRAME = pl.DataFrame()


def _empty(log: Log) -> pl.DataFrame:
    columns = {"source_row": pl.Int64, "record_error": pl.Utf8, "invalid_utf8": pl.Boolean, "extra_fields": pl.Utf8}
    for name in log.field_names:
        columns[name] = pl.Utf8
        columns[f"{name}__type_ok"] = pl.Boolean
    return pl.DataFrame(schema=columns)


def _text_of(content: bytes) -> tuple[str, bool]:
    """Decoded text and whether it was valid UTF-8 (invalid bytes become U+FFFD)."""
    try:
        return content.decode("utf-8"), True
    except UnicodeDecodeError:
        return content.decode("utf-8", errors="replace"), False


def _utf8_error(raw_text: pl.Expr, file_is_utf8: bool) -> pl.Expr:
    """Records of a file that is not valid UTF-8 whose text holds a replacement character."""
    if file_is_utf8:
        return pl.lit(False)
    return raw_text.str.contains("\ufffd", literal=True)


JSON_WHITESPACE = " \t\r"  # a line of only these is blank (JSON's insignificant whitespace; "\n" ends the line)
JSONL_CHUNK_BYTES = 64 * 1024 * 1024  # decoded a chunk at a time: memory stays bounded on big files


def _jsonl_lines(content: bytes) -> Iterator[pl.DataFrame]:
    """Non-blank lines of a JSON Lines file, a chunk at a time: `source_row` (physical line
    number), `raw_text` (invalid UTF-8 bytes replaced by U+FFFD) and `invalid_utf8`."""
    content = content.removeprefix(b"\xef\xbb\xbf")
    start, first_line = 0, 1
    while start < len(content):
        end = content.find(b"\n", min(start + JSONL_CHUNK_BYTES, len(content)))
        end = len(content) if end < 0 else end + 1
        text, is_utf8 = _text_of(content[start:end])
        pieces = text.split("\n")
        if text.endswith("\n"):
            pieces.pop()
        lines = pl.DataFrame({"raw_text": pieces}).with_row_index("source_row", offset=first_line)
        first_line += len(pieces)
        start = end
        lines = lines.with_columns(pl.col("source_row").cast(pl.Int64), pl.col("raw_text").str.strip_suffix("\r"))
        lines = lines.filter(pl.col("raw_text").str.strip_chars(JSON_WHITESPACE) != "")  # a blank line is not a record
        yield lines.with_columns(invalid_utf8=_utf8_error(pl.col("raw_text"), is_utf8))


def _jsonl_raw_texts(path: Path, sha256: str, source_rows: pl.Series) -> pl.Series:
    """Raw text of some lines, read again from the file (only quarantined rows need it)."""
    again = load_file("again", path)
    if again.sha256 != sha256:
        raise UnreadableInput(path, "the file changed while it was being ingested")
    wanted = pl.DataFrame({"source_row": source_rows})
    found = pl.concat([lines.join(wanted, on="source_row", how="semi").select("source_row", "raw_text")
                       for lines in _jsonl_lines(again.content)] or [pl.DataFrame(schema={"source_row": pl.Int64,
                                                                                          "raw_text": pl.Utf8})])
    return wanted.join(found, on="source_row", how="left", maintain_order="left")["raw_text"]


def _decode_jsonl(content: bytes, log: Log) -> tuple[pl.DataFrame, pl.DataFrame]:
    parts = [_decoded_json_lines(lines, log) for lines in _jsonl_lines(content)]
    return (pl.concat(parts) if parts else _empty(log)), _EMPTY_FRAME


def _decoded_json_lines(lines: pl.DataFrame, log: Log) -> pl.DataFrame:
    """One chunk of lines decoded by DuckDB's JSON functions: each field's JSON type and text."""
    names = log.field_names
    paths = ", ".join("'$.\"" + name + "\"'" for name in names)
    erase_contract = json.dumps({name: None for name in names})
    field_columns = ", ".join(
        f"json_type(vals[{i + 1}]) as \"{name}__json_type\", vals[{i + 1}]->>'$' as \"{name}\""
        for i, name in enumerate(names)
    )
    with duckdb.connect() as con:
        decoded = con.sql(
            f"""
            with parsed as (
                select source_row, raw_text, invalid_utf8,
                       case when json_valid(raw_text) then json_type(raw_text) = 'OBJECT' else false end as is_object
                from lines
            ), fields as (
                select source_row, is_object, invalid_utf8,
                       case when is_object then json_extract(raw_text::JSON, [{paths}]) end as vals,
                       case when is_object then json_merge_patch(raw_text, '{erase_contract}') end as extras
                from parsed
            )
            select source_row, is_object, invalid_utf8,
                   nullif(extras, '{{}}') as extra_fields,
                   {field_columns}
            from fields
            order by source_row
            """
        ).pl()
    json_types_ok = {
        INT: ["BIGINT", "UBIGINT"],
        BOOL: ["BOOLEAN"],
    }
    columns = [
        pl.col("source_row"), pl.col("extra_fields"),
        pl.when(~pl.col("is_object")).then(pl.lit("malformed_json")).alias("record_error"),
        pl.col("invalid_utf8"),
    ]
    for field in log.fields:
        json_type = pl.col(f"{field.name}__json_type")
        absent = json_type.is_null() | (json_type == "NULL")
        allowed = json_types_ok.get(field.kind, ["VARCHAR"])
        type_ok = json_type.is_in(allowed)
        if field.kind == INT:  # an integer too large for 64 bits parses as DOUBLE; it is an integer out of range
            type_ok = type_ok | ((json_type == "DOUBLE") & pl.col(field.name).str.contains(r"^-?\d+$"))
        columns.append(pl.when(absent).then(None).otherwise(pl.col(field.name)).alias(field.name))
        columns.append((absent | type_ok).alias(f"{field.name}__type_ok"))
    return decoded.select(columns)


def _decode_csv(content: bytes, log: Log) -> tuple[pl.DataFrame, pl.DataFrame]:
    text, is_utf8 = _text_of(content.removeprefix(b"\xef\xbb\xbf"))
    frame = pl.read_csv(
        text.encode("utf-8"), infer_schema=False, truncate_ragged_lines=True, empty_string_is_null=True,
        raise_if_empty=False,
    )
    extra_names = [c for c in frame.columns if c not in log.field_names]
    columns = [
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("source_row"),
        pl.lit(None, pl.Utf8).alias("record_error"),
        _utf8_error(_json_object(frame), is_utf8).alias("invalid_utf8"),
        (pl.struct(extra_names).struct.json_encode() if extra_names else pl.lit(None, pl.Utf8)).alias("extra_fields"),
    ]
    for field in log.fields:
        if field.name not in frame.columns:
            columns += [pl.lit(None, pl.Utf8).alias(field.name), pl.lit(True).alias(f"{field.name}__type_ok")]
            continue
        value = pl.col(field.name)
        if field.kind == INT:
            type_ok = value.str.contains(r"^\d+$")
        elif field.kind == BOOL:
            type_ok = value.is_in(["true", "false"])
        else:
            type_ok = pl.lit(True)
        # A quoted "" cell stays "" (a bare blank cell is already null): validation makes it null.
        columns += [value.alias(field.name), (value.is_null() | type_ok).alias(f"{field.name}__type_ok")]
    return frame.select(columns), frame


def _decode_parquet(content: bytes, log: Log) -> tuple[None, pl.DataFrame]:
    """Reading proves the file readable; the decoded view is built at ingest (`_parquet_records`)."""
    import io

    return None, pl.read_parquet(io.BytesIO(content))


def _parquet_records(frame: pl.DataFrame, log: Log) -> pl.DataFrame:
    extra_names = [c for c in frame.columns if c not in log.field_names]
    columns = [
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("source_row"),
        pl.lit(None, pl.Utf8).alias("record_error"),
        pl.lit(False).alias("invalid_utf8"),
        (_json_object(frame.select(extra_names)) if extra_names else pl.lit(None, pl.Utf8)).alias("extra_fields"),
    ]
    for field in log.fields:
        if field.name not in frame.columns:
            columns += [pl.lit(None, pl.Utf8).alias(field.name), pl.lit(True).alias(f"{field.name}__type_ok")]
            continue
        dtype = frame.schema[field.name]
        if field.kind == TIMESTAMP and isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            # A native instant needs no text round trip: its value is passed on as is, and the
            # text column only says whether it is present.
            columns += [pl.when(pl.col(field.name).is_not_null()).then(pl.lit(NATIVE_INSTANT)).alias(field.name),
                        pl.lit(True).alias(f"{field.name}__type_ok"),
                        pl.col(field.name).cast(UTC_US).alias(f"__instant_{field.name}")]
            continue
        value, type_ok = _parquet_text(pl.col(field.name), dtype, field.kind)
        columns += [value.alias(field.name), (pl.col(field.name).is_null() | type_ok).alias(f"{field.name}__type_ok")]
    return frame.select(columns)


def _parquet_text(column: pl.Expr, dtype: pl.DataType, kind: str) -> tuple[pl.Expr, pl.Expr]:
    """Text of a Parquet column for a field of `kind`, and whether its native type fits (docs/inputs.md#fine-print-on-types-and-formats)."""
    is_string = dtype == pl.Utf8 or isinstance(dtype, (pl.Categorical, pl.Enum))
    if dtype.is_nested() or dtype == pl.Binary:  # never the right type; its text lives in raw_text
        return pl.lit(None, pl.Utf8), pl.lit(False)
    if kind == TIMESTAMP and isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:  # naive: written without offset, so validation calls it naive
            return column.dt.strftime("%Y-%m-%dT%H:%M:%S%.f"), pl.lit(True)
        return column.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ"), pl.lit(True)
    if kind == INT:
        return column.cast(pl.Utf8, strict=False), pl.lit(dtype.is_integer())
    if kind == BOOL:
        return column.cast(pl.Utf8, strict=False).str.to_lowercase(), pl.lit(dtype == pl.Boolean)
    return column.cast(pl.Utf8, strict=False), pl.lit(is_string)
