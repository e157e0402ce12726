"""Redaction of credentials and private endpoints (docs/security.md#what-is-never-stored-or-printed), as vectorised Polars expressions.

One implementation, applied at ingest to every string value kept (contract fields,
extra fields, quarantined raw text) and, through `redact_str`, to anything else that
is printed or stored (file names, error messages).

- Token rules on all text: `Authorization` header values, `Bearer …` tokens, AWS
  access key ids (AKIA/ASIA…), PEM private key blocks, and `secret=value` pairs.
- URI rules on every URI, whole value or inside text (its "/" JSON-escaped or not): user
  info removed, a query replaced by `?REDACTED`, a fragment removed, and a private host
  (private or loopback address, localhost, *.internal/.local/.corp/.lan) replaced by `[private]`.
- `private_connector`: every URI host in the text is replaced by `[private]`.
"""

from __future__ import annotations

import functools

import polars as pl

REDACTED = "[REDACTED]"
PRIVATE_HOST = "[private]"

_URI_STOP = r"\s\"'<>`"  # characters that end a URI embedded in text
# The scheme separator, as written or JSON-escaped (`https:\/\/host\/path` in the raw text of a JSON
# line); captured, so that a rule keeps it as it was.
_SEPARATOR = r"(:(?://|\\/\\/))"

