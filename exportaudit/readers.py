"""Reading the four logs (docs/inputs.md#input-logs, 1.6): file discovery and decoding of JSONL / CSV / Parquet
into one *decoded* frame shape, whatever the format.

A decoded frame has, per record: `source_row` (JSON line number, CSV data row number, or
Parquet row number, all 1-based), `record_error` ("malformed_json" or null), `invalid_utf8`
(true when the record held bytes that are not UTF-8),
`extra_fields` (JSON object of non-contract fields, or null) and, per contract field `f`,
its text `f` (null when absent) and `f__type_ok` (false when present with the wrong type
for its format). An empty string keeps its text "" here, whatever the field's type: making
it null is a format-free rule, applied by validation. For the raw text of quarantined rows,
a JSON Lines frame also carries `raw_text` (the line) and a CSV / Parquet frame `raw_record`
(the row's own cells; the text, their JSON object, is built only for quarantined rows).
The format-free checks of the contract happen later, in `transforms.record_validation`.

Files are read in bounded batches (`FileSource.batches`): memory does not grow with the
file. `load_file` is the cheap check made before anything is written (exists, format,
sha256, gzip stream, Parquet footer). Decoding is bulk within a batch: DuckDB's JSON
functions over a chunk of lines, Polars' CSV and Parquet readers (pyarrow's for a Parquet file whose
types Polars would read differently); no Python loop over records (except, rarely, over the values
of a Parquet Binary column holding bytes that are not UTF-8: `_binary_as_text`).
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
import pyarrow.parquet as pq

from exportaudit.contract import BOOL, INT, TIMESTAMP, Field, Log
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
    """A file that passed the cheap up-front check (`load_file`): its identity, never its bytes."""
    log: str
    path: Path
    format: str
    sha256: str
    size: int = 0  # bytes on disk, and the modification time: a file that changes while it
    mtime_ns: int = 0  # is being ingested stops the run (UnreadableInput) instead of lying


class FileSource:
    """One input file as an ingest source (the `exportaudit.ingest.InputSource` protocol):
    identity up front, records decoded lazily, a bounded batch at a time (`batches`).

    JSON Lines: chunks of JSONL_CHUNK_BYTES of whole lines; CSV: chunks of CSV_CHUNK_BYTES of
    whole records (a line break inside quotes does not end a record), each parsed with the
    header; Parquet: PARQUET_BATCH_ROWS rows at a time (Polars' reader, or pyarrow's batch
    reader when Polars would type a column differently: `_polars_reads_alike`). Gzip is
    decompressed as a stream. Each batch carries what quarantine needs for the raw text of its
    records: `raw_text` (the JSON line) or `raw_record` (the row's cells)."""

    def __init__(self, file: InputFile, log: Log):
        self.file, self.contract = file, log
        self.log, self.format, self.sha256 = file.log, file.format, file.sha256
        self.path, self.name = file.path, file.path.name

    def batches(self) -> Iterator[pl.DataFrame]:
        decoder = {"jsonl": _jsonl_batches, "csv": _csv_batches, "parquet": _parquet_batches}[self.format]
        yield from self._read(decoder(self.file, self.contract))

    def _read(self, parts: Iterator[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        try:
            yield from parts
        except UnreadableInput:
            raise
        except Exception as error:  # the reader's own message says what is wrong with the file
            raise _unreadable(self.file, error) from None
        _check_unchanged(self.file)

    @property
    def records(self) -> pl.DataFrame:
        """Every record at once (small files and tests only: ingest reads `batches`)."""
        parts = list(self.batches())
        frame = pl.concat(parts, how="diagonal_relaxed") if parts else _empty(self.contract)
        return frame.drop("raw_text", "raw_record", strict=False)

    def raw_texts(self, source_rows: pl.Series) -> pl.Series:
        """The raw text of the given records, read again from the file (only conflicting
        duplicates need it: other quarantined rows take theirs from their batch)."""
        wanted = pl.DataFrame({"source_row": source_rows.cast(pl.Int64)})
        found = []
        for batch in self._batches_with(wanted["source_row"]):
            mine = batch.join(wanted, on="source_row", how="semi")
            if mine.height:
                found.append(mine.select("source_row", raw_text=raw_text_of(mine)))
        found_frame = pl.concat(found) if found else pl.DataFrame(schema={"source_row": pl.Int64, "raw_text": pl.Utf8})
        return wanted.join(found_frame, on="source_row", how="left", maintain_order="left")["raw_text"]

    def _batches_with(self, rows: pl.Series) -> Iterator[pl.DataFrame]:
        if self.format == "jsonl":  # a line is its raw text: no need to decode the file again
            yield from self._read(_jsonl_lines(self.file))
            return
        if self.format != "parquet":
            yield from self.batches()
            return
        _check_unchanged(self.file)
        for mine, cells in _parquet_rows(self.file, rows.unique().sort()):
            cells, _ = _binary_as_text(cells)
            yield cells.select(_raw_record(cells)).with_columns(source_row=mine)


def raw_text_of(records: pl.DataFrame) -> pl.Series:
    """Raw text of decoded records: the `raw_text` column, or the `raw_record` cells as a JSON object."""
    if "raw_text" in records.columns:
        return records["raw_text"]
    cells = records["raw_record"].struct.unnest()
    return cells.select(_json_object(cells)).to_series()


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


READ_BLOCK_BYTES = 4 * 1024 * 1024


def load_file(log: str, path: Path) -> InputFile:
    """The cheap up-front check of a file, before anything is written: it exists and is a file
    of a known format, its sha256 (one streaming pass), a gzip stream decompresses to its end
    (streamed, nothing kept), a Parquet footer reads. UnreadableInput when it fails; a file
    that fails later, while its batches are decoded, rolls the ingest transaction back."""
    kind = file_format(path)
    if kind is None:
        raise UnreadableInput(path, "unknown format (expected .jsonl, .ndjson, .csv, .parquet, or .gz of a text format)")
    digest = hashlib.sha256()
    try:
        stat = path.stat()
        with path.open("rb") as handle:
            while block := handle.read(READ_BLOCK_BYTES):
                digest.update(block)
    except FileNotFoundError:
        raise UnreadableInput(path, "no such file") from None
    except IsADirectoryError:
        raise UnreadableInput(path, "is a directory") from None
    except OSError as error:
        raise UnreadableInput(path, error.strerror or str(error)) from None
    file = InputFile(log=log, path=path, format=kind, sha256=digest.hexdigest(), size=stat.st_size,
                     mtime_ns=stat.st_mtime_ns)
    if not stat.st_size:  # an empty file is a valid log with no records, whatever its format
        return file
    if _is_gzip(path):
        try:
            with gzip.open(path, "rb") as stream:
                first = stream.read(READ_BLOCK_BYTES)
                tail = first[-4:]
                while block := stream.read(READ_BLOCK_BYTES):
                    tail = (tail + block)[-4:]
        except (OSError, EOFError, zlib.error) as error:
            raise UnreadableInput(path, f"not a valid gzip file ({error})") from None
        _check_text(path, first, tail)
    elif kind == "parquet":
        try:
            pq.ParquetFile(path).schema_arrow
        except Exception as error:
            raise _unreadable(file, error) from None
    else:
        with path.open("rb") as handle:
            start = handle.read(8)
            handle.seek(max(0, stat.st_size - 4))
            _check_text(path, start, handle.read(4))
    return file


# How a file of another format starts: a text log (JSON Lines, CSV) that starts so is not the
# format its name says (docs/inputs.md#unreadable-files). Parquet also ends with its magic.
OTHER_FORMATS = {b"PAR1": "Parquet", b"\x1f\x8b": "gzip-compressed", b"\x28\xb5\x2f\xfd": "zstd-compressed",
                 b"PK\x03\x04": "a zip archive"}


def _check_text(path: Path, start: bytes, end: bytes) -> None:
    """UnreadableInput when a text log's first bytes (and, for Parquet, last) are those of another format."""
    for magic, what in OTHER_FORMATS.items():
        if start.startswith(magic) and (magic != b"PAR1" or end.endswith(magic)):
            raise UnreadableInput(path, f"not the format its name says: the file is {what}")


def decode_file(file: InputFile, log: Log) -> FileSource:
    """The file as an ingest source: records are decoded lazily, batch by batch."""
    return FileSource(file, log)


def _unreadable(file: InputFile, error: Exception) -> UnreadableInput:
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return UnreadableInput(file.path, f"not a readable {file.format} file ({message[:200]})")


def _check_unchanged(file: InputFile) -> None:
    try:
        stat = file.path.stat()
    except OSError:
        stat = None
    if stat is None or (stat.st_size, stat.st_mtime_ns) != (file.size, file.mtime_ns):
        raise UnreadableInput(file.path, "the file changed while it was being ingested")


def _is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _text_blocks(file: InputFile, block_bytes: int, boundary) -> Iterator[bytes]:
    """The file's (decompressed) bytes in blocks of about `block_bytes` that end where
    `boundary(data)` says a record ends (an offset; 0: none yet); the byte order mark dropped."""
    if not file.size:
        return
    opener = gzip.open if _is_gzip(file.path) else open
    with opener(file.path, "rb") as stream:
        carry, first = b"", True
        while True:
            block = stream.read(block_bytes)
            if first:
                block, first = block.removeprefix(b"\xef\xbb\xbf"), False
            data = carry + block if carry else block
            if not block:
                if data:
                    yield data
                return
            cut = boundary(data)
            if cut <= 0:
                carry = data
                continue
            yield data[:cut]
            carry = data[cut:]


def _line_boundary(data: bytes) -> int:
    return data.rfind(b"\n") + 1


def _csv_boundary(data: bytes) -> int:
    """After the last line break outside quotes (an even number of quote characters before it)."""
    end = data.rfind(b"\n")
    if end < 0:
        return 0
    quotes = data.count(b'"', 0, end)
    while quotes % 2:
        previous = data.rfind(b"\n", 0, end)
        if previous < 0:
            return 0
        quotes -= data.count(b'"', previous, end)
        end = previous
    return end + 1


def _first_record_end(data: bytes) -> int:
    """End of the first CSV record (the header), line break included; len(data) when none."""
    start = 0
    while True:
        end = data.find(b"\n", start)
        if end < 0:
            return len(data)
        if data.count(b'"', 0, end) % 2 == 0:
            return end + 1
        start = end + 1


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
BLANK_LINE = f"^[{JSON_WHITESPACE}]*$"
JSON_INTEGER = "^-?[0-9]+$"  # JSON text of an integer, within 64 bits or beyond
# Decoded a chunk at a time: memory stays bounded on big files. Each chunk's text is copied a
# few times while it is decoded, and chunks bigger than this are no faster.
JSONL_CHUNK_BYTES = 16 * 1024 * 1024
CSV_CHUNK_BYTES = 64 * 1024 * 1024
PARQUET_BATCH_ROWS = 500_000


def _jsonl_lines(file: InputFile) -> Iterator[pl.DataFrame]:
    """Non-blank lines of a JSON Lines file, a chunk at a time: `source_row` (physical line
    number), `raw_text` (the line without its line break and one "\\r" before it; invalid UTF-8
    bytes replaced by U+FFFD) and `invalid_utf8`."""
    first_line = 1
    for chunk in _text_blocks(file, JSONL_CHUNK_BYTES, _line_boundary):
        is_utf8 = _is_utf8(chunk)
        if not is_utf8:
            chunk = chunk.decode("utf-8", errors="replace").encode()
        # Polars splits at "\n" and drops one "\r" before it: no Python string per line.
        lines = pl.read_lines(chunk, name="raw_text", row_index_name="source_row", row_index_offset=first_line)
        first_line += lines.height
        lines = lines.filter(~pl.col("raw_text").str.contains(BLANK_LINE))  # a blank line is not a record
        yield lines.with_columns(pl.col("source_row").cast(pl.Int64),
                                 invalid_utf8=_utf8_error(pl.col("raw_text"), is_utf8))


def _is_utf8(content: bytes) -> bool:
    if content.isascii():  # far cheaper than decoding
        return True
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _jsonl_batches(file: InputFile, log: Log) -> Iterator[pl.DataFrame]:
    with duckdb.connect() as con:  # one connection for the whole file
        for lines in _jsonl_lines(file):
            if lines.height:
                yield _decoded_json_lines(lines, log, con)


def _decoded_json_lines(lines: pl.DataFrame, log: Log, con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One chunk of lines decoded: each field's text and whether its JSON type is the field's."""
    names = log.field_names
    values = _json_values(lines.select("raw_text"), log, con).select(
        "is_object", "extra_fields",
        pl.col("json_values").list.to_struct(fields=names),
        pl.col("escaped_texts").list.to_struct(fields=[f"{name}__escaped" for name in names]),
    ).unnest("json_values", "escaped_texts")
    return pl.concat([lines, values], how="horizontal").select(  # same rows in the same order
        "source_row", "extra_fields", "raw_text",
        pl.when(~pl.col("is_object")).then(pl.lit("malformed_json")).alias("record_error"),
        "invalid_utf8",
        *[column for field in log.fields for column in _field_columns(field)],
    )


def _json_values(lines: pl.DataFrame, log: Log, con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Per line, in the lines' order (a projection keeps DuckDB's row order): `is_object`;
    `json_values`, each contract field's JSON text (its first occurrence; null when absent);
    `escaped_texts`, the fields' unescaped text, only for a line that holds a backslash;
    `extra_fields`, the object without the contract's keys, or null when none is left.
    Each line is parsed by json_valid, json_extract and json_keys; json_extract_string and
    json_merge_patch run only on the rare lines that need them (json_merge_patch on an object
    with more keys than contract fields found: a key beyond the contract's, or one twice)."""
    names = log.field_names
    paths = "[" + ", ".join("'$.\"" + name + "\"'" for name in names) + "]"
    erase_contract = json.dumps({name: None for name in names})
    return con.sql(
        f"""
        with parsed as (
            select raw_text,  -- valid JSON whose first character after whitespace is "{{"
                   json_valid(raw_text) and regexp_matches(raw_text, '^[ \\t\\r]*\\{{') as is_object
            from lines
        ), members as (
            select raw_text, is_object,
                   case when is_object then json_extract(raw_text, {paths}) end as json_values,
                   case when is_object then len(json_keys(raw_text)) end as key_count
            from parsed
        )
        select is_object, json_values,
               case when is_object and contains(raw_text, '\\') then json_extract_string(raw_text, {paths}) end
                   as escaped_texts,
               case when key_count > list_count(json_values)
                    then nullif(json_merge_patch(raw_text, '{erase_contract}'), '{{}}') end as extra_fields
        from members
        """
    ).pl()


def _field_columns(field: Field) -> tuple[pl.Expr, pl.Expr]:
    """A field's text (a JSON string's unescaped text, another value's JSON text; null when
    absent or null) and `f__type_ok` (absent, or of the JSON type the field's kind takes)."""
    json_text = pl.col(field.name)
    absent = json_text.is_null() | (json_text == "null")
    is_string = json_text.str.starts_with('"')
    if field.kind == INT:  # an integer beyond 64 bits is still an integer (out of range)
        type_ok = json_text.str.contains(JSON_INTEGER)
    elif field.kind == BOOL:
        type_ok = json_text.is_in(["true", "false"])
    else:
        type_ok = is_string
    # A string without an escape holds no quote: its text is what is between its quotes.
    unquoted = pl.col(f"{field.name}__escaped").fill_null(json_text.str.strip_chars('"'))
    text = pl.when(is_string).then(unquoted).when(~absent).then(json_text)
    return text.alias(field.name), (absent | type_ok).alias(f"{field.name}__type_ok")


def _csv_batches(file: InputFile, log: Log) -> Iterator[pl.DataFrame]:
    """CSV records a chunk at a time; each chunk is parsed with the file's header row in front."""
    header, first_row = b"", 1
    for chunk in _text_blocks(file, CSV_CHUNK_BYTES, _csv_boundary):
        if not header:
            header = chunk[:_first_record_end(chunk)]
            chunk = chunk[len(header):]
        text, is_utf8 = _text_of(header + chunk)
        frame = pl.read_csv(
            text.encode("utf-8"), infer_schema=False, truncate_ragged_lines=True, empty_string_is_null=True,
            raise_if_empty=False,
        )
        if frame.height or first_row == 1:
            yield _csv_records(frame, log, first_row, is_utf8)
        first_row += frame.height


def _csv_records(frame: pl.DataFrame, log: Log, first_row: int, is_utf8: bool) -> pl.DataFrame:
    extra_names = [c for c in frame.columns if c not in log.field_names]
    columns = [
        pl.int_range(first_row, pl.len() + first_row, dtype=pl.Int64).alias("source_row"),
        pl.lit(None, pl.Utf8).alias("record_error"),
        _utf8_error(_json_object(frame), is_utf8).alias("invalid_utf8"),
        (pl.struct(extra_names).struct.json_encode() if extra_names else pl.lit(None, pl.Utf8)).alias("extra_fields"),
        _raw_record(frame),
    ]
    for field in log.fields:
        if field.name not in frame.columns:
            columns += [pl.lit(None, pl.Utf8).alias(field.name), pl.lit(True).alias(f"{field.name}__type_ok")]
            continue
        value = pl.col(field.name)
        if field.kind == INT:
            type_ok = value.str.contains(r"^[0-9]+$")  # ASCII digits (\d would take any script's)
        elif field.kind == BOOL:
            type_ok = value.is_in(["true", "false"])
        else:
            type_ok = pl.lit(True)
        # A quoted "" cell stays "" (a bare blank cell is already null): validation makes it null.
        columns += [value.alias(field.name), (value.is_null() | type_ok).alias(f"{field.name}__type_ok")]
    return frame.select(columns)


def _raw_record(frame: pl.DataFrame) -> pl.Expr:
    """The row's own cells, kept for the raw text of quarantined rows (built only for those)."""
    if not frame.width:
        return pl.lit("{}").alias("raw_text")
    return pl.struct(frame.columns).alias("raw_record")


def _parquet_batches(file: InputFile, log: Log) -> Iterator[pl.DataFrame]:
    for first_row, frame in _parquet_windows(file):
        yield _parquet_records(frame, log, first_row)


def _polars_reads_alike(path: Path) -> bool:
    """Whether Polars' own Parquet reader gives this file's columns the types pyarrow's does (then
    it gives the same values, for about a third of the CPU of pyarrow's reader plus the
    conversion: 1.1 instead of 2.8-3.0 CPU-s for 10M delivery attempts). A type either reader maps differently, or a file Polars cannot plan, is read with pyarrow."""
    try:
        expected = pl.from_arrow(pq.ParquetFile(path).schema_arrow.empty_table()).schema
        return pl.scan_parquet(path).collect_schema() == expected
    except Exception:
        return False


def _windows(total_rows: int) -> list[tuple[int, int]]:
    """(first row number, row count) of each PARQUET_BATCH_ROWS window of a file's rows."""
    return [(first, min(PARQUET_BATCH_ROWS, total_rows - first + 1))
            for first in range(1, total_rows + 1, PARQUET_BATCH_ROWS)]


def _parquet_windows(file: InputFile) -> Iterator[tuple[int, pl.DataFrame]]:
    """The file's rows PARQUET_BATCH_ROWS at a time, as (first row number, frame), in file order."""
    if not file.size:
        return
    parquet = pq.ParquetFile(file.path)
    if _polars_reads_alike(file.path):
        scan = pl.scan_parquet(file.path)
        for first, count in _windows(parquet.metadata.num_rows):
            yield first, scan.slice(first - 1, count).collect()
        return
    first = 1
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        yield first, pl.from_arrow(batch)
        first += batch.num_rows


def _parquet_rows(file: InputFile, rows: pl.Series) -> Iterator[tuple[pl.Series, pl.DataFrame]]:
    """(row numbers, their cells) for the given sorted row numbers, read again from the file; only
    the windows (Polars) or row groups (pyarrow) holding one of them are decoded."""
    parquet = pq.ParquetFile(file.path)
    if _polars_reads_alike(file.path):
        scan, windows = pl.scan_parquet(file.path), _windows(parquet.metadata.num_rows)
        cells = lambda first, count, mine: scan.slice(first - 1, count).collect()[mine - first]  # noqa: E731
    else:
        windows, first = [], 1
        for group in range(parquet.metadata.num_row_groups):
            windows.append((first, parquet.metadata.row_group(group).num_rows))
            first += windows[-1][1]
        groups = {first: group for group, (first, _) in enumerate(windows)}
        cells = lambda first, _, mine: pl.from_arrow(  # noqa: E731
            parquet.read_row_group(groups[first]).take((mine - first).to_arrow()))
    for first, count in windows:
        mine = rows.filter(rows.is_between(first, first + count - 1))
        if len(mine):
            yield mine, cells(first, count, mine)


def _binary_as_text(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series | None]:
    """The frame with its Binary columns as text (bytes that are not UTF-8 become U+FFFD), for the raw
    text and the extra fields, and per row whether one of those cells was not UTF-8 (None: no
    Binary column). The frame itself when it has no Binary column."""
    binary = [name for name, dtype in frame.schema.items() if dtype == pl.Binary]
    if not binary:
        return frame, None
    invalid = pl.Series("invalid_utf8", [False] * frame.height)
    for name in binary:
        try:
            text = frame[name].cast(pl.Utf8)  # the common case: all UTF-8, one vectorised cast
        except pl.exceptions.PolarsError:  # rare: decoded value by value, like a text file's bytes
            text = frame[name].map_elements(lambda value: value.decode("utf-8", errors="replace"),
                                            return_dtype=pl.Utf8)
            invalid = invalid | ~frame[name].map_elements(_is_utf8, return_dtype=pl.Boolean).fill_null(True)
        frame = frame.with_columns(text.alias(name))
    return frame, invalid


def _parquet_records(frame: pl.DataFrame, log: Log, first_row: int = 1) -> pl.DataFrame:
    extra_names = [c for c in frame.columns if c not in log.field_names]
    # Types are checked on the cells as read; the raw text and the extra fields take their text.
    as_text, invalid_utf8 = _binary_as_text(frame)
    extra_fields = _json_object(as_text.select(extra_names)) if extra_names else pl.lit(None, pl.Utf8)
    raw_record = _raw_record(as_text)
    if invalid_utf8 is not None:
        extra_fields, raw_record = (pl.lit(as_text.select(column).to_series()) for column in (extra_fields, raw_record))
    columns = [
        pl.int_range(first_row, pl.len() + first_row, dtype=pl.Int64).alias("source_row"),
        pl.lit(None, pl.Utf8).alias("record_error"),
        (pl.lit(False) if invalid_utf8 is None else pl.lit(invalid_utf8)).alias("invalid_utf8"),
        extra_fields.alias("extra_fields"),
        raw_record,  # "raw_record" (or "raw_text" "{}" for a row without cells)
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
