"""SPEC 5: one redaction function, every rule."""

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
        ("s3://vault/exp-1", "s3://vault/exp-1"),
        ("timeout", "timeout"),
    ],
)
def test_redaction_rules(text, expected):
    assert redact_str(text) == expected


def test_redaction_is_idempotent():
    text = "https://u:p@10.0.0.1/x?sig=1 Authorization: Bearer t AKIAABCDEFGHIJKLMNOP"
    once = redact_str(text)
    assert redact_str(once) == once


def test_private_connector_hides_every_host():
    assert redact_str("https://grc.example.com/hook?x=1", private_connector=True) == "https://[private]/hook?REDACTED"
    assert redact_str("https://grc.example.com/hook", private_connector=False) == "https://grc.example.com/hook"


def test_redact_text_is_vectorised_and_keeps_nulls():
    frame = pl.DataFrame({"t": ["https://u:p@h.example/x", None], "private": [True, False]})
    out = frame.select(redact_text(pl.col("t"), pl.col("private")))
    assert out["t"].to_list() == ["https://[private]/x", None]