_TOKEN_RULES: list[tuple[str, str]] = [
    # PEM private key blocks, to their END line (or to the end of the text).
    (r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", REDACTED),
    # Authorization header values, with or without a scheme word, in header, JSON or key=value form.
    (
        r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|digest|token|negotiate)\s+)?[^\s\"',;}&\[\]]+",
        "${1}" + REDACTED,
    ),
    (r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]+", "Bearer " + REDACTED),
    (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", REDACTED),
]

_PRIVATE_IPV4 = "|".join(
    [
        r"(?:127|10|0)(?:\.\d{1,3}){1,3}",  # also the short forms inet_aton reads (127.1 is 127.0.0.1)
        r"192\.168(?:\.\d{1,3}){2}",
        r"172\.(?:1[6-9]|2\d|3[01])(?:\.\d{1,3}){2}",
        r"169\.254(?:\.\d{1,3}){2}",
    ]
)
_ZERO_GROUPS = r"(?:0{0,4}:){2,7}"  # "::", "0:0:", "0000::0:", ... (all zero)
_PRIVATE_HOST_PATTERN = "|".join(
    [
        r"localhost\.?",
        _PRIVATE_IPV4,
        # IPv6: loopback and unspecified in any spelling (::1, 0:0:0:0:0:0:0:1, ::), unique local
        # fc00::/7, link-local fe80::/10, and IPv4-mapped private addresses (::ffff:127.0.0.1,
        # ::ffff:7f00:1).
        r"\[" + _ZERO_GROUPS + r"0{0,3}1?\]",
        r"\[(?:f[cd][0-9a-f]{0,2}:[0-9a-f:.]*|fe[89ab][0-9a-f]:[0-9a-f:.]*)\]",
        r"\[(?:0{0,4}:){2,6}ffff:(?:(?:" + _PRIVATE_IPV4 + r")|(?:7f[0-9a-f]{2}|a[0-9a-f]{2}|c0a8|ac1[0-9a-f]|a9fe):[0-9a-f]{1,4})\]",
        r"[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.(?:internal|local|corp|lan)\.?",
    ]
)

# Each URI rule starts at the scheme separator (the scheme before it is kept as it is): a regex
# that begins with a literal is found fast, and the rules then also cover a URI whose scheme
# is unusual. A host ends at "/", "?", "#", a backslash (a JSON-escaped "/"), or what ends a URI.
_URI_RULES: list[tuple[str, str]] = [
    # user info: scheme://user:password@host -> scheme://host; up to the last "@" before the host
    # ends, as URL parsers read it (a password holding "@" is removed whole)
    (_SEPARATOR + r"[^/?#" + _URI_STOP + r"]*@", "${1}"),
    # query string -> ?REDACTED
    (r"(" + _SEPARATOR + r"[^?#" + _URI_STOP + r"]*)\?[^#" + _URI_STOP + r"]*", "${1}?REDACTED"),
    # fragment -> removed
    (r"(" + _SEPARATOR + r"[^#" + _URI_STOP + r"]*)#[^" + _URI_STOP + r"]*", "${1}"),
    # private or loopback host (and its port) -> [private]
    (
        r"(?i)" + _SEPARATOR + r"(?:" + _PRIVATE_HOST_PATTERN + r")(?::\d+)?([/?#\\" + _URI_STOP + r"]|$)",
        "${1}" + PRIVATE_HOST + "${2}",
    ),
]

# Secrets written as key=value outside a URI query (the query rule already covers URIs).
_KEY_VALUE_RULE = (
    r"(?i)\b(x-amz-signature|x-amz-credential|x-amz-security-token|sig|signature|token|access_token"
    r"|api_key|apikey|password|passwd|secret|client_secret)=[^&\s\"'<>]+",
    "${1}=" + REDACTED,
)

_ANY_HOST_RULE = (_SEPARATOR + r"[^/?#\\" + _URI_STOP + r"]+", "${1}" + PRIVATE_HOST)


def redact_text(text: pl.Expr, private_connector: pl.Expr | bool = False) -> pl.Expr:
    """Redacted text: every rule of docs/security.md#what-is-never-stored-or-printed applied to a string expression (nulls stay null)."""
    for pattern, replacement in [*_TOKEN_RULES, *_URI_RULES, _KEY_VALUE_RULE]:
        text = text.str.replace_all(pattern, replacement)
    if private_connector is False:
        return text
    all_hosts_hidden = text.str.replace_all(*_ANY_HOST_RULE)
    return pl.when(private_connector).then(all_hosts_hidden).otherwise(text)


# A text some rule could change contains one of these (ASCII case-insensitive): one Aho-Corasick
# scan (twice as fast as the equivalent regex) finds the rows to look at. A superset: "://l" stands
# for "://localhost" because the rule's (?i) also matches a long s (U+017F) for "s"; the other words
# hold no "k" or "s", the two ASCII letters with a non-ASCII case variant (the Kelvin sign, long s).
MAY_NEED_REDACTION = ["@", "?", "#", "=", "authorization", "bearer", "akia", "asia", "-----begin",
                      *(f"{separator}{start}" for separator in ("://", ":\\/\\/")
                        for start in ("l", "[", *map(str, range(10)))),
                      ".internal", ".local", ".corp", ".lan"]

# For each rule, a cheap test that is true whenever the rule could change a text (mostly a
# literal). `redacted_column` runs a rule's regex only on the rows its trigger selects, which
# keeps redaction fast on millions of rows; a property test checks it equals `redact_text`.
_TRIGGERS = [r"-----BEGIN", r"(?i)authorization", r"(?i)bearer", r"A[KS]IA", "@", r"\?", "#",
             r"(?i):(?://|\\/\\/)(?:localhost|\d|\[)|\.(?:internal|local|corp|lan)", "="]
_TRIGGERED_RULES = list(zip(_TRIGGERS, [*_TOKEN_RULES, *_URI_RULES, _KEY_VALUE_RULE]))


def _apply_where(text: pl.Series, rows: pl.Series, pattern: str, replacement: str) -> pl.Series:
    if len(rows) == 0:
        return text
    changed = text.gather(rows).str.replace_all(pattern, replacement)
    return text.scatter(rows, changed)


_QUERY_RULE, _FRAGMENT_RULE = _URI_RULES[1], _URI_RULES[2]
# A value that is one whole URI (scheme://..., nothing that ends a URI, one "://"): its query and
# fragment rules reduce to cutting at the first "?" or "#", done with string slicing, ~10x faster
# than the regex on long presigned URLs.
_WHOLE_URI = r"^[A-Za-z][A-Za-z0-9+.\-]*://[^" + _URI_STOP + r"]*$"


def _before_first(character: str) -> pl.Expr:
    """Column `text` up to its first `character` (the whole text when it holds none)."""
    return pl.col("text").str.splitn(character, 2).struct.field("field_0")


def _one_uri(text: pl.Series, pattern: str) -> pl.Series:
    """Where the text matches pattern and holds one "://" (false for nulls)."""
    return (text.str.contains(pattern) & (text.str.count_matches("://", literal=True) == 1)).fill_null(False)


def _query_and_fragment(text: pl.Series) -> pl.Series:
    """The query rule then the fragment rule, on a column (slicing for whole URIs, regex for the rest)."""
    whole = _one_uri(text, _WHOLE_URI)
    fast = _cut_at_query_and_fragment(text, whole)
    rest = ~whole
    for trigger, (pattern, replacement) in (("?", _QUERY_RULE), ("#", _FRAGMENT_RULE)):
        rows = (rest & fast.str.contains(trigger, literal=True).fill_null(False)).arg_true()
        fast = _apply_where(fast, rows, pattern, replacement)
    return fast


def _cut_at_query_and_fragment(text: pl.Series, whole: pl.Series) -> pl.Series:
    """Where `whole`: the text cut at its first "?" (then "?REDACTED") or, before any "?", its first "#"."""
    frame = pl.DataFrame({"text": text, "whole": whole}).with_columns(
        q=pl.col("text").str.find("?", literal=True), h=pl.col("text").str.find("#", literal=True))
    query_first = pl.col("q").is_not_null() & (pl.col("h").is_null() | (pl.col("q") < pl.col("h")))
    # find gives byte offsets and slice counts characters: the text is cut with splitn instead.
    sliced = (
        pl.when(query_first).then(pl.concat_str([_before_first("?"), pl.lit("?REDACTED")]))
        .when(pl.col("h").is_not_null()).then(_before_first("#"))
        .otherwise(pl.col("text"))
    )
    return frame.select(pl.when(pl.col("whole")).then(sliced).otherwise(pl.col("text"))).to_series().alias(text.name)


# A value that starts as a URI: in a field that holds one URI, all of the rest is that URI.
_URI_VALUE = r"^[A-Za-z][A-Za-z0-9+.\-]*://"
_WHITESPACE = [" ", "\t", "\n", "\r", "\x0b", "\x0c"]


def _spaced_uris_cut(text: pl.Series) -> pl.Series:
    """Values that start as a URI and hold whitespace, cut at their first "?" or "#" (the others
    are cut so by the query and fragment rules already)."""
    rows = text.str.contains_any(_WHITESPACE).fill_null(False).arg_true()
    if len(rows) == 0:
        return text
    spaced = text.gather(rows)
    return text.scatter(rows, _cut_at_query_and_fragment(spaced, _one_uri(spaced, _URI_VALUE)))


def _rules_applied(text: pl.Series, one_uri: bool = False) -> pl.Series:
    """Every rule of `redact_text` (the private-connector rule aside), each on the rows its trigger
    selects; one_uri: first, the URI-field cut (`redacted_column`)."""
    if one_uri:
        text = _spaced_uris_cut(text)
    for trigger, (pattern, replacement) in _TRIGGERED_RULES:
        if (pattern, replacement) == _QUERY_RULE:
            text = _query_and_fragment(text)
        elif (pattern, replacement) != _FRAGMENT_RULE:  # done with the query rule
            text = _apply_where(text, text.str.contains(trigger).fill_null(False).arg_true(), pattern, replacement)
    return text


def _by_distinct_value(text: pl.Series, function) -> pl.Series:
    """function(text) computed once per distinct value when values repeat (endpoints and URIs do:
    about 1 in 6 is new at 1M attempts), else on the column as it is."""
    distinct = text.unique()
    if len(distinct) * 2 > len(text):
        return function(text)
    lookup = pl.DataFrame({"value": distinct, "result": function(distinct.clone())})  # scatter works in place
    return pl.DataFrame({"value": text}).join(lookup, on="value", how="left", nulls_equal=True,
                                              maintain_order="left")["result"].alias(text.name)


def _holding_uri(text: pl.Series, rows: pl.Series) -> pl.Series:
    """True where `rows` is true and the text holds a scheme separator (only those rows' texts are scanned)."""
    chosen = rows.arg_true()
    separators = ["://", ":\\/\\/"]
    if len(chosen) * 2 > len(rows):
        return rows & text.str.contains_any(separators).fill_null(False)
    holding = text.gather(chosen).str.contains_any(separators).fill_null(False)
    return pl.zeros(len(text), pl.Boolean, eager=True).scatter(chosen, holding)


def redacted_column(text: pl.Series, private_connector: pl.Series | None = None, one_uri: bool = False) -> pl.Series:
    """`redact_text` over a whole column: one cheap scan finds the rows any rule could change,
    then each rule runs only on the rows its trigger selects. one_uri: the column is a field that
    holds one URI (a delivery's endpoint, an archive_uri): a value that starts as a URI is cut at
    its first "?" or "#" even when it holds a space (an S3 key is taken as written, spaces
    included), where in free text a space ends a URI."""
    private_rows = None
    if private_connector is not None:  # the any-host rule can only change text holding a URI
        private_rows = _holding_uri(text, private_connector.fill_null(False))
    dirty = text.str.contains_any(MAY_NEED_REDACTION, ascii_case_insensitive=True).fill_null(False)
    if private_rows is not None:
        dirty = dirty | private_rows
    rows = dirty.arg_true()
    if len(rows) == 0:
        return text
    subset = _by_distinct_value(text.gather(rows), functools.partial(_rules_applied, one_uri=one_uri))
    if private_rows is not None:
        subset = _apply_where(subset, private_rows.gather(rows).arg_true(), *_ANY_HOST_RULE)
    return text.scatter(rows, subset)


def redact_str(value: str | None, private_connector: bool = False) -> str | None:
    """The same redaction for one Python string (messages, file names)."""
    if value is None:
        return None
    out = pl.select(redact_text(pl.lit(value, dtype=pl.Utf8), private_connector)).item()
    return out
