"""Which archive references are S3 objects (docs/real-sources.md#s3-object-identity-of-archive-uris), and URL decoding, as Polars expressions.

Interface
---------
``s3_object_identity(archive_uri: pl.Expr) -> pl.Expr``
    A struct expression with three Utf8 fields ``s3_bucket``, ``s3_key``,
    ``s3_version_id``; all three are null when the URI names no S3 object.
    ``s3_identity_columns(archive_uri)`` returns the same as three named expressions,
    ready for ``frame.with_columns(*s3_identity_columns(pl.col("archive_uri")))``.
    Apply it to the archive_uri **before** redaction (redaction removes the query
    that holds the version id).

``archive_s3_identity(decoded: pl.DataFrame) -> pl.DataFrame``
    The three columns for a decoded batch of archive records (the readers' decoded shape:
    ``archive_uri`` as text, not yet redacted), one row per record, in order, ready to be
    carried beside the batch as three extra accepted columns. The values themselves go
    through the token rules of docs/security.md (one redaction for every kept string): S3
    Inventory and Batch rows are redacted the same way, so they still match.

``percent_decoded_series(text: pl.Series)`` / ``form_decoded_series(text: pl.Series)``
    ``%XX`` sequences decoded as UTF-8 bytes; ``form_decoded_series`` also reads ``+`` as a
    space (``urllib.parse.unquote_plus``), ``percent_decoded_series`` keeps ``+``
    (``urllib.parse.unquote``). A ``%`` not followed by two hex digits is kept as is.

Recognised forms (everything else gives three nulls)
----------------------------------------------------
- ``s3://BUCKET/KEY[?query][#fragment]``: KEY as written, no decoding.
- ``https://BUCKET.s3.amazonaws.com/KEY``, ``https://BUCKET.s3.REGION.amazonaws.com/KEY``,
  ``https://BUCKET.s3-REGION.amazonaws.com/KEY`` (virtual-hosted) and
  ``https://s3.amazonaws.com/BUCKET/KEY``, ``https://s3.REGION.amazonaws.com/BUCKET/KEY``
  (path style): KEY percent-decoded, ``+`` kept. REGION = two letters, one or more
  ``-word`` parts, ``-`` and a number (``eu-west-1``, ``us-gov-west-1``).
  So http, dual-stack, FIPS, accelerate, s3-global, website, s3-external-1, China
  (``amazonaws.com.cn``) and access-point hosts name no object.

Decisions where the documented contract is silent
----------------------------------
- The URI is split like ``urllib.parse.urlsplit``: the path ends at the first ``?`` or
  ``#``; the query ends at ``#``. Scheme and https host compare case-insensitively
  (the host is lowercased, as DNS is); user info (``user:pw@``) and a port are ignored.
- The version id is the value of the **first** ``versionId=`` query parameter (name
  compared exactly), percent-decoded with ``+`` kept; an empty value means no version id.
- **The null version** is the literal string ``"null"`` (``versionId=null``), which is how
  S3's API names it; an inventory row with an empty VersionId and a batch row with an
  empty or ``null`` VersionId are mapped to the same ``"null"`` when matched
  (transforms.derived_custody).
- The bucket must look like a bucket name (letters, digits, ``.``, ``_``, ``-``, first
  character a letter or digit); names ending in ``-s3alias`` or ``--op-s3`` are access
  point aliases (buckets may not end so) and name no object. An empty key names no object.
- Invalid UTF-8 after decoding: the decoder is DuckDB's ``url_decode`` over the whole
  column; the (never seen in practice: S3 keys are UTF-8) values it refuses are decoded
  like Python's ``unquote`` (invalid bytes become U+FFFD), once per distinct value.
"""

from __future__ import annotations

from urllib.parse import unquote, unquote_plus

import duckdb
import polars as pl

REGION = r"[a-z]{2}(?:-[a-z]+)+-[0-9]+"
_BUCKET = r"[A-Za-z0-9][A-Za-z0-9._\-]*"
_ACCESS_POINT_ALIAS = r"(?:-s3alias|--op-s3)$"
# scheme :// authority path ?query #fragment  (the urlsplit reading)
_URI = r"^([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)([^?#]*)(?:\?([^#]*))?(?:#.*)?$"
_VIRTUAL_HOST = r"^(" + _BUCKET + r")\.s3(?:\." + REGION + r"|-" + REGION + r")?\.amazonaws\.com$"
_PATH_STYLE_HOST = r"^s3(?:\." + REGION + r")?\.amazonaws\.com$"

