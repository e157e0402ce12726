"""Svix message attempts read as delivery attempts (docs/real-sources.md#svix-message-attempts).

Interface
---------
``svix_sources(specs) -> list[SvixSource]``
    Every attempt file named by the specs as an ingest source of the ``deliveries`` log (the
    ``InputSource`` protocol of exportaudit.ingest, like ``exportaudit.readers.FileSource``):
    ``log``, ``format`` (``svix``), ``sha256``, ``path``, ``name``, ``batches()`` (the decoded
    frame below, with ``raw_text`` and a ``source_reasons`` list column: the Svix reasons as
    ``code:detail`` texts, e.g. ``missing_field:msg.eventId``, to be added to the record's
    reasons and to quarantine it), ``records`` and ``raw_texts(source_rows)``. Files are read
    and decoded when the source is made, so an unreadable one stops the run before anything is
    written (Svix pages are small: a page holds at most 250 attempts).

``find_attempt_files(specs) -> list[Path]``
    Each spec is a file (any name) or a directory searched recursively for ``.json``,
    ``.jsonl`` and ``.ndjson`` files (sorted by path). A missing path raises
    ``UnreadableInput``.

``load_attempt_file(path) -> SvixFile`` (bytes, sha256; gzip magic decompressed) and
``decode_attempts(file) -> pl.DataFrame``
    The attempts of one file in the **decoded frame shape of exportaudit.readers** for the
    ``deliveries`` log, so that ``transforms.record_validation.checked_records(frame,
    contract.DELIVERIES)`` (after the usual redaction of ``endpoint`` and
    ``extra_fields``) types and validates them like any delivery record:
    ``source_row``, ``record_error`` (``malformed_json`` or null), ``invalid_utf8``,
    ``extra_fields`` (the attempt's other keys as JSON: status, statusText, response,
    responseStatusCode, responseDurationMs, triggerType, msg, ...), and for every
    contract field ``f`` its text ``f`` and ``f__type_ok``. Values stay text, as the JSON
    Lines decoder gives them (e.g. ``http_status`` = ``"404"``), so the contract's checks
    apply unchanged. Added columns:
    ``source_item`` (1-based index of the attempt inside a page or array held by one JSON
    line; null otherwise), ``raw_text`` (the attempt's JSON text, for quarantine: not yet
    redacted), and ``svix_reason_codes`` / ``svix_reason_details`` (List[Utf8]) with the
    two Svix reasons: ``missing_field`` (``missing_field:msg.eventId``) and
    ``attempt_not_final`` (``attempt_not_final:status``). **A record with a Svix reason
    must be quarantined** with those codes; the contract's own reasons for the same record
    (e.g. ``missing_required_field:export_id`` or ``:outcome``, which follow from the
    nulls the mapping leaves) may be added by the caller.

Mapping (docs/real-sources.md#svix-message-attempts table)
-------------------------
attempt_id = ``id``; export_id = ``msg.eventId``; destination = ``endpointId``;
connector_kind = ``svix``; connector_visibility = null (public); attempted_at =
``timestamp``; outcome: ``statusText`` when present (``success`` -> delivered, ``fail``
-> failed, anything else not final), else ``status`` 0 -> delivered, 2 -> failed, any
other value (1, 3, 4, absent, ...) not final; http_status = ``responseStatusCode`` when an
integer in 100-599; error_code null when there is an HTTP status, for
``responseStatusCode`` 0 from the ``response`` text matched case-insensitively in this
order, first match wins: ``timed out`` -> timeout, ``resolving name`` / ``dns`` ->
dns_failure, ``refused`` -> connection_refused, ``reset`` -> connection_reset, ``tls`` /
``certificate`` -> tls_handshake_failed, else transport_error; any other
``responseStatusCode`` (negative, 1-99, >= 600, not an integer, absent) ->
transport_error. retry_after_seconds = null; idempotency_key = ``msgId``; endpoint =
``url`` (to be redacted by exportaudit.redact like every endpoint).

File shapes and row numbers
---------------------------
A file whose whole text is one JSON value is a document: a list response (``data``
array), an array of attempts, or one attempt object; ``source_row`` is the attempt's
1-based position in the ``data`` array / the array. Otherwise the file is JSON Lines:
``source_row`` is the physical line number; a line holding a list response (or an
array) is expanded, its attempts numbered by ``source_item``. A blank line is not a
record; a line that is not JSON, or an element that is not an object, is a
``malformed_json`` record. A file none of whose lines is JSON raises UnreadableInput.
A ``statusText`` or ``msg`` that is JSON null counts as absent; an empty ``eventId`` is
missing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from exportaudit.contract import DELIVERIES
from exportaudit.readers import UnreadableInput

CONNECTOR_KIND = "svix"
SUFFIXES = (".json", ".jsonl", ".ndjson")
# (error_code, response-text fragments), in docs/real-sources.md#svix-message-attempts order; matched case-insensitively.
TRANSPORT_ERRORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("timeout", ("timed out",)),
    ("dns_failure", ("resolving name", "dns")),
    ("connection_refused", ("refused",)),
    ("connection_reset", ("reset",)),
    ("tls_handshake_failed", ("tls", "certificate")),
)
OTHER_TRANSPORT_ERROR = "transport_error"
QUARANTINE_REASONS = {
    "missing_field": "the Svix attempt has no msg.eventId (list attempts with with_msg=true)",
    "attempt_not_final": "the Svix attempt is pending, sending or canceled; a later listing brings its final state",
}
# Attempt keys consumed by the mapping; every other key is kept in extra_fields.
_CONSUMED = ("id", "endpointId", "timestamp", "msgId", "url")


@dataclass
class SvixFile:
    path: Path
    sha256: str  # of the stored bytes
    content: bytes  # decompressed


def find_attempt_files(specs: Sequence[str | Path]) -> list[Path]:
    found: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise UnreadableInput(path, "no such file or directory")
    return found


def load_attempt_file(path: Path) -> SvixFile:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UnreadableInput(path, error.strerror or str(error)) from None
    content = data
    if data.startswith(b"\x1f\x8b"):
        try:
            content = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise UnreadableInput(path, f"not a valid gzip file ({error})") from None
    return SvixFile(path=path, sha256=hashlib.sha256(data).hexdigest(), content=content)


def _text(content: bytes) -> tuple[str, bool]:
    content = content.removeprefix(b"\xef\xbb\xbf")
    try:
        return content.decode("utf-8"), True
    except UnicodeDecodeError:
        return content.decode("utf-8", errors="replace"), False


def _units(text: str) -> pl.DataFrame:
    """The JSON units of a file: the whole text when it is one JSON value, else its lines."""
    whole = pl.DataFrame({"source_row": [None], "raw_text": [text]}, schema={"source_row": pl.Int64,
                                                                             "raw_text": pl.Utf8})
    with duckdb.connect() as con:
        con.register("whole", whole)
        is_document = con.sql("select json_valid(raw_text) from whole").fetchall()[0][0]
    if is_document:
        return whole
    lines = (
        pl.DataFrame({"raw_text": [text]}).select(pl.col("raw_text").str.split("\n")).explode("raw_text")
        .with_row_index("source_row", offset=1)
        .with_columns(pl.col("source_row").cast(pl.Int64), pl.col("raw_text").str.strip_suffix("\r"))
        .filter(pl.col("raw_text").str.strip_chars(" \t\r") != "")
    )
    return lines


_ATTEMPTS_SQL = """
with units as (
    select source_row, raw_text, json_valid(raw_text) as ok from units_frame
), typed as (
    select *, case when ok then json_type(raw_text) end as jt,
              case when ok then json_type(raw_text, '$.data') end as data_t
    from units
), containers as (
    select source_row, raw_text, ok, jt,
           case when jt = 'OBJECT' and data_t = 'ARRAY' then json_extract(raw_text, '$.data[*]')
                when jt = 'ARRAY' then json_extract(raw_text, '$[*]')
                when jt = 'OBJECT' then [raw_text::JSON]
           end as items,
           coalesce(jt = 'ARRAY' or (jt = 'OBJECT' and data_t = 'ARRAY'), false) as expanded
    from typed
), attempts as (
    select source_row, expanded, unnest(items)::VARCHAR as attempt, generate_subscripts(items, 1) as item
    from containers where items is not null
    union all
    select source_row, false, raw_text, null from containers where items is null
)
select source_row, expanded, item, attempt,
       coalesce(case when json_valid(attempt) then json_type(attempt) = 'OBJECT' end, false) as is_object
