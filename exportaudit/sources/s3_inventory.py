"""Amazon S3 Inventory reports (docs/real-sources.md#s3-inventory-reports): finding manifests, integrity first, then rows.

Interface
---------
``find_manifests(specs, kind="inventory") -> list[Path]``
    Each spec is a ``manifest.json`` (any file name) or a directory searched recursively
    for files named ``manifest.json``. In a directory, a manifest that is clearly a
    Batch Operations completion report (it has ``Results`` and no ``files``) is skipped
    (and the other way round for ``kind="batch"``), so one tree may hold both. A path that
    does not exist raises ``UnreadableInput``; a directory without manifests gives none.

``check_reports(specs) -> list[InventoryReport]``
    Finds the manifests and checks **every** report before any row is read: the
    manifest's MD5 against ``manifest.checksum`` beside it (hex, surrounding whitespace
    ignored, any case), the manifest's fields, ORC refused, and every ``files[]`` entry
    found (``key`` resolved against the manifest's directory, then each ancestor; first
    hit wins) with the listed ``size`` and ``MD5checksum`` of its stored bytes. Any
    failure raises ``UnreadableInput(manifest_path, cause)``; the cause names the data
    file when one is at fault.

``read_file_rows(report, listed) -> pl.DataFrame`` / ``read_report_rows(report) -> pl.DataFrame``
    The rows of one data file (``listed``, one of ``report.files``) / every row of the report's data files, in file order then row order, with the
    columns of ``ROW_SCHEMA``: lineage (``report_id`` = sha256 of the manifest bytes,
    ``source_file`` = the ``files[].key``, ``source_row`` = 1-based physical line of the
    decompressed CSV / Parquet row number, ``report_time``), the inventory columns
    under their snake_case (Parquet) names, typed, ``extra_fields`` (JSON text of
    columns this reader does not know, or null), ``reason_codes`` / ``reason_details``
    (empty lists for accepted rows) and ``raw_text`` (the CSV line or the Parquet row as
    JSON, only for quarantined rows). The data files are hashed again while read: a file
    changed since ``check_reports`` raises ``UnreadableInput``.

``inventory_reports_frame(reports) -> pl.DataFrame``
    One row per report (``REPORT_SCHEMA``): report_id, manifest, source_bucket,
    report_time, file_format, data_files, all_versions (``VersionId`` in the schema),
    has_object_lock_mode / has_object_lock_retain_until_date /
    has_object_lock_legal_hold_status (the column is in the schema). This is what
    ``transforms.derived_custody`` needs besides the rows: a report covers its bucket
    even when it lists no row at all.

Typed values
------------
``is_latest``, ``is_delete_marker``, ``is_multipart_uploaded``: Boolean (``true``/``false``
in any case). ``last_modified_date``, ``object_lock_retain_until_date``,
``lifecycle_expiration_date``: Datetime(us, UTC). ``object_lock_mode``: ``GOVERNANCE`` /
``COMPLIANCE`` (any case read, upper-cased, as in the S3 API enum).
``object_lock_legal_hold_status``: ``ON`` / ``OFF`` (likewise). ``key``: form-decoded in CSV
(``+`` is a space, ``%XX`` UTF-8 bytes), raw in Parquet. ``version_id``: null when empty
(the null version in an all-versions report). Every other column is text as read
(``size`` included). An empty field is null.

Quarantine reasons (``reason_codes``; ``reason_details`` add ``:column``)
---------------------------------------------------------------------------
``wrong_column_count`` (CSV field count differs from ``fileSchema``; the row's values are
then all null: a shifted row has no reliable column), ``missing_field`` (empty Bucket or
Key), ``invalid_value`` (a boolean, date, lock mode or legal hold status not recognised).

Decisions where the documented contract is silent
----------------------------------
- CSV records are lines (``\\n``, an optional ``\\r`` removed); an empty line is skipped
  and not counted. Fields follow Python's ``csv`` module in its default, lenient mode
  (``""`` in a quoted field is a quote; text after a closing quote joins the field;
  quotes inside an unquoted field are literal). A quoted field cannot span lines
  (S3 writes keys URL-encoded, so no field holds a line break).
- CSV dates: RFC 3339 (``T``/``t`` or a space between date and time, ``Z``/``z`` or an
  offset, any fraction); a date without an offset is ``invalid_value``. Parquet dates:
  timestamps of any unit, with or without a time zone (UTC when none), integers as
  epoch milliseconds (Athena's ``bigint`` declaration), or text as in CSV.
- A data file is read as gzip when it starts with the gzip magic bytes, else as plain
  text; ``.parquet`` is decided by the manifest's ``fileFormat`` (``CSV`` / ``Parquet``,
  compared case-insensitively).
- ``creationTimestamp`` may be a string of digits (as documented) or a JSON integer.
- Parquet column names are matched after normalising to snake_case; a ``fileSchema``
  whose names cannot be parsed falls back to the first data file's own schema.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from exportaudit.readers import UnreadableInput
from exportaudit.sources.s3_uri import form_decoded_series
from transforms.timestamps import UTC_US, parsed_timestamps

TEXT, BOOLEAN, DATE, LOCK_MODE, HOLD = "text", "bool", "date", "lock_mode", "hold"

# Every inventory column this reader knows, in the documented fileSchema order, with its kind.
INVENTORY_COLUMNS: dict[str, str] = {
    "bucket": TEXT,
    "key": TEXT,
    "version_id": TEXT,
    "is_latest": BOOLEAN,
    "is_delete_marker": BOOLEAN,
    "size": TEXT,
    "last_modified_date": DATE,
    "e_tag": TEXT,
    "storage_class": TEXT,
    "is_multipart_uploaded": BOOLEAN,
    "replication_status": TEXT,
    "encryption_status": TEXT,
    "object_lock_retain_until_date": DATE,
    "object_lock_mode": LOCK_MODE,
    "object_lock_legal_hold_status": HOLD,
    "intelligent_tiering_access_tier": TEXT,
    "bucket_key_status": TEXT,
    "checksum_algorithm": TEXT,
    "object_access_control_list": TEXT,
    "object_owner": TEXT,
    "lifecycle_expiration_date": DATE,
}
_DTYPES = {TEXT: pl.Utf8, BOOLEAN: pl.Boolean, DATE: UTC_US, LOCK_MODE: pl.Utf8, HOLD: pl.Utf8}
LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")
HOLD_STATUSES = ("ON", "OFF")

ROW_SCHEMA: dict[str, pl.DataType] = {
    "report_id": pl.Utf8,
    "source_file": pl.Utf8,
    "source_row": pl.Int64,
    "report_time": UTC_US,
    **{name: _DTYPES[kind] for name, kind in INVENTORY_COLUMNS.items()},
    "extra_fields": pl.Utf8,
    "reason_codes": pl.List(pl.Utf8),
    "reason_details": pl.List(pl.Utf8),
    "raw_text": pl.Utf8,
}
REPORT_SCHEMA: dict[str, pl.DataType] = {
    "report_id": pl.Utf8,
    "manifest": pl.Utf8,
    "source_bucket": pl.Utf8,
    "report_time": UTC_US,
    "file_format": pl.Utf8,
    "data_files": pl.Int64,
    "all_versions": pl.Boolean,
    "has_object_lock_mode": pl.Boolean,
    "has_object_lock_retain_until_date": pl.Boolean,
    "has_object_lock_legal_hold_status": pl.Boolean,
}
QUARANTINE_REASONS = {
    "wrong_column_count": "the CSV row's field count differs from the manifest's fileSchema",
    "missing_field": "Bucket or Key is empty",
    "invalid_value": "a boolean, date, lock mode or legal hold status is not recognised",
}


# ---------------------------------------------------------------------------------------------
# Files named by a manifest (shared with s3_batch)


@dataclass(frozen=True)
class ListedFile:
    """A data file listed by a manifest, as found and checked."""
    key: str  # as listed (files[].key / Results[].Key)
    path: Path  # where it was found
    size: int
    md5: str  # hex of the stored bytes
    sha256: str


def _digests(path: Path) -> tuple[int, str, str]:
    md5, sha = hashlib.md5(), hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            size += len(block)
            md5.update(block)
            sha.update(block)
    return size, md5.hexdigest(), sha.hexdigest()


def resolve_listed_file(manifest_path: Path, key: str) -> Path | None:
    """``key`` resolved against the manifest's directory, then each of its ancestors; first hit."""
    relative = key.lstrip("/")
    if not relative:
        return None
    directory = manifest_path.absolute().parent
    for base in (directory, *directory.parents):
        candidate = base / relative
        if candidate.is_file():
            return candidate
    return None