IDENTITY_FIELDS = ("s3_bucket", "s3_key", "s3_version_id")
NULL_VERSION = "null"


# ---------------------------------------------------------------------------------------------
# URL decoding (vectorised: DuckDB's url_decode over the column, only rows that need it)


def _python_fallback(values: pl.Series, plus_as_space: bool) -> pl.Series:
    decode = unquote_plus if plus_as_space else unquote
    distinct = values.unique().drop_nulls().to_list()
    mapping = {v: decode(v, encoding="utf-8", errors="replace") for v in distinct}
    return values.replace_strict(mapping, default=None, return_dtype=pl.Utf8)


def _decoded_series(text: pl.Series, plus_as_space: bool) -> pl.Series:
    name = text.name
    text = text.cast(pl.Utf8)
    if plus_as_space:
        text = text.str.replace_all("+", " ", literal=True)
    has_escape = text.str.contains("%", literal=True).fill_null(False)
    rows = has_escape.arg_true()
    if len(rows) == 0:
        return text.alias(name)
    # url_decode keeps "+" (the plus-as-space step, when asked, happened above).
    todo = pl.DataFrame({"v": text.gather(rows)}).with_row_index("i")
    with duckdb.connect() as con:
        con.register("todo", todo)
        done = con.sql("select i, try(url_decode(v)) as d from todo order by i").pl()
    decoded = done["d"]
    failed = decoded.is_null().arg_true()
    if len(failed):
        # percent-decoding produced bytes that are not UTF-8: decode those like urllib does
        originals = todo["v"].gather(failed)
        decoded = decoded.scatter(failed, _python_fallback(originals, plus_as_space=False))
    return text.scatter(rows, decoded).alias(name)


def percent_decoded_series(text: pl.Series) -> pl.Series:
    """``urllib.parse.unquote`` over a column: ``%XX`` as UTF-8 bytes, ``+`` kept."""
    return _decoded_series(text, plus_as_space=False)


def form_decoded_series(text: pl.Series) -> pl.Series:
    """``urllib.parse.unquote_plus`` over a column: ``+`` is a space, ``%XX`` UTF-8 bytes."""
    return _decoded_series(text, plus_as_space=True)


# ---------------------------------------------------------------------------------------------
# S3 object identity


# Only a URI whose scheme is s3 or https (any case) can name an object: the rest are not parsed.
_MAY_NAME_OBJECT = r"^(?i:s3|https)://"


def s3_identity_frame(archive_uri: pl.Series) -> pl.DataFrame:
    """``s3_bucket``, ``s3_key``, ``s3_version_id`` of each archive URI, one row per URI, in order
    (docs/real-sources.md#s3-object-identity-of-archive-uris); all three null when the URI names no
    S3 object.

    Computed a step at a time on the URIs that may name an object (each intermediate once;
    percent-decoding only for the keys and version ids of recognised objects): at 1M exports
    the archives' 1.5M URIs take a fraction of the time one nested expression took."""
    uri = archive_uri.cast(pl.Utf8)
    rows = uri.str.contains(_MAY_NAME_OBJECT).fill_null(False).arg_true()
    found = _identity_of(uri.gather(rows))
    empty = pl.Series([None] * len(uri), dtype=pl.Utf8)
    return pl.DataFrame([empty.scatter(rows, found[name]).alias(name) for name in IDENTITY_FIELDS])