from attempts
order by source_row nulls first, item
"""

_FIELDS_SQL = """
select *,
    json_type(attempt, '$.id') as id_t, attempt->>'$.id' as id_v,
    json_type(attempt, '$.msg.eventId') as event_t, attempt->>'$.msg.eventId' as event_v,
    json_type(attempt, '$.endpointId') as endpoint_id_t, attempt->>'$.endpointId' as endpoint_id_v,
    json_type(attempt, '$.timestamp') as timestamp_t, attempt->>'$.timestamp' as timestamp_v,
    json_type(attempt, '$.status') as status_t, attempt->>'$.status' as status_v,
    json_type(attempt, '$.statusText') as status_text_t, attempt->>'$.statusText' as status_text_v,
    json_type(attempt, '$.responseStatusCode') as code_t, attempt->>'$.responseStatusCode' as code_v,
    attempt->>'$.response' as response_v,
    json_type(attempt, '$.msgId') as msg_id_t, attempt->>'$.msgId' as msg_id_v,
    json_type(attempt, '$.url') as url_t, attempt->>'$.url' as url_v,
    nullif(json_merge_patch(attempt, '{erase}')::VARCHAR, '{{}}') as extra_fields
from attempts_frame where is_object
"""


def _present(json_type: pl.Expr) -> pl.Expr:
    return json_type.is_not_null() & (json_type != "NULL")


def _string_field(name: str) -> tuple[pl.Expr, pl.Expr]:
    """(text, type_ok) of a JSON field that maps to a string contract field."""
    json_type = pl.col(f"{name}_t")
    present = _present(json_type)
    return pl.when(present).then(pl.col(f"{name}_v")), (~present | (json_type == "VARCHAR"))


def _integer(name: str) -> pl.Expr:
    json_type = pl.col(f"{name}_t")
    return pl.when(json_type.is_in(["BIGINT", "UBIGINT"])).then(pl.col(f"{name}_v").cast(pl.Int64, strict=False))


def error_code_of_response(response: pl.Expr) -> pl.Expr:
    """docs/real-sources.md#svix-message-attempts's table over the response text (case-insensitive, table order, first match)."""
    lowered = response.str.to_lowercase()
    expr = None
    for code, fragments in TRANSPORT_ERRORS:
        matches = pl.any_horizontal([lowered.str.contains(f, literal=True).fill_null(False) for f in fragments])
        expr = pl.when(matches).then(pl.lit(code)) if expr is None else expr.when(matches).then(pl.lit(code))
    return expr.otherwise(pl.lit(OTHER_TRANSPORT_ERROR))


