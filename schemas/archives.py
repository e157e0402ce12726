"""Pandera model of the accepted `archives` table (docs/inputs.md#archives-log): the analysts' data dictionary for it.

Besides the contract fields and lineage, three columns derived at ingest from `archive_uri`
**before** redaction (docs/real-sources.md#s3-object-identity-of-archive-uris): the S3 object the
reference names, null when it names none. They are not contract fields (no record gives them),
so they are optional in the model: a batch validated before they are attached still passes.
"""

import pandera.polars as pa
import polars as pl

from exportaudit.contract import ARCHIVES
from schemas._columns import accepted_schema

S3_IDENTITY_COLUMNS = {
    "s3_bucket": pa.Column(pl.Utf8, nullable=True, required=False,
                           description="S3 bucket named by archive_uri (docs/real-sources.md#s3-object-identity-of-archive-uris); "
                                       "null when the URI names no S3 object."),
    "s3_key": pa.Column(pl.Utf8, nullable=True, required=False,
                        description="S3 object key named by archive_uri: as written in s3:// URIs, percent-decoded "
                                    "in https URIs; null when the URI names no S3 object."),
    "s3_version_id": pa.Column(pl.Utf8, nullable=True, required=False,
                               description="versionId of archive_uri's query, kept although the query is redacted "
                                           "from archive_uri; the string null names the null version; null when "
                                           "the URI pins no version."),
}

schema = accepted_schema(ARCHIVES).add_columns(S3_IDENTITY_COLUMNS)
