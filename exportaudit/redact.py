"""Redaction of credentials and private endpoints (SPEC 5), as vectorised Polars expressions.

One implementation, applied at ingest to every string value kept (contract fields,
extra fields, quarantined raw text) and, through `redact_str`, to anything else that
is printed or stored (file names, error messages).

- Token rules on all text: `Authorization` header values, `Bearer …` tokens, AWS
  access key ids (AKIA/ASIA…), PEM private key blocks, and `secret=value` pairs.
- URI rules on every URI, whole value or inside text: user info removed, a query
  replaced by `?REDACTED`, a fragment removed, and a private host (private or
  loopback address, localhost, *.internal/.local/.corp/.lan) replaced by `[private]`.
- `private_connector`: every URI host in the text is replaced by `[private]`.
"""

from __future__ import annotations

import polars as pl

REDACTED = "[REDACTED]"
PRIVATE_HOST = "[private]"

_SCHEME = r"([A-Za-z][A-Za-z0-9+.\-]*://)"
_URI_STOP = r"\s\"'<>`"  # characters that end a URI embedded in text

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

_PRIVATE_HOST_PATTERN = "|".join(
    [
        r"localhost",
        r"127(?:\.\d{1,3}){3}",
        r"10(?:\.\d{1,3}){3}",
        r"0(?:\.\d{1,3}){3}",
        r"192\.168(?:\.\d{1,3}){2}",
        r"172\.(?:1[6-9]|2\d|3[01])(?:\.\d{1,3}){2}",
        r"169\.254(?:\.\d{1,3}){2}",
        r"\[(?:::1|f[cd][0-9a-f]{0,2}:[0-9a-f:.]*|fe[89ab][0-9a-f]:[0-9a-f:.]*)\]",
        r"[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.(?:internal|local|corp|lan)\.?",
    ]
)

_URI_RULES: list[tuple[str, str]] = [
    # user info: scheme://user:password@host -> scheme://host
    (_SCHEME + r"[^/?#@" + _URI_STOP + r"]*@", "${1}"),
    # query string -> ?REDACTED
    (_SCHEME + r"([^?#" + _URI_STOP + r"]*)\?[^#" + _URI_STOP + r"]*", "${1}${2}?REDACTED"),
    # fragment -> removed
    (_SCHEME + r"([^#" + _URI_STOP + r"]*)#[^" + _URI_STOP + r"]*", "${1}${2}"),
    # private or loopback host (and its port) -> [private]
    (
        r"(?i)" + _SCHEME + r"(?:" + _PRIVATE_HOST_PATTERN + r")(?::\d+)?([/?#" + _URI_STOP + r"]|$)",
        "${1}" + PRIVATE_HOST + "${2}",
    ),
]

# Secrets written as key=value outside a URI query (the query rule already covers URIs).
_KEY_VALUE_RULE = (
    r"(?i)\b(x-amz-signature|x-amz-credential|x-amz-security-token|sig|signature|token|access_token"
    r"|api_key|apikey|password|passwd|secret|client_secret)=[^&\s\"'<>]+",
    "${1}=" + REDACTED,
)

_ANY_HOST_RULE = (_SCHEME + r"[^/?#" + _URI_STOP + r"]+", "${1}" + PRIVATE_HOST)


def redact_text(text: pl.Expr, private_connector: pl.Expr | bool = False) -> pl.Expr:
    """Redacted text: every rule of SPEC 5 applied to a string expression (nulls stay null)."""
    for pattern, replacement in [*_TOKEN_RULES, *_URI_RULES, _KEY_VALUE_RULE]:
        text = text.str.replace_all(pattern, replacement)
    if private_connector is False:
        return text
    all_hosts_hidden = text.str.replace_all(*_ANY_HOST_RULE)
    return pl.when(private_connector).then(all_hosts_hidden).otherwise(text)


def redact_str(value: str | None, private_connector: bool = False) -> str | None:
    """The same redaction for one Python string (messages, file names)."""
    if value is None:
        return None
    out = pl.select(redact_text(pl.lit(value, dtype=pl.Utf8), private_connector)).item()
    return out