def checked_listed_file(manifest_path: Path, key: str, md5: str, size: int | None) -> ListedFile:
    """The listed file found, with its size and MD5 as listed; else UnreadableInput(manifest)."""
    path = resolve_listed_file(manifest_path, key)
    if path is None:
        raise UnreadableInput(manifest_path, f"listed data file {key!r} was not found beside the manifest "
                                             "or under any of its parent directories")
    try:
        actual_size, actual_md5, sha256 = _digests(path)
    except OSError as error:
        raise UnreadableInput(manifest_path, f"listed data file {key!r} cannot be read "
                                             f"({error.strerror or error})") from None
    if size is not None and actual_size != size:
        raise UnreadableInput(manifest_path, f"listed data file {key!r} has {actual_size} bytes, "
                                             f"the manifest lists {size}: a partial or altered report")
    if actual_md5 != md5.strip().lower():
        raise UnreadableInput(manifest_path, f"MD5 of listed data file {key!r} ({actual_md5}) differs from "
                                             f"the manifest's ({md5.strip()}): a partial or altered report")
    _check_gzip(manifest_path, key, path)
    return ListedFile(key=key, path=path, size=actual_size, md5=actual_md5, sha256=sha256)


def _check_gzip(manifest_path: Path, key: str, path: Path) -> None:
    """A gzip-compressed listed file decompresses to its end (streamed, nothing kept), so a file
    that would fail when its rows are read stops the run before anything is written."""
    with path.open("rb") as handle:
        if handle.read(2) != b"\x1f\x8b":
            return
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(4 * 1024 * 1024):
                pass
    except (OSError, EOFError, zlib.error) as error:
        raise UnreadableInput(manifest_path, f"listed data file {key!r} is not valid gzip ({error})") from None