def delivery_fields(fields: pl.DataFrame) -> pl.DataFrame:
    """The mapping of docs/real-sources.md#svix-message-attempts over DuckDB-extracted attempt fields (pure Polars)."""
    status_text_present = _present(pl.col("status_text_t"))
    status = _integer("status")
    outcome = (
        pl.when(status_text_present).then(
            pl.when(pl.col("status_text_v") == "success").then(pl.lit("delivered"))
            .when(pl.col("status_text_v") == "fail").then(pl.lit("failed")))
        .when(status == 0).then(pl.lit("delivered"))
        .when(status == 2).then(pl.lit("failed"))
    )
    code = _integer("code")
    http_status = pl.when(code.is_between(100, 599)).then(code.cast(pl.Utf8))
    error_code = (
        pl.when(code.is_between(100, 599)).then(None)
        .when(code == 0).then(error_code_of_response(pl.col("response_v")))
        .otherwise(pl.lit(OTHER_TRANSPORT_ERROR))
    )
    event = pl.col("event_v")
    # absent, JSON null or an empty string; a non-string eventId is present (the contract calls it wrong_type)
    missing_event = ~_present(pl.col("event_t")) | ((pl.col("event_t") == "VARCHAR") & (event == ""))
    attempt_id, attempt_id_ok = _string_field("id")
    destination, destination_ok = _string_field("endpoint_id")
    attempted_at, attempted_at_ok = _string_field("timestamp")
    idempotency_key, idempotency_key_ok = _string_field("msg_id")
    endpoint, endpoint_ok = _string_field("url")
    export_id = pl.when(_present(pl.col("event_t"))).then(event)
    export_id_ok = ~_present(pl.col("event_t")) | (pl.col("event_t") == "VARCHAR")
    text_null = pl.lit(None, pl.Utf8)
    values = {
        "attempt_id": (attempt_id, attempt_id_ok),
        "export_id": (export_id, export_id_ok),
        "destination": (destination, destination_ok),
        "connector_kind": (pl.lit(CONNECTOR_KIND), pl.lit(True)),
        "connector_visibility": (text_null, pl.lit(True)),
        "attempted_at": (attempted_at, attempted_at_ok),
        "outcome": (outcome, pl.lit(True)),
        "http_status": (http_status, pl.lit(True)),
        "error_code": (error_code, pl.lit(True)),
        "retry_after_seconds": (text_null, pl.lit(True)),
        "idempotency_key": (idempotency_key, idempotency_key_ok),
        "endpoint": (endpoint, endpoint_ok),
    }
    assert tuple(values) == tuple(DELIVERIES.field_names)
    details = pl.concat_list(
        pl.when(missing_event).then(pl.lit("missing_field:msg.eventId")),
        pl.when(outcome.is_null()).then(pl.lit("attempt_not_final:status")),
    ).list.drop_nulls()
    columns = []
    for name, (value, type_ok) in values.items():
        columns += [value.cast(pl.Utf8).alias(name), type_ok.fill_null(True).alias(f"{name}__type_ok")]
    return fields.select(
        "source_row", "source_item", "raw_text", "extra_fields", *columns,
        svix_reason_details=details,
    ).with_columns(
        svix_reason_codes=pl.col("svix_reason_details").list.eval(pl.element().str.split(":").list.first()),
    )