def _identity_of(uri: pl.Series) -> pl.DataFrame:
    parts = pl.DataFrame({"uri": uri}).select(pl.col("uri").str.extract_groups(_URI)).unnest("uri")
    parts = parts.select(scheme=pl.col("1").str.to_lowercase(), authority=pl.col("2"), path=pl.col("3"),
                         query=pl.col("4"))
    # host: user info and port removed, lowercased (DNS names are case-insensitive)
    parts = parts.with_columns(
        host=pl.col("authority").str.replace(r"^.*@", "").str.replace(r":[0-9]*$", "").str.to_lowercase(),
        path_body=pl.col("path").str.strip_prefix("/"),
    )
    parts = parts.with_columns(
        is_s3=pl.col("scheme") == "s3",
        virtual_bucket=pl.when(pl.col("scheme") == "https").then(pl.col("host").str.extract(_VIRTUAL_HOST, 1)),
        is_path_style=(pl.col("scheme") == "https") & pl.col("host").str.contains(_PATH_STYLE_HOST),
    ).with_columns(is_virtual=pl.col("virtual_bucket").is_not_null())
    is_s3, is_virtual, is_path_style = pl.col("is_s3"), pl.col("is_virtual"), pl.col("is_path_style")
    parts = parts.with_columns(
        bucket=pl.when(is_s3).then(pl.col("authority")).when(is_virtual).then(pl.col("virtual_bucket"))
        .when(is_path_style).then(pl.col("path_body").str.extract(r"^([^/]*)/", 1)),
        raw_key=pl.when(is_s3 | is_virtual).then(pl.col("path_body"))
        .when(is_path_style).then(pl.col("path_body").str.extract(r"^[^/]*/(.*)$", 1)),
        version_raw=pl.col("query").str.extract(r"(?:^|&)versionId=([^&]*)", 1),
    )
    recognised = parts.select(
        (is_s3 | is_virtual | is_path_style)
        & pl.col("bucket").str.contains("^" + _BUCKET + "$").fill_null(False)
        & ~pl.col("bucket").str.contains(_ACCESS_POINT_ALIAS).fill_null(False)
        & (pl.col("raw_key").str.len_bytes() > 0).fill_null(False)
    ).to_series()
    # An https key is percent-decoded ("+" kept); an s3:// key is taken as written.
    decode_key = (recognised & ~parts["is_s3"]).arg_true()
    key = parts["raw_key"].scatter(decode_key, percent_decoded_series(parts["raw_key"].gather(decode_key)))
    with_version = (recognised & parts["version_raw"].is_not_null()).arg_true()
    version = pl.Series([None] * len(uri), dtype=pl.Utf8).scatter(
        with_version, percent_decoded_series(parts["version_raw"].gather(with_version)))
    return pl.DataFrame({"recognised": recognised, "s3_bucket": parts["bucket"], "s3_key": key,
                         "s3_version_id": version}).select(
        pl.when("recognised").then("s3_bucket").alias("s3_bucket"),
        pl.when("recognised").then("s3_key").alias("s3_key"),
        pl.when(pl.col("recognised") & (pl.col("s3_version_id").str.len_bytes() > 0)).then("s3_version_id")
        .alias("s3_version_id"),
    )


def s3_object_identity(archive_uri: pl.Expr) -> pl.Expr:
    """Struct {s3_bucket, s3_key, s3_version_id} of an archive URI (docs/real-sources.md#s3-object-identity-of-archive-uris); all null when
    the URI names no S3 object (`s3_identity_frame` as an expression)."""
    fields = pl.Struct({name: pl.Utf8 for name in IDENTITY_FIELDS})
    return archive_uri.map_batches(lambda uri: s3_identity_frame(uri).to_struct(), return_dtype=fields,
                                   is_elementwise=True)


def s3_identity_columns(archive_uri: pl.Expr) -> list[pl.Expr]:
    """``s3_bucket``, ``s3_key``, ``s3_version_id`` as three named expressions."""
    identity = s3_object_identity(archive_uri)
    return [identity.struct.field(name).alias(name) for name in IDENTITY_FIELDS]


def archive_s3_identity(decoded: pl.DataFrame) -> pl.DataFrame:
    """``s3_bucket``, ``s3_key``, ``s3_version_id`` of each decoded archive record
    (docs/real-sources.md#s3-object-identity-of-archive-uris), read from its archive_uri **before**
    redaction; the values are redacted like any kept string (token rules only: they are no URIs)."""
    from exportaudit.redact import redacted_column

    if "archive_uri" not in decoded.columns or decoded.height == 0:
        return pl.DataFrame({name: pl.Series(name, [None] * decoded.height, dtype=pl.Utf8)
                             for name in IDENTITY_FIELDS})
    identity = s3_identity_frame(decoded["archive_uri"])
    return identity.with_columns(redacted_column(identity[name]).alias(name) for name in IDENTITY_FIELDS)