def read_listed_file(manifest_path: Path, listed: ListedFile) -> bytes:
    """The stored bytes of a checked file; UnreadableInput when they changed since the check."""
    try:
        data = listed.path.read_bytes()
    except OSError as error:
        raise UnreadableInput(manifest_path, f"listed data file {listed.key!r} cannot be read "
                                             f"({error.strerror or error})") from None
    if hashlib.md5(data).hexdigest() != listed.md5:
        raise UnreadableInput(manifest_path, f"listed data file {listed.key!r} changed after its integrity check")
    return data


def maybe_gunzip(manifest_path: Path, key: str, data: bytes) -> bytes:
    if not data.startswith(b"\x1f\x8b"):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise UnreadableInput(manifest_path, f"listed data file {key!r} is not valid gzip ({error})") from None


def _manifest_kind(path: Path) -> str | None:
    """"inventory", "batch" or None (unreadable / neither): decides only what a directory search skips."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    if "Results" in document and "files" not in document:
        return "batch"
    if "files" in document and "Results" not in document:
        return "inventory"
    return None


def find_manifests(specs: Iterable[str | Path], kind: str = "inventory") -> list[Path]:
    """Manifests named by each spec (a file, or a directory searched recursively), in order."""
    found: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            for candidate in sorted(p for p in path.rglob("manifest.json") if p.is_file()):
                other = _manifest_kind(candidate)
                if other is None or other == kind:
                    found.append(candidate)
        elif path.is_file():
            found.append(path)
        else:
            raise UnreadableInput(path, "no such file or directory")
    unique: list[Path] = []
    for path in found:  # the same manifest named twice is read once
        if path.absolute() not in {p.absolute() for p in unique}:
            unique.append(path)
    return unique


def read_manifest(path: Path) -> tuple[bytes, object | None]:
    """The manifest's bytes and its parsed JSON (None when it is not JSON)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UnreadableInput(path, f"cannot read the manifest ({error.strerror or error})") from None
    try:
        return data, json.loads(data)
    except ValueError:
        return data, None


