"""docs/real-sources.md#s3-object-identity-of-archive-uris: which archive URIs name an S3 object, and percent-decoding."""

from __future__ import annotations

import polars as pl
import pytest

from exportaudit.sources.s3_uri import (
    form_decoded_series,
    percent_decoded_series,
    s3_identity_columns,
    s3_object_identity,
)


def identity(uri: str | None) -> tuple[str | None, str | None, str | None]:
    frame = pl.DataFrame({"archive_uri": [uri]}, schema={"archive_uri": pl.Utf8})
    row = frame.select(*s3_identity_columns(pl.col("archive_uri"))).row(0)
    return row


@pytest.mark.parametrize("uri, expected", [
    # s3:// — key as written, no decoding; versionId percent-decoded (+ kept)
    ("s3://evidence-bucket/exports/a b+c%20d.tar", ("evidence-bucket", "exports/a b+c%20d.tar", None)),
    ("s3://evidence-bucket/k?versionId=3HL4kqtJ%2Brm+Sp", ("evidence-bucket", "k", "3HL4kqtJ+rm+Sp")),
    ("s3://evidence-bucket/k?x=1&versionId=v2&versionId=v3", ("evidence-bucket", "k", "v2")),
    ("s3://evidence-bucket/k?versionId=null", ("evidence-bucket", "k", "null")),
    ("s3://evidence-bucket/k?versionId=", ("evidence-bucket", "k", None)),
    ("s3://evidence-bucket/dir/k#frag", ("evidence-bucket", "dir/k", None)),
    # virtual-hosted
    ("https://evidence-bucket.s3.amazonaws.com/dir/a%20b+c%2Bd", ("evidence-bucket", "dir/a b+c+d", None)),
    ("https://evidence-bucket.s3.eu-west-1.amazonaws.com/r%C3%A9sum%C3%A9.pdf?versionId=v%2F1",
     ("evidence-bucket", "résumé.pdf", "v/1")),
    ("https://my.dotted.bucket.s3.us-gov-west-1.amazonaws.com/k", ("my.dotted.bucket", "k", None)),
    ("https://evidence-bucket.s3-ap-southeast-3.amazonaws.com/k", ("evidence-bucket", "k", None)),
    ("https://Evidence-Bucket.S3.Amazonaws.com/Key", ("evidence-bucket", "Key", None)),
    ("https://evidence-bucket.s3.amazonaws.com/k?X-Amz-Signature=abc&versionId=v9&X-Amz-Date=1",
     ("evidence-bucket", "k", "v9")),
    # path style
    ("https://s3.amazonaws.com/evidence-bucket/dir/%E2%82%AC+x", ("evidence-bucket", "dir/€+x", None)),
    ("https://s3.eu-central-1.amazonaws.com/evidence-bucket/k?versionId=null",
     ("evidence-bucket", "k", "null")),
])
def test_recognised_forms(uri, expected):
    assert identity(uri) == expected


@pytest.mark.parametrize("uri", [
    "http://evidence-bucket.s3.amazonaws.com/k",  # http
    "https://evidence-bucket.s3.dualstack.us-east-1.amazonaws.com/k",  # dual-stack
    "https://s3.dualstack.us-east-1.amazonaws.com/evidence-bucket/k",
    "https://evidence-bucket.s3-fips.us-east-1.amazonaws.com/k",  # FIPS
    "https://s3-fips.us-gov-west-1.amazonaws.com/evidence-bucket/k",
    "https://evidence-bucket.s3-accelerate.amazonaws.com/k",  # accelerate
    "https://mrap.accesspoint.s3-global.amazonaws.com/k",  # s3-global
    "https://evidence-bucket.s3-global.amazonaws.com/k",
    "https://evidence-bucket.s3-website-us-east-1.amazonaws.com/k",  # website
    "https://evidence-bucket.s3-website.eu-west-1.amazonaws.com/k",
    "https://s3-external-1.amazonaws.com/evidence-bucket/k",  # s3-external-1
    "https://evidence-bucket.s3-external-1.amazonaws.com/k",
    "https://evidence-bucket.s3.cn-north-1.amazonaws.com.cn/k",  # China
    "https://s3.cn-northwest-1.amazonaws.com.cn/evidence-bucket/k",
    "https://ap-111122223333.s3-accesspoint.us-west-2.amazonaws.com/k",  # access points
    "https://my-ap-abc123-s3alias.s3.us-west-2.amazonaws.com/k",
    "s3://arn:aws:s3:us-west-2:111122223333:accesspoint/my-ap/k",
    "https://s3-us-west-2.amazonaws.com/evidence-bucket/k",  # legacy dash path style: not a listed form
    "https://evidence-bucket.s3.eu-west.amazonaws.com/k",  # not a region (no number)
    "https://evidence-bucket.s3.europe-west-1.amazonaws.com/k",  # not a region (not two letters)
    "https://storage.googleapis.com/evidence-bucket/k",
    "gs://evidence-bucket/k",
    "file:///archive/k",
    "s3://evidence-bucket/",  # no key
    "s3://evidence-bucket",
    "https://s3.amazonaws.com/evidence-bucket/",
    "https://evidence-bucket.s3.amazonaws.com/",
    "not a uri",
    "",
    None,
])
def test_other_forms_name_no_object(uri):
    assert identity(uri) == (None, None, None)


def test_struct_and_columns_agree_over_a_column():
    uris = ["s3://b1/k1?versionId=v1", "https://b2.s3.amazonaws.com/k%202", "http://b3.s3.amazonaws.com/k"]
    frame = pl.DataFrame({"archive_uri": uris})
    as_struct = frame.select(s3_object_identity(pl.col("archive_uri")).alias("id")).unnest("id")
    as_columns = frame.select(*s3_identity_columns(pl.col("archive_uri")))
    assert as_struct.to_dicts() == as_columns.to_dicts() == [
        {"s3_bucket": "b1", "s3_key": "k1", "s3_version_id": "v1"},
        {"s3_bucket": "b2", "s3_key": "k 2", "s3_version_id": None},
        {"s3_bucket": None, "s3_key": None, "s3_version_id": None},
    ]


def test_form_and_percent_decoding_match_urllib():
    from urllib.parse import unquote, unquote_plus

    values = ["a+b", "a%2Bb", "%C3%A9t%C3%A9", "x%2Fy%2fz", "100%", "%zz", "%E2%82", "%FF+", "", None, "plain"]
    series = pl.Series(values, dtype=pl.Utf8)
    assert form_decoded_series(series).to_list() == [None if v is None else unquote_plus(v) for v in values]
    assert percent_decoded_series(series).to_list() == [None if v is None else unquote(v) for v in values]
