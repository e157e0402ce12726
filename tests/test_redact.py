"""docs/security.md#what-is-never-stored-or-printed: one redaction function, every rule."""

import ipaddress

import polars as pl
import pytest

from exportaudit.redact import redact_str, redact_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:password@api.example.com/hook", "https://api.example.com/hook"),
        ("https://api.example.com/hook?X-Amz-Signature=abc123&X-Amz-Credential=AKIA",
         "https://api.example.com/hook?REDACTED"),
        ("https://acct.blob.core.windows.net/c/b?sv=2024&sig=s3cr3t", "https://acct.blob.core.windows.net/c/b?REDACTED"),
        ("https://api.example.com/a#token=xyz", "https://api.example.com/a"),
        ("https://api.example.com/a?token=1#frag", "https://api.example.com/a?REDACTED"),
        ("https://10.1.2.3:8443/hook", "https://[private]/hook"),
        ("https://192.168.0.9/hook", "https://[private]/hook"),
        ("https://172.20.1.1/hook", "https://[private]/hook"),
        ("https://127.0.0.1:9000/x", "https://[private]/x"),
        ("https://[::1]:80/x", "https://[private]/x"),
        ("https://localhost/x", "https://[private]/x"),
        ("https://vault.internal/x", "https://[private]/x"),
        ("sftp://drop.corp/in", "sftp://[private]/in"),
        ("https://nas.lan", "https://[private]"),
        ("https://printer.local/x", "https://[private]/x"),
        ("https://172.32.0.1/x", "https://172.32.0.1/x"),  # not a private range
        ("https://internal.example.com/x", "https://internal.example.com/x"),
        ("Authorization: Bearer abc.def-ghi", "Authorization: [REDACTED]"),
        ('{"Authorization": "Basic dXNlcjpwYXNz"}', '{"Authorization": "[REDACTED]"}'),
        ("sent with bearer eyJhbGciOi.payload.sig", "sent with Bearer [REDACTED]"),
        ("key AKIAABCDEFGHIJKLMNOP in text", "key [REDACTED] in text"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- after", "[REDACTED] after"),
        ("-----BEGIN PRIVATE KEY-----\nMIIEow truncated", "[REDACTED]"),
        ("retry later, sig=abcdef and password=hunter2", "retry later, sig=[REDACTED] and password=[REDACTED]"),
        ("bad line {\"endpoint\": \"https://u:p@10.0.0.1/x?sig=1\"", 'bad line {"endpoint": "https://[private]/x?REDACTED"'),
        ("mailto:audit@example.com", "mailto:audit@example.com"),
        # a password holding "@": removed up to the last "@" before the host ends, as URL parsers read it
        ("https://user:p@ss@host.example/x", "https://host.example/x"),
        ("https://h.example/p?a=b@c", "https://h.example/p?REDACTED"),
        # a URI in the raw text of a JSON line, its "/" escaped
        ('{"endpoint":"https:\\/\\/ops:hunter2@hooks.example.com\\/in?x=1"', '{"endpoint":"https:\\/\\/hooks.example.com\\/in?REDACTED"'),
        ('bad "https:\\/\\/10.0.0.1:80\\/p#frag" line', 'bad "https:\\/\\/[private]\\/p" line'),
        ("https://localhost./x", "https://[private]/x"),
        ("https://127.1/x", "https://[private]/x"),
        ("https://10.1.example.com/x", "https://10.1.example.com/x"),
        ("s3://vault/exp-1", "s3://vault/exp-1"),
        ("timeout", "timeout"),
    ],
)
def test_redaction_rules(text, expected):
    assert redact_str(text) == expected


@pytest.mark.parametrize("host", [
    "::1", "0:0:0:0:0:0:0:1", "0000:0000:0000:0000:0000:0000:0000:0001", "0::1", "::", "::ffff:127.0.0.1",
    "::ffff:10.2.3.4", "::ffff:192.168.1.1", "::ffff:7f00:1", "::ffff:a01:203", "fd00::1", "FC00::1", "fe80::1",
    "2001:4860::8888", "::ffff:8.8.8.8", "::ffff:808:808", "2606:4700::1111",
])
def test_ipv6_hosts_are_private_as_pythons_ipaddress_says(host):
    address = ipaddress.ip_address(host)
    private = address.is_loopback or address.is_unspecified or address.is_link_local or (
        address.ipv4_mapped is not None and address.ipv4_mapped.is_private) or address in ipaddress.ip_network("fc00::/7")
    expected = "https://[private]/x" if private else f"https://[{host}]/x"
    assert redact_str(f"https://[{host}]/x") == expected


def test_redaction_is_idempotent():
    text = "https://u:p@10.0.0.1/x?sig=1 Authorization: Bearer t AKIAABCDEFGHIJKLMNOP"
    once = redact_str(text)
    assert redact_str(once) == once