# ---------------------------------------------------------------------------------------------
# CSV fields, vectorised (the lenient reading of Python's csv module, line by line)

# One field and its delimiter, on a line with a "," appended (so every match is non-empty):
# a quoted field (text after its closing quote joins it), an unterminated quoted field (to
# the end of the line), an unquoted field (quotes inside are literal), an empty field.
_FIELD_TOKEN = r'"(?:[^"]|"")*"(?:[^,"][^,]*)?,|"(?:[^"]|"")*$|[^,"][^,]*,|,'


def _field_value(token: pl.Expr) -> pl.Expr:
    """The value of one field token (general path: any quoting)."""
    closed = token.str.extract_groups(r'^"((?:[^"]|"")*)"([^,]*),$')
    closed_value = closed.struct.field("1").str.replace_all('""', '"', literal=True) + closed.struct.field("2")
    unterminated = token.str.slice(1).str.strip_suffix(",").str.replace_all('""', '"', literal=True)
    return (
        pl.when(token.str.starts_with('"'))
        .then(pl.coalesce(closed_value, unterminated))
        .otherwise(token.str.strip_suffix(","))
    )


def csv_field_lists(lines: pl.Series) -> pl.Series:
    """List[Utf8] of each CSV line's field values (RFC 4180 quoting, lenient like Python's csv).

    Tokens are found by one regex over all lines, then valued flat: the common tokens (quoted
    without inner quotes, or unquoted without quotes) by slicing, the rest by the general path."""
    flat = (
        pl.DataFrame({"line": lines}).with_row_index("__row")
        .select("__row", token=(pl.col("line") + pl.lit(",")).str.extract_all(_FIELD_TOKEN))
        .explode("token")
    )
    token = pl.col("token")
    fast = (
        pl.when(token.str.contains(r'^"[^"]*",$')).then(token.str.slice(1, token.str.len_chars() - 3))
        .when(~token.str.contains('"', literal=True)).then(token.str.strip_suffix(","))
    )
    flat = flat.with_columns(value=fast)
    rest = flat["value"].is_null() & flat["token"].is_not_null()
    rows = rest.arg_true()
    if len(rows):
        general = flat.select(pl.col("token").gather(rows)).select(_field_value(pl.col("token"))).to_series()
        flat = flat.with_columns(value=flat["value"].scatter(rows, general))
    return (
        flat.group_by("__row", maintain_order=True).agg(pl.col("value"))
        .get_column("value").alias(lines.name)
    )


def csv_lines(text: str) -> pl.DataFrame:
    """Non-blank lines of a text (``source_row`` = 1-based physical line, ``line``): a line of only
    spaces and tabs is blank too, skipped like an empty one."""
    frame = pl.DataFrame({"line": [text]}, schema={"line": pl.Utf8})
    return (
        frame.select(pl.col("line").str.split("\n")).explode("line")
        .with_row_index("source_row", offset=1)
        .with_columns(pl.col("source_row").cast(pl.Int64), pl.col("line").str.strip_suffix("\r"))
        .filter(pl.col("line").str.strip_chars(" \t\r") != "")
    )


