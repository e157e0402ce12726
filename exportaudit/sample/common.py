"""What the planted sample and the scale generator share: defaults, log names, destinations,
and the credentials and private hosts planted in the inputs (`planted.PLANTED_SECRETS`
lists them all)."""

from __future__ import annotations

from datetime import datetime, timezone


UTC = timezone.utc
DEFAULT_AS_OF = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
DEFAULT_SEED = 7
LOG_NAMES = ("exports", "deliveries", "archives", "custody_checks")
from transforms.timestamps import UTC_US  # noqa: E402,F401  (re-exported for the generators)

# ---------------------------------------------------------------------------------------------
# Planted credentials and private endpoints (docs/security.md#what-is-never-stored-or-printed). Each value below appears in the inputs
# and must appear in no output: tests scan every output for PLANTED_SECRETS.
# ---------------------------------------------------------------------------------------------
DELIVERY_PASSWORD = "s3cr3t-Passw0rd-1138"  # https://user:password@ in a delivery endpoint
ARCHIVE_PASSWORD = "Vault-Arch1ve-Pw-2718"  # https://user:password@ in an archive URI
AWS_KEY_ID = "AKIA5EXPORTAUDIT7QZ9"  # X-Amz-Credential of presigned URLs
LEAKED_KEY_ID = "AKIA2QUARANTINEK8XYZ"  # pasted into a malformed (quarantined) JSON line
AMZ_SIGNATURE = "7d3f5c1a9e8b2d4f6a0c1e3b5d7f9a2c4e6b8d0f1a3c5e7b9d2f4a6c8e0b1d3f"
AMZ_ARCHIVE_SIGNATURE = "c0ffee5a1e0b7d9f3a5c7e9b1d3f5a7c9e0b2d4f6a8c0e2b4d6f8a1c3e5b7d9f"
GOOG_SIGNATURE = "5b2e8d1f4a7c0e3b6d9f2a5c8e1b4d7f0a3c6e9b2d5f8a1c4e7b0d3f6a9c2e5b"
AZURE_SIG = "q8Zr3sK9vLmN2pQwE7tYu1ZcA5dF0gHjB4nM6oPiR2s"
AZURE_ARCHIVE_SIG = "Lw4Tn8Rb2Xk6Vc0Zp3Hs7Jd1Fg5Qm9Ye2Ua6Io0Pl4K"
WEBHOOK_TOKEN = "tok_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
ARCHIVE_TOKEN = "arch_tok_51c7e0b3f9a2d6e4c8b1a7f3e5d9c2b6"
BEARER_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJleHBvcnQtYm90In0.c2lnLXBsYW50ZWQtZm9yLXRlc3Rz"
PRIVATE_CONNECTOR_HOST = "grc-gw.partner-evidence.example"  # public name, but a private connector
PRIVATE_HOSTS = (
    "10.20.30.40",
    "192.168.14.7",
    "192.168.50.12",
    "127.0.0.1:9000",  # with its port: "127.0.0.1" alone also appears in Prefect's own log lines
    "evidence-relay.internal",
    "grc.acme.corp",
    "nas01.vault.internal",
)
assert all(len(key) == 20 for key in (AWS_KEY_ID, LEAKED_KEY_ID))  # AKIA + 16: what a redactor looks for


def presigned_s3_url(bucket_url: str, signature: str) -> str:
    """bucket_url with the query string of an S3 presigned URL (AKIA credential, signature)."""
    return (
        f"{bucket_url}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={AWS_KEY_ID}%2F20261119%2Feu-west-1%2Fs3%2Faws4_request"
        f"&X-Amz-Date=20261119T120000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"
    )


def azure_sas_url(blob_url: str, sig: str) -> str:
    """blob_url with the query string of an Azure shared access signature."""
    return f"{blob_url}?sv=2022-11-02&ss=b&srt=o&sp=rw&se=2026-12-31T00:00:00Z&spr=https&sig={sig}%3D"


# Destinations: configured connector name -> (connector_kind, endpoint prefix).
DESTINATIONS: dict[str, tuple[str, str]] = {
    "grc-webhook": ("webhook", "https://grc.example.com/api/v2/evidence"),
    "evidence-bucket": ("s3", "s3://evidence-drop-prod/exports/"),
    "audit-sftp": ("sftp", "sftp://sftp.auditor.example.net/inbound/"),
    "gcs-evidence": ("gcs", "gs://auditor-evidence-drop/exports/"),
    "azure-evidence": ("azure_blob", "https://auditevidence.blob.core.windows.net/exports/"),
    "auditor-mailbox": ("email", "mailto:evidence@auditor.example.net"),
}
PROVIDERS = ("aws_s3_object_lock", "azure_immutable_blob", "gcs_bucket_lock", "filesystem")