def test_private_connector_hides_every_host():
    assert redact_str("https://grc.example.com/hook?x=1", private_connector=True) == "https://[private]/hook?REDACTED"
    assert redact_str("https://grc.example.com/hook", private_connector=False) == "https://grc.example.com/hook"
    # in the raw text of a JSON line, its slashes escaped
    assert redact_str('"https:\\/\\/grc.example.com\\/hook"', private_connector=True) == '"https:\\/\\/[private]\\/hook"'
    flags = pl.Series([True])
    assert redacted_column(pl.Series(['"https:\\/\\/grc.example.com\\/hook"']), flags).to_list() == [
        '"https:\\/\\/[private]\\/hook"']


def test_redact_text_is_vectorised_and_keeps_nulls():
    frame = pl.DataFrame({"t": ["https://u:p@h.example/x", None], "private": [True, False]})
    out = frame.select(redact_text(pl.col("t"), pl.col("private")))
    assert out["t"].to_list() == ["https://[private]/x", None]


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from exportaudit.redact import redacted_column  # noqa: E402

PIECES = st.sampled_from([
    "https://", "s3://", "user:pw@", "host.example.com", "10.0.0.1", "vault.internal", "LOCALHOST", "[::1]", ":8443",
    "/path", "?q=1", "#frag", "Authorization: ", "Bearer ", "AKIAABCDEFGHIJKLMNOP", "-----BEGIN RSA PRIVATE KEY-----",
    "sig=", "token", " ", '"', "a", "Z", "9", ".", "-", "\n", "?", "#", "@", "/", "https://h.example/p?x=1#f",
    # letters with a non-ASCII case variant (long s, Kelvin sign), mixed case: the prefilter's literals
    # are ASCII case-insensitive, the rules' (?i) is Unicode
    "localho\u017ft", "\u212a", "\u017f", "\u00e9", "bEaReR ", "aUtHoRiZaTiOn:", ".LAN", "://", "x.Corp",
    ":\\/\\/", "\\/", "\\", "[0:0::1]", "127.1",  # JSON-escaped separators and paths
])


def test_a_query_after_non_ascii_text_is_cut_whole():
    """The fast path for whole URIs cuts at the first "?" or "#": by character, not by byte."""
    texts = pl.Series("t", ["https://h\u00e9\u00e9\u00e9.example/x?a=1&b=SECRET", "https://a.example/\u00e9#frag-secret",
                            "https://\u212a.example/?q=1"])
    expected = ["https://h\u00e9\u00e9\u00e9.example/x?REDACTED", "https://a.example/\u00e9", "https://\u212a.example/?REDACTED"]
    assert pl.DataFrame({"t": texts}).select(redact_text(pl.col("t"))).to_series().to_list() == expected
    assert redacted_column(texts).to_list() == expected


def test_prefilter_finds_a_private_host_spelt_with_a_long_s():
    texts = pl.Series("t", ["https://localho\u017ft:8080/x", "https://LocalHost/x", "https://10.1.2.3/x"])
    expected = pl.DataFrame({"t": texts}).select(redact_text(pl.col("t"))).to_series().to_list()
    assert expected == ["https://[private]/x"] * 3
    assert redacted_column(texts).to_list() == expected


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.lists(PIECES, max_size=8).map("".join), max_size=6), st.lists(st.booleans(), min_size=6, max_size=6))
def test_prefiltered_column_redaction_equals_the_full_rules(texts, private):
    series = pl.Series("t", texts, dtype=pl.Utf8)
    flags = pl.Series("p", private[: len(texts)], dtype=pl.Boolean)
    expected = pl.DataFrame({"t": series, "p": flags}).select(redact_text(pl.col("t"), pl.col("p"))).to_series()
    assert redacted_column(series, flags).to_list() == expected.to_list()
    plain = pl.DataFrame({"t": series}).select(redact_text(pl.col("t"))).to_series()
    assert redacted_column(series).to_list() == plain.to_list()


def test_a_field_holding_one_uri_loses_its_query_even_after_a_space():
    """An S3 key is taken as written, spaces included: in a URI field all of the value is the URI."""
    values = pl.Series("archive_uri", ["s3://b/a b.tar?versionId=v1&AWSAccessKeyId=XYZ", "s3://b/c d.tar#frag",
                                       "s3://b/plain.tar", "not a uri ?x=1", None])
    assert redacted_column(values.clone(), one_uri=True).to_list() == [
        "s3://b/a b.tar?REDACTED", "s3://b/c d.tar", "s3://b/plain.tar", "not a uri ?x=1", None]
    assert redacted_column(values)[0] == "s3://b/a b.tar?versionId=v1&AWSAccessKeyId=XYZ"  # in free text a space ends it