def decoded_text(data: bytes) -> str:
    return data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------------
# Inventory manifests


@dataclass(frozen=True)
class InventoryReport:
    manifest_path: Path
    report_id: str  # sha256 of the manifest's bytes (a report's identity, docs/real-sources.md)
    source_bucket: str
    report_time: datetime  # creationTimestamp, UTC
    file_format: str  # "CSV" or "Parquet"
    schema_names: tuple[str, ...]  # fileSchema column names as written (CSV), or as parsed (Parquet)
    columns: tuple[str, ...]  # the same, normalised to snake_case
    files: tuple[ListedFile, ...]

    @property
    def all_versions(self) -> bool:
        """A report without VersionId in its schema lists current versions only."""
        return "version_id" in self.columns

    def has(self, column: str) -> bool:
        return column in self.columns


def snake_case(name: str) -> str:
    """``ObjectLockRetainUntilDate`` -> ``object_lock_retain_until_date``; ``ETag`` -> ``e_tag``."""
    name = name.strip()
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return re.sub(r"[\s\-]+", "_", name).lower()


def _parquet_schema_names(file_schema: str) -> list[str]:
    return re.findall(r"(?:required|optional|repeated)\s+\w+\s+([A-Za-z_][A-Za-z0-9_]*)", file_schema)