DECODED_SCHEMA: dict[str, pl.DataType] = {
    "source_row": pl.Int64, "source_item": pl.Int64, "record_error": pl.Utf8, "invalid_utf8": pl.Boolean,
    "extra_fields": pl.Utf8,
    **{column: dtype for name in DELIVERIES.field_names
       for column, dtype in ((name, pl.Utf8), (f"{name}__type_ok", pl.Boolean))},
    "raw_text": pl.Utf8, "svix_reason_codes": pl.List(pl.Utf8), "svix_reason_details": pl.List(pl.Utf8),
}


def decode_attempts(file: SvixFile) -> pl.DataFrame:
    """The attempts of one file as decoded delivery records (DECODED_SCHEMA), in file order."""
    text, is_utf8 = _text(file.content)
    if not text.strip():
        return pl.DataFrame(schema=DECODED_SCHEMA)
    units = _units(text)
    erase = json.dumps({name: None for name in _CONSUMED})
    with duckdb.connect() as con:
        con.register("units_frame", units)
        attempts = con.sql(_ATTEMPTS_SQL).pl()
        if attempts.height and not attempts["is_object"].any() and not \
                con.sql("select bool_or(json_valid(raw_text)) from units_frame").fetchall()[0][0]:
            raise UnreadableInput(file.path, "not a JSON file (no line is JSON)")
        attempts = attempts.with_columns(
            source_row=pl.coalesce("source_row", "item", pl.lit(1, pl.Int64)),
            source_item=pl.when(pl.col("source_row").is_not_null() & pl.col("expanded")).then(pl.col("item")),
        ).with_row_index("__order")
        con.register("attempts_frame", attempts)
        fields = con.sql(_FIELDS_SQL.format(erase=erase)).pl()
    good = delivery_fields(fields.rename({"attempt": "raw_text"})).with_columns(
        record_error=pl.lit(None, pl.Utf8), __order=fields["__order"])
    bad = attempts.filter(~pl.col("is_object")).select(
        "__order", "source_row", "source_item", raw_text="attempt", record_error=pl.lit("malformed_json"),
        svix_reason_codes=pl.lit([], pl.List(pl.Utf8)), svix_reason_details=pl.lit([], pl.List(pl.Utf8)),
        **{f"{name}__type_ok": pl.lit(True) for name in DELIVERIES.field_names},
    )
    frame = pl.concat([good, bad], how="diagonal_relaxed").sort("__order")
    invalid_utf8 = pl.lit(False) if is_utf8 else pl.col("raw_text").str.contains("\ufffd", literal=True)
    frame = frame.with_columns(invalid_utf8=invalid_utf8.fill_null(False))
    return frame.select([pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
                         for name, dtype in DECODED_SCHEMA.items()])


def read_attempts(specs: Sequence[str | Path]) -> list[tuple[SvixFile, pl.DataFrame]]:
    """Every attempt file named by the specs, loaded and decoded (UnreadableInput on the first
    file that cannot be read)."""
    return [(file, decode_attempts(file)) for file in map(load_attempt_file, find_attempt_files(specs))]


class SvixSource:
    """One Svix attempts file as a source of delivery records (docs/real-sources.md#svix-message-attempts)."""

    format = "svix"

    def __init__(self, file: SvixFile):
        self.file, self.contract = file, DELIVERIES
        self.log, self.sha256, self.path, self.name = DELIVERIES.name, file.sha256, file.path, file.path.name
        self._decoded = decode_attempts(file)
        file.content = b""  # decoded: the bytes are no longer needed

    def batches(self):
        frame = self._decoded.rename({"svix_reason_details": "source_reasons"}).drop("svix_reason_codes")
        if frame.height:
            yield frame

    @property
    def records(self) -> pl.DataFrame:
        return self._decoded.drop("raw_text")

    def raw_texts(self, source_rows: pl.Series) -> pl.Series:
        """The attempt's JSON text for each given row; when a JSON line held several attempts (a
        page), the row names them all: their texts as one JSON array."""
        per_row = self._decoded.group_by("source_row", maintain_order=True).agg(
            raw_text=pl.when(pl.len() == 1).then(pl.col("raw_text").first())
            .otherwise(pl.lit("[") + pl.col("raw_text").str.join(",") + pl.lit("]")))
        wanted = pl.DataFrame({"source_row": source_rows.cast(pl.Int64)})
        return wanted.join(per_row, on="source_row", how="left", maintain_order="left")["raw_text"]


def svix_sources(specs: Sequence[str | Path]) -> list[SvixSource]:
    """Every attempt file named by the specs as a delivery source (UnreadableInput on the first file
    that cannot be read)."""
    return [SvixSource(load_attempt_file(path)) for path in find_attempt_files(specs)]