def _report_time(manifest_path: Path, value: object) -> datetime:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not re.fullmatch(r"[0-9]+", str(value).strip()):
        raise UnreadableInput(manifest_path, "creationTimestamp is missing or not epoch milliseconds")
    millis = int(str(value).strip())
    try:
        return datetime.fromtimestamp(millis // 1000, tz=timezone.utc).replace(microsecond=(millis % 1000) * 1000)
    except (OverflowError, OSError, ValueError):
        raise UnreadableInput(manifest_path, "creationTimestamp is out of range") from None


def check_report(manifest_path: Path) -> InventoryReport:
    """One inventory report checked as described in the module docstring."""
    data, document = read_manifest(manifest_path)
    if isinstance(document, dict) and str(document.get("fileFormat", "")).strip().upper() == "ORC":
        raise UnreadableInput(manifest_path, "ORC inventory reports are not supported: configure the S3 Inventory "
                                             "to write CSV or Parquet")
    checksum_path = manifest_path.parent / "manifest.checksum"
    try:
        expected = checksum_path.read_bytes().decode("ascii", errors="replace").strip().lower()
    except FileNotFoundError:
        raise UnreadableInput(manifest_path, "manifest.checksum is missing beside the manifest: "
                                             "the report is incomplete") from None
    except OSError as error:
        raise UnreadableInput(manifest_path, f"cannot read manifest.checksum ({error.strerror or error})") from None
    actual = hashlib.md5(data).hexdigest()
    if actual != expected:
        raise UnreadableInput(manifest_path, f"MD5 of the manifest ({actual}) differs from manifest.checksum "
                                             f"({expected[:40]}): a partial or altered report")
    if not isinstance(document, dict):
        raise UnreadableInput(manifest_path, "the manifest is not a JSON object")
    source_bucket = document.get("sourceBucket")
    if not isinstance(source_bucket, str) or not source_bucket:
        raise UnreadableInput(manifest_path, "sourceBucket is missing from the manifest")
    report_time = _report_time(manifest_path, document.get("creationTimestamp"))
    file_format = str(document.get("fileFormat", "")).strip()
    formats = {"csv": "CSV", "parquet": "Parquet"}
    if file_format.lower() not in formats:
        raise UnreadableInput(manifest_path, f"unsupported fileFormat {file_format!r}: configure the S3 Inventory "
                                             "to write CSV or Parquet")
    file_format = formats[file_format.lower()]
    file_schema = document.get("fileSchema")
    if not isinstance(file_schema, str) or not file_schema.strip():
        raise UnreadableInput(manifest_path, "fileSchema is missing from the manifest")
    entries = document.get("files")
    if not isinstance(entries, list):
        raise UnreadableInput(manifest_path, "files is missing from the manifest")
    files = []
    for index, entry in enumerate(entries):
        key = entry.get("key") if isinstance(entry, dict) else None
        md5 = entry.get("MD5checksum") if isinstance(entry, dict) else None
        size = entry.get("size") if isinstance(entry, dict) else None
        if not isinstance(key, str) or not isinstance(md5, str) or isinstance(size, bool) or not isinstance(size, int):
            raise UnreadableInput(manifest_path, f"files[{index}] lacks a key, a size or an MD5checksum")
        files.append(checked_listed_file(manifest_path, key, md5, size))
    if file_format == "CSV":
        names = [name.strip() for name in file_schema.split(",")]
    else:
        # Every data file's footer reads (before anything is written); the first one's names the
        # columns when the fileSchema does not.
        schemas = [_parquet_schema(manifest_path, listed) for listed in files]
        names = _parquet_schema_names(file_schema) or (list(schemas[0]) if schemas else [])
    return InventoryReport(
        manifest_path=manifest_path, report_id=hashlib.sha256(data).hexdigest(), source_bucket=source_bucket,
        report_time=report_time, file_format=file_format, schema_names=tuple(names),
        columns=tuple(snake_case(n) for n in names), files=tuple(files),
    )


def _parquet_schema(manifest_path: Path, listed: ListedFile) -> pl.Schema:
    try:
        return pl.read_parquet_schema(listed.path)
    except Exception as error:  # noqa: BLE001 - the reader's message names the problem
        message = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise UnreadableInput(manifest_path, f"listed data file {listed.key!r} is not readable Parquet "
                                             f"({message})") from None


def check_reports(specs: Sequence[str | Path]) -> list[InventoryReport]:
    """Every report named by the specs, all checked before any row is read."""
    return [check_report(path) for path in find_manifests(specs, kind="inventory")]


def inventory_reports_frame(reports: Sequence[InventoryReport]) -> pl.DataFrame:
    return pl.DataFrame(
        [{
            "report_id": r.report_id, "manifest": str(r.manifest_path), "source_bucket": r.source_bucket,
            "report_time": r.report_time, "file_format": r.file_format, "data_files": len(r.files),
            "all_versions": r.all_versions, "has_object_lock_mode": r.has("object_lock_mode"),
            "has_object_lock_retain_until_date": r.has("object_lock_retain_until_date"),
            "has_object_lock_legal_hold_status": r.has("object_lock_legal_hold_status"),
        } for r in reports],
        schema=REPORT_SCHEMA,
    )


# ---------------------------------------------------------------------------------------------
# Rows


def rfc3339_instants(text: pl.Series) -> pl.Series:
    """UTC instants of RFC 3339 texts (``t``/space separators and ``z`` accepted); null if invalid."""
    normal = text.str.replace(r"^(\d{4}-\d{2}-\d{2})[ tT]", "${1}T").str.replace(r"z$", "Z")
    return parsed_timestamps(normal)


def _typed_column(frame: pl.DataFrame, name: str, kind: str) -> tuple[pl.Series, pl.Series]:
    """(typed values, invalid flags) of one inventory column, whatever its stored type."""
    if name not in frame.columns:
        return (pl.Series(name, [None] * frame.height, dtype=_DTYPES[kind]),
                pl.Series([False] * frame.height, dtype=pl.Boolean))
    column = frame[name]
    dtype = column.dtype
    if kind == BOOLEAN and dtype == pl.Boolean:
        return column, column.is_null() & False
    if kind == DATE and isinstance(dtype, pl.Datetime):
        typed = column.dt.replace_time_zone("UTC") if dtype.time_zone is None else column.dt.convert_time_zone("UTC")
        return typed.cast(UTC_US).alias(name), column.is_null() & False
    if kind == DATE and dtype == pl.Date:
        return column.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias(name), column.is_null() & False
    if kind == DATE and dtype.is_integer():
        typed = pl.select(pl.from_epoch(column.cast(pl.Int64), time_unit="ms")).to_series()
        return typed.dt.replace_time_zone("UTC").cast(UTC_US).alias(name), column.is_null() & False
    text = column.cast(pl.Utf8, strict=False) if dtype != pl.Utf8 else column
    text = pl.select(pl.when(text == "").then(None).otherwise(text)).to_series().alias(name)
    if kind == TEXT:
        return text, text.is_null() & False
    if kind == BOOLEAN:
        lowered = text.str.to_lowercase()
        typed = pl.select(pl.when(lowered == "true").then(True).when(lowered == "false").then(False)
                          .otherwise(None)).to_series().alias(name)
    elif kind == DATE:
        typed = rfc3339_instants(text).alias(name)
    else:
        allowed = LOCK_MODES if kind == LOCK_MODE else HOLD_STATUSES
        upper = text.str.to_uppercase()
        typed = pl.select(pl.when(upper.is_in(allowed)).then(upper).otherwise(None)).to_series().alias(name)
    return typed, (text.is_not_null() & typed.is_null())


def typed_rows(values: pl.DataFrame, lineage: pl.DataFrame, raw_text: pl.Series, wrong_count: pl.Series,
               csv: bool) -> pl.DataFrame:
    """The ROW_SCHEMA frame from per-column values (text for CSV, native for Parquet)."""
    height = values.height
    columns: dict[str, pl.Series] = {}
    invalid_flags: dict[str, pl.Series] = {}
    for name, kind in INVENTORY_COLUMNS.items():
        typed, invalid = _typed_column(values, name, kind)
        if name == "key" and csv:
            typed = form_decoded_series(typed)
        columns[name] = typed
        if kind != TEXT:
            invalid_flags[name] = invalid & ~wrong_count
    missing_flags = {name: (columns[name].is_null() | (columns[name] == "")) & ~wrong_count
                     for name in ("bucket", "key")}
    flags = pl.DataFrame({
        "__wrong": wrong_count,
        **{f"__missing_{name}": flag for name, flag in missing_flags.items()},
        **{f"__invalid_{name}": flag for name, flag in invalid_flags.items()},
    })
    details = [pl.when(pl.col("__wrong")).then(pl.lit("wrong_column_count"))]
    details += [pl.when(pl.col(f"__missing_{n}")).then(pl.lit(f"missing_field:{n}")) for n in missing_flags]
    details += [pl.when(pl.col(f"__invalid_{n}")).then(pl.lit(f"invalid_value:{n}")) for n in invalid_flags]
    any_missing = pl.any_horizontal([pl.col(f"__missing_{n}") for n in missing_flags])
    any_invalid = pl.any_horizontal([pl.col(f"__invalid_{n}") for n in invalid_flags])
    reasons = flags.select(
        reason_details=pl.concat_list(details).list.drop_nulls(),
        reason_codes=pl.concat_list(
            pl.when(pl.col("__wrong")).then(pl.lit("wrong_column_count")),
            pl.when(any_missing).then(pl.lit("missing_field")),
            pl.when(any_invalid).then(pl.lit("invalid_value")),
        ).list.drop_nulls(),
        quarantined=pl.col("__wrong") | any_missing | any_invalid,
    )
    extra_names = [c for c in values.columns if c not in INVENTORY_COLUMNS]
    if extra_names:
        extra = values.select(pl.struct([pl.col(c).cast(pl.Utf8, strict=False) for c in extra_names])
                              .struct.json_encode()).to_series()
    else:
        extra = pl.Series([None] * height, dtype=pl.Utf8)
    frame = pl.DataFrame([*lineage.get_columns(), *columns.values(), extra.alias("extra_fields"),
                          *reasons.get_columns(), raw_text.alias("raw_text")])
    frame = frame.with_columns(pl.when(pl.col("quarantined")).then(pl.col("raw_text")).alias("raw_text"))
    return frame.select([pl.col(name).cast(dtype) for name, dtype in ROW_SCHEMA.items()])


def _csv_rows(report: InventoryReport, listed: ListedFile, data: bytes) -> pl.DataFrame:
    lines = csv_lines(decoded_text(data))
    if lines.height == 0:
        return pl.DataFrame(schema=ROW_SCHEMA)
    fields = lines.with_columns(fields=csv_field_lists(lines["line"]))
    width = len(report.columns)
    wrong = fields.select(pl.col("fields").list.len() != width).to_series()
    names: list[str] = []
    for i, name in enumerate(report.columns):  # a repeated name keeps its first column
        names.append(name if name not in names else f"{name}__{i + 1}")
    # A wrong-count row's values are unreliable (its columns may be shifted): all null.
    positional = fields.select(
        pl.when(pl.lit(wrong)).then(None).otherwise(pl.col("fields").list.get(i, null_on_oob=True)).alias(name)
        for i, name in enumerate(names)
    ) if width else pl.DataFrame(height=fields.height)
    lineage = pl.DataFrame({
        "report_id": pl.Series([report.report_id] * fields.height, dtype=pl.Utf8),
        "source_file": pl.Series([listed.key] * fields.height, dtype=pl.Utf8),
        "source_row": fields["source_row"],
        "report_time": pl.Series([report.report_time] * fields.height, dtype=UTC_US),
    })
    return typed_rows(positional, lineage, fields["line"], wrong, csv=True)


def _parquet_rows(report: InventoryReport, listed: ListedFile, data: bytes) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception as error:  # noqa: BLE001 - the reader's message names the problem
        message = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise UnreadableInput(report.manifest_path, f"listed data file {listed.key!r} is not readable Parquet "
                                                    f"({message})") from None
    if frame.height == 0:
        return pl.DataFrame(schema=ROW_SCHEMA)
    renamed: dict[str, str] = {}
    for name in frame.columns:
        target = snake_case(name)
        if target not in renamed.values():
            renamed[name] = target
    values = frame.select([pl.col(old).alias(new) for old, new in renamed.items()])
    cells = [pl.col(c).cast(pl.Utf8, strict=False) if (dt.is_temporal() or dt == pl.Binary or dt.is_nested()
                                                         or isinstance(dt, (pl.Categorical, pl.Enum)))
             else pl.col(c) for c, dt in frame.schema.items()]
    raw_text = frame.select(pl.struct(cells).struct.json_encode()).to_series() if frame.width else \
        pl.Series([None] * frame.height, dtype=pl.Utf8)
    lineage = pl.DataFrame({
        "report_id": pl.Series([report.report_id] * frame.height, dtype=pl.Utf8),
        "source_file": pl.Series([listed.key] * frame.height, dtype=pl.Utf8),
        "source_row": pl.Series(range(1, frame.height + 1), dtype=pl.Int64),
        "report_time": pl.Series([report.report_time] * frame.height, dtype=UTC_US),
    })
    return typed_rows(values, lineage, raw_text, pl.Series([False] * frame.height, dtype=pl.Boolean), csv=False)


def read_file_rows(report: InventoryReport, listed: ListedFile) -> pl.DataFrame:
    """The rows of one data file of a checked report (ROW_SCHEMA): ingest streams a file at a time."""
    data = read_listed_file(report.manifest_path, listed)
    if report.file_format == "CSV":
        return _csv_rows(report, listed, maybe_gunzip(report.manifest_path, listed.key, data))
    return _parquet_rows(report, listed, data)


def read_report_rows(report: InventoryReport) -> pl.DataFrame:
    """Every row of a checked report (ROW_SCHEMA), quarantine reasons included."""
    parts = [read_file_rows(report, listed) for listed in report.files]
    if not parts:
        return pl.DataFrame(schema=ROW_SCHEMA)
    return pl.concat(parts, how="vertical")
