"""Seeded, deterministic sample data: the demo and test set, and the benchmark set.

Two modes, importable and runnable as a script:

    python -m exportaudit.sample_data --out data/sample [--scale N] [--format jsonl|parquet]
                                      [--seed 7] [--as-of 2026-11-20T06:00:00Z]

- Default (`write_sample`): ~200 hand-shaped exports in exactly four files, one per
  format: `exports.jsonl`, `deliveries.csv`, `archives.parquet`, `custody_checks.jsonl.gz`.
  Every planted record is placed relative to as_of so that, evaluated at that as_of
  with the default policy, it hits one named case of SPEC 1.5, 2, 3 or 5 (see
  `planted_cases()` and `expected_outcomes()`). Filler exports (seeded random) are
  healthy and delivered, so they add volume without adding cases. The bytes are the
  same on every run: no wall clock, gzip mtime 0, fixed row order.
- `--scale N` (`write_scaled`): N exports of the same shape for benchmarks, built with
  vectorised Polars expressions (a splitmix64 hash of the row number drives every
  choice), ~10 delivery attempts, ~1.5 archive references and ~3 custody checks per
  export, and well under 1% quarantinable rows.

Nothing here reads the clock, the network or the `exportaudit` pipeline.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import os
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

import polars as pl

from exportaudit.contract import LOGS

UTC = timezone.utc
DEFAULT_AS_OF = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
DEFAULT_SEED = 7
LOG_NAMES = ("exports", "deliveries", "archives", "custody_checks")
SAMPLE_FILES = {
    "exports": "exports.jsonl",
    "deliveries": "deliveries.csv",
    "archives": "archives.parquet",
    "custody_checks": "custody_checks.jsonl.gz",
}
UTC_US = pl.Datetime("us", "UTC")

# ---------------------------------------------------------------------------------------------
# Planted credentials and private endpoints (SPEC 5). Each value below appears in the inputs
# and must appear in no output: tests scan every output for PLANTED_SECRETS.
# ---------------------------------------------------------------------------------------------
_DELIVERY_PASSWORD = "s3cr3t-Passw0rd-1138"  # https://user:password@ in a delivery endpoint
_ARCHIVE_PASSWORD = "Vault-Arch1ve-Pw-2718"  # https://user:password@ in an archive URI
_AWS_KEY_ID = "AKIA5EXPORTAUDIT7QZ9"  # X-Amz-Credential of presigned URLs
_LEAKED_KEY_ID = "AKIA2QUARANTINEK8XYZ"  # pasted into a malformed (quarantined) JSON line
_AMZ_SIGNATURE = "7d3f5c1a9e8b2d4f6a0c1e3b5d7f9a2c4e6b8d0f1a3c5e7b9d2f4a6c8e0b1d3f"
_AMZ_ARCHIVE_SIGNATURE = "c0ffee5a1e0b7d9f3a5c7e9b1d3f5a7c9e0b2d4f6a8c0e2b4d6f8a1c3e5b7d9f"
_GOOG_SIGNATURE = "5b2e8d1f4a7c0e3b6d9f2a5c8e1b4d7f0a3c6e9b2d5f8a1c4e7b0d3f6a9c2e5b"
_AZURE_SIG = "q8Zr3sK9vLmN2pQwE7tYu1ZcA5dF0gHjB4nM6oPiR2s"
_AZURE_ARCHIVE_SIG = "Lw4Tn8Rb2Xk6Vc0Zp3Hs7Jd1Fg5Qm9Ye2Ua6Io0Pl4K"
_WEBHOOK_TOKEN = "tok_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
_ARCHIVE_TOKEN = "arch_tok_51c7e0b3f9a2d6e4c8b1a7f3e5d9c2b6"
_BEARER_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJleHBvcnQtYm90In0.c2lnLXBsYW50ZWQtZm9yLXRlc3Rz"
_PRIVATE_CONNECTOR_HOST = "grc-gw.partner-evidence.example"  # public name, but a private connector
_PRIVATE_HOSTS = (
    "10.20.30.40",
    "192.168.14.7",
    "192.168.50.12",
    "127.0.0.1:9000",  # with its port: "127.0.0.1" alone also appears in Prefect's own log lines
    "evidence-relay.internal",
    "grc.acme.corp",
    "nas01.vault.internal",
)

PLANTED_SECRETS: tuple[str, ...] = (
    _DELIVERY_PASSWORD,
    _ARCHIVE_PASSWORD,
    _AWS_KEY_ID,
    _LEAKED_KEY_ID,
    _AMZ_SIGNATURE,
    _AMZ_ARCHIVE_SIGNATURE,
    _GOOG_SIGNATURE,
    _AZURE_SIG,
    _AZURE_ARCHIVE_SIG,
    _WEBHOOK_TOKEN,
    _ARCHIVE_TOKEN,
    _BEARER_TOKEN,
    _PRIVATE_CONNECTOR_HOST,
    *_PRIVATE_HOSTS,
)
assert all(len(key) == 20 for key in (_AWS_KEY_ID, _LEAKED_KEY_ID))  # AKIA + 16: what a redactor looks for


def _presigned_s3(bucket_url: str, signature: str) -> str:
    return (
        f"{bucket_url}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={_AWS_KEY_ID}%2F20261119%2Feu-west-1%2Fs3%2Faws4_request"
        f"&X-Amz-Date=20261119T120000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"
    )


def _azure_sas(blob_url: str, sig: str) -> str:
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


# =============================================================================================
# Default mode: the hand-shaped sample
# =============================================================================================


@dataclass(frozen=True)
class PlantedCase:
    """One planted record (or group) and the SPEC case it covers."""

    log: str  # exports, deliveries, archives, custody_checks
    record_id: str  # export_id, "export_id destination", reference_id, attempt_id or "reference_id @checked_at"
    covers: str


CRITICAL_CHECKS = frozenset({"object_missing", "digest_mismatch", "not_immutable", "retention_expired",
                             "missing_reference"})


@dataclass
class Expectations:
    """What a correct run at as_of with the default policy finds in the default sample."""

    decisions: dict[tuple[str, str], str] = field(default_factory=dict)  # delivery -> reason_code
    recovered: set[tuple[str, str]] = field(default_factory=set)
    findings: dict[tuple[str, str | None], frozenset[str]] = field(default_factory=dict)  # checked refs
    orphans: set[str] = field(default_factory=set)  # reference ids
    unchecked_references: set[str] = field(default_factory=set)
    unmatched_custody_checks: int = 0
    quarantine: dict[str, dict[int, frozenset[str]]] = field(default_factory=dict)  # file -> row -> reasons
    exact_duplicates: dict[str, int] = field(default_factory=dict)  # file -> count
    rows_read: dict[str, int] = field(default_factory=dict)  # file -> count

    def custody_status(self) -> dict[str, str]:
        """Per checked export: critical (no intact reference), warning (any finding), or healthy."""
        by_export: dict[str, list[frozenset[str]]] = {}
        for (export_id, _), checks in self.findings.items():
            by_export.setdefault(export_id, []).append(checks)
        status = {}
        for export_id, finding_sets in by_export.items():
            intact = any(not (checks & CRITICAL_CHECKS) for checks in finding_sets)  # missing_reference is critical
            if not intact:
                status[export_id] = "critical"
            else:
                status[export_id] = "warning" if any(finding_sets) else "healthy"
        return status


# Spellings of one instant that SPEC 1.6 accepts: style -> (offset in minutes, suffix).
_TIMESTAMP_STYLES = {"Z": (0, "Z"), "+01:00": (60, "+01:00"), "+02:00": (120, "+02:00"), "+0530": (330, "+0530"),
                     "-05": (-300, "-05"), "minutes": (0, "Z"), "nanos": (0, "Z")}


def _iso(moment: datetime, style: str = "Z") -> str:
    """Timestamp text: "Z" is the canonical 2026-11-20T06:00:00Z; the offset styles write the same
    instant at that offset; "minutes" leaves the seconds out; "nanos" writes nine fraction digits
    (the reader truncates them to the microsecond, so the instant is unchanged)."""
    offset, suffix = _TIMESTAMP_STYLES[style]
    local = moment.astimezone(timezone(timedelta(minutes=offset)))
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if style == "minutes":
        assert local.second == 0 and local.microsecond == 0, "only whole minutes can drop their seconds"
        text = local.strftime("%Y-%m-%dT%H:%M")
    elif style == "nanos":
        text += f".{local.microsecond:06d}789"
    elif local.microsecond:
        text += f".{local.microsecond:06d}"
    return text + suffix


def _digest(export_id: str, version: str = "v1") -> str:
    """A realistic digest: sha256 of a name, so it is fixed and needs no randomness."""
    return "sha256:" + hashlib.sha256(f"{export_id}/bundle/{version}".encode()).hexdigest()


@dataclass(frozen=True)
class _Export:
    export_id: str
    generated_at: datetime
    digest: str  # of the current state
    release_record_ref: str
    required_retain_until: datetime  # explicit, or generated_at + 2557 days


@dataclass
class _Row:
    sort_key: str  # rows are written stably sorted by it, so a file reads export by export
    value: dict[str, Any] | str  # a record, or a raw JSON line (malformed on purpose)
    reasons: frozenset[str] = frozenset()  # quarantine reasons a correct ingest gives it
    exact_duplicate: bool = False


_DEFAULT: Any = object()  # "use the usual value" for keyword arguments where None means null
_DROP: Any = object()  # a field left out of a record
_REQUIRED_RETENTION = timedelta(days=2557)


class _SampleBuilder:
    """Collects rows per log, the planted cases and the expected outcomes."""

    def __init__(self, as_of: datetime, rng: random.Random):
        self.as_of = as_of
        self.rng = rng
        self.rows: dict[str, list[_Row]] = {name: [] for name in LOG_NAMES}
        self.cases: list[PlantedCase] = []
        self.expected = Expectations()
        self._attempts = Counter()  # per export, to number attempt ids
        self.declared: dict[str, dict[str, Any]] = {}  # reference_id -> archive record

    # -- time ------------------------------------------------------------------------------
    def ago(self, days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
        return self.as_of - timedelta(days=days, hours=hours, minutes=minutes)

    def ahead(self, days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
        return self.as_of + timedelta(days=days, hours=hours, minutes=minutes)

    # -- bookkeeping -----------------------------------------------------------------------
    def case(self, log: str, record_id: str, covers: str) -> None:
        self.cases.append(PlantedCase(log, record_id, covers))

    def add(self, log: str, sort_key: str, value: dict[str, Any] | str, reasons: Iterable[str] = (),
            exact_duplicate: bool = False) -> None:
        self.rows[log].append(_Row(sort_key, value, frozenset(reasons), exact_duplicate))

    def duplicate_last(self, log: str) -> None:
        """Repeat the last row of a log: an exact duplicate, kept once by ingest."""
        last = self.rows[log][-1]
        self.add(log, last.sort_key, dict(last.value), exact_duplicate=True)

    def expect_plan(self, export_id: str, destination: str, reason_code: str, covers: str) -> None:
        self.expected.decisions[(export_id, destination)] = reason_code
        self.case("deliveries", f"{export_id} {destination}", f"{reason_code}: {covers}")

    def expect_recovered(self, export_id: str, destination: str, covers: str | None) -> None:
        self.expected.recovered.add((export_id, destination))
        if covers:
            self.case("deliveries", f"{export_id} {destination}", f"recovered: {covers}")

    # -- exports ---------------------------------------------------------------------------
    def export(self, number: int, *, age_days: float = 40,
               history: Iterable[tuple[str, datetime | None]] = (("verified", None),),
               required_retain_until: datetime | None = None, digest_versions: Iterable[str] | None = None,
               extra: dict[str, Any] | None = None) -> _Export:
        """An export with one record per state in `history` (state, updated_at; None: generated_at + 2h)."""
        export_id = f"exp-{number:06d}"
        generated_at = self.as_of - timedelta(days=age_days)
        history = list(history)
        versions = list(digest_versions or ["v1"] * len(history))
        release_record_ref = f"rel-2026-{number:04d}"
        for k, ((state, updated_at), version) in enumerate(zip(history, versions)):
            record: dict[str, Any] = {
                "export_id": export_id,
                "release_record_ref": release_record_ref,
                "verification_id": f"ver-{number:06d}-{k + 1}" if state == "verified" else None,
                "verification_state": state,
                "export_digest": _digest(export_id, version),
                "generated_at": _iso(generated_at),
                "updated_at": _iso(updated_at or generated_at + timedelta(hours=2)),
            }
            if required_retain_until is not None:  # otherwise absent: the default applies
                record["required_retain_until"] = _iso(required_retain_until)
            if extra and k == len(history) - 1:
                record.update(extra)
            self.add("exports", export_id, record)
        return _Export(export_id, generated_at, _digest(export_id, versions[-1]), release_record_ref,
                       required_retain_until or generated_at + _REQUIRED_RETENTION)

    # -- deliveries ------------------------------------------------------------------------
    def attempt(self, export_id: str, destination: str, attempted_at: datetime, outcome: str = "failed", *,
                status: int | str | None = None, code: str | None = None, retry_after: int | str | None = None,
                key: str | None = None, endpoint: str | None = _DEFAULT, kind: str | None = None,
                visibility: str | None = None, attempt_id: str | None = None, style: str = "Z",
                reasons: Iterable[str] = ()) -> dict[str, Any]:
        """One delivery attempt (a CSV row: every value is text, '' is null)."""
        if attempt_id is None:
            self._attempts[export_id] += 1
            attempt_id = f"att-{export_id[4:]}-{self._attempts[export_id]:02d}"
        default_kind, prefix = DESTINATIONS.get(destination, ("webhook", "https://hooks.example.com/"))
        if endpoint is _DEFAULT:
            endpoint = prefix if default_kind in ("webhook", "email") else f"{prefix}{export_id}.tar.zst"
        record = {
            "attempt_id": attempt_id,
            "export_id": export_id,
            "destination": destination,
            "connector_kind": kind if kind is not None else default_kind,
            "connector_visibility": visibility,
            "attempted_at": attempted_at if isinstance(attempted_at, str) else _iso(attempted_at, style),
            "outcome": outcome,
            "http_status": status,
            "error_code": code,
            "retry_after_seconds": retry_after,
            "idempotency_key": key,
            "endpoint": endpoint,
        }
        self.add("deliveries", export_id, record, reasons)
        return record

    def fail(self, export_id: str, destination: str, attempted_at: datetime, status: int | None = None,
             code: str | None = None, **kw: Any) -> dict[str, Any]:
        return self.attempt(export_id, destination, attempted_at, "failed", status=status, code=code, **kw)

    def deliver(self, export_id: str, destination: str, attempted_at: datetime, **kw: Any) -> dict[str, Any]:
        kind = DESTINATIONS.get(destination, ("webhook",))[0]
        status = None if kind in ("sftp", "email") else (200 if kind == "webhook" else 201)
        return self.attempt(export_id, destination, attempted_at, "delivered", status=status, **kw)

    # -- archives and custody checks --------------------------------------------------------
    def reference(self, export: _Export | str, suffix: str = "a", *, provider: str = "aws_s3_object_lock",
                  uri: str | None = None, digest: str | None = _DEFAULT, lock_mode: str | None = "compliance",
                  retain_until: datetime | None = _DEFAULT, legal_hold: bool | None = False,
                  archived_at: datetime | None = _DEFAULT, expect: Iterable[str] | None = (),
                  reasons: Iterable[str] = ()) -> str:
        """An archive reference. `expect`: the findings a correct run gives it (None: not checked)."""
        export_id = export if isinstance(export, str) else export.export_id
        reference_id = f"ref-{export_id[4:]}-{suffix}"
        if isinstance(export, _Export):
            digest = export.digest if digest is _DEFAULT else digest
            if retain_until is _DEFAULT:  # comfortably past the required retention
                retain_until = export.required_retain_until + timedelta(days=30)
            archived_at = export.generated_at + timedelta(hours=3) if archived_at is _DEFAULT else archived_at
        record = {
            "reference_id": reference_id,
            "export_id": export_id,
            "archive_uri": uri or _archive_uri(provider, export_id, suffix),
            "archive_provider": provider,
            "archived_digest": digest,
            "lock_mode": lock_mode,
            "retain_until": retain_until,
            "legal_hold": legal_hold,
            "archived_at": archived_at,
        }
        self.add("archives", export_id, record, reasons)
        self.declared[reference_id] = record
        if expect is not None and isinstance(export, _Export):
            self.expected.findings[(export_id, reference_id)] = frozenset(expect)
        return reference_id

    def check(self, reference_id: str, checked_at: datetime | str, present: bool | Any = True, *,
              digest: str | None = None, lock_mode: str | None = None, retain_until: datetime | None = None,
              legal_hold: bool | None = None, extra: dict[str, Any] | None = None, style: str = "Z",
              reasons: Iterable[str] = ()) -> None:
        """A custody check: an inventory listing (lock, retention) or a checksum job (digest)."""
        record: dict[str, Any] = {
            "reference_id": reference_id,
            "checked_at": checked_at if isinstance(checked_at, str) else _iso(checked_at, style),
            "object_present": present,
        }
        observed = {"observed_digest": digest, "observed_lock_mode": lock_mode,
                    "observed_retain_until": _iso(retain_until) if retain_until else None,
                    "observed_legal_hold": legal_hold}
        record.update({name: value for name, value in observed.items() if value is not None})
        record.update(extra or {})
        self.add("custody_checks", reference_id, record, reasons)

    def fresh_checks(self, reference_id: str, *, at: datetime | None = None, **observed: Any) -> None:
        """An inventory listing and a checksum job (yesterday unless `at`) that observe what was
        declared at archive time, except for the `observed` values given (lock_mode, retain_until,
        legal_hold, digest)."""
        at = at or self.ago(days=1)
        declared = self.declared[reference_id]
        listing = {"lock_mode": declared["lock_mode"], "retain_until": declared["retain_until"],
                   "legal_hold": declared["legal_hold"]}
        listing.update({name: value for name, value in observed.items() if name != "digest"})
        self.check(reference_id, at, **listing)
        self.check(reference_id, at + timedelta(hours=4), digest=observed.get("digest", declared["archived_digest"]))

    def healthy_reference(self, export: _Export, suffix: str = "a", provider: str = "aws_s3_object_lock",
                          uri: str | None = None) -> str:
        reference_id = self.reference(export, suffix, provider=provider, uri=uri)
        self.fresh_checks(reference_id)
        return reference_id


def _archive_uri(provider: str, export_id: str, suffix: str) -> str:
    version = hashlib.sha256(f"{export_id}-{suffix}".encode()).hexdigest()[:32]
    if provider == "aws_s3_object_lock":
        return f"s3://evidence-archive-prod/exports/{export_id}/bundle-{suffix}.tar.zst?versionId={version}"
    if provider == "azure_immutable_blob":
        return f"https://evidencearchive.blob.core.windows.net/worm/{export_id}-{suffix}.tar.zst"
    if provider == "gcs_bucket_lock":
        return f"gs://evidence-lock-prod/exports/{export_id}-{suffix}.tar.zst#{int(version[:12], 16)}"
    return f"file:///srv/worm/exports/{export_id}-{suffix}.tar.zst"


# ---------------------------------------------------------------------------------------------
# SPEC 2: the retry plan. One export per case (exp-000001..), each verified with a healthy
# archive reference (so only the plan is exercised) unless the case says otherwise.
# ---------------------------------------------------------------------------------------------


def _plan_export(b: _SampleBuilder, number: int, **kw: Any) -> _Export:
    export = b.export(number, **kw)
    b.healthy_reference(export)
    return export


def _retry_plan_cases(b: _SampleBuilder) -> None:
    ago = b.ago
    # Rules 8-9: backoff = 15 min x 2^(failed-1); delay = max(backoff, Retry-After).
    e = _plan_export(b, 1).export_id
    b.fail(e, "grc-webhook", ago(hours=2), 503)
    b.expect_plan(e, "grc-webhook", "eligible", "one 503 (unavailable) 2 h ago, 15 min backoff elapsed")

    e = _plan_export(b, 2).export_id
    b.fail(e, "grc-webhook", ago(minutes=15), 503)
    b.expect_plan(e, "grc-webhook", "eligible", "next_attempt_at == as_of exactly (not > as_of)")

    e = _plan_export(b, 3).export_id
    b.fail(e, "grc-webhook", ago(hours=1), 503, style="+02:00")
    b.fail(e, "grc-webhook", ago(minutes=10), 503, style="+0530")
    b.expect_plan(e, "grc-webhook", "backoff_pending",
                  "2 failures, 30 min backoff ends in 20 min; offsets +02:00/+0530")

    e = _plan_export(b, 4).export_id
    b.fail(e, "grc-webhook", ago(minutes=10), 429, "throttled", retry_after=3600)
    b.expect_plan(e, "grc-webhook", "retry_after_pending", "throttled (429), Retry-After 3600 s > 900 s backoff")

    e = _plan_export(b, 5).export_id
    b.fail(e, "grc-webhook", ago(minutes=5), 429, retry_after=900)
    b.expect_plan(e, "grc-webhook", "backoff_pending", "Retry-After 900 s == backoff (not >), next in 10 min")

    e = _plan_export(b, 6).export_id
    b.fail(e, "grc-webhook", ago(hours=3), None, "rate_limited", retry_after=60)
    b.expect_plan(e, "grc-webhook", "eligible", "throttled by error_code rate_limited, null http_status")

    e = _plan_export(b, 7).export_id
    for hours in (20, 10, 3, 0.5):
        b.fail(e, "audit-sftp", ago(hours=hours), None, "connection_refused", style="-05")
    b.expect_plan(e, "audit-sftp", "backoff_pending", "unavailable by error_code, 4 failures (< 5), 120 min backoff")

    e = _plan_export(b, 8).export_id
    b.fail(e, "grc-webhook", ago(hours=1), 502)
    b.expect_plan(e, "grc-webhook", "unsafe_without_idempotency_key", "ambiguous 502 on webhook, no key")

    e = _plan_export(b, 9).export_id
    b.fail(e, "evidence-bucket", ago(hours=1), 504, kind=" S3 ")
    b.expect_plan(e, "evidence-bucket", "eligible",
                  "ambiguous 504, no key, connector_kind ' S3 ' normalised to s3 (idempotent kind)")

    e = _plan_export(b, 10).export_id
    b.fail(e, "grc-webhook", ago(hours=2), 500, key="idem-000010-grc", style="nanos")
    b.expect_plan(e, "grc-webhook", "eligible", "ambiguous 500 with idempotency key; 9 fraction digits")

    e = _plan_export(b, 11).export_id
    b.fail(e, "grc-webhook", ago(hours=1), 200, "timeout")
    b.expect_plan(e, "grc-webhook", "unsafe_without_idempotency_key",
                  "failed attempt with http 200: error_code timeout decides (ambiguous)")

    e = _plan_export(b, 12).export_id
    b.fail(e, "auditor-mailbox", ago(hours=1), 599)
    b.expect_plan(e, "auditor-mailbox", "unsafe_without_idempotency_key", "599, a 5xx named nowhere: ambiguous")

    e = _plan_export(b, 13).export_id
    b.fail(e, "grc-webhook", ago(hours=1), 404, "not_found")
    b.expect_plan(e, "grc-webhook", "permanent_error", "404 not_found")

    e = _plan_export(b, 14).export_id
    b.fail(e, "grc-webhook", ago(hours=1), 501)
    b.expect_plan(e, "grc-webhook", "permanent_error", "501, a permanent 5xx")

    e = _plan_export(b, 15).export_id
    b.fail(e, "audit-sftp", ago(hours=1), None, "auth_failed")
    b.expect_plan(e, "audit-sftp", "permanent_error", "permanent by error_code auth_failed, null http_status")

    e = _plan_export(b, 16).export_id
    b.fail(e, "grc-webhook", ago(hours=1), 429, "not_found")
    b.expect_plan(e, "grc-webhook", "eligible", "429 with error_code not_found: http_status decides (throttled)")

    e = _plan_export(b, 17).export_id
    b.fail(e, "grc-webhook", ago(hours=1))
    b.expect_plan(e, "grc-webhook", "unclassified_error", "no http_status, no error_code: unknown")

    e = _plan_export(b, 18).export_id
    b.fail(e, "audit-sftp", ago(hours=1), None, " TLS_Handshake_Failed\t")
    b.expect_plan(e, "audit-sftp", "eligible", "error_code ' TLS_Handshake_Failed\\t' trimmed, lowercased: unavailable")

    e = _plan_export(b, 19).export_id
    b.fail(e, "auditor-mailbox", ago(hours=1), 302, "mailbox_full")
    b.expect_plan(e, "auditor-mailbox", "unclassified_error", "302 + unlisted error_code mailbox_full: unknown")

    e = _plan_export(b, 20).export_id
    for hours in (10, 8, 6, 4, 1):
        b.fail(e, "grc-webhook", ago(hours=hours), 503)
    b.expect_plan(e, "grc-webhook", "attempts_exhausted", "5 failed attempts (= max_attempts)")

    e = _plan_export(b, 21).export_id
    for hours in (12, 10, 8, 4):
        b.fail(e, "grc-webhook", ago(hours=hours), 503)
    b.duplicate_last("deliveries")
    b.expect_plan(e, "grc-webhook", "eligible", "4 failures + 1 exact duplicate row: counts 4, not exhausted")

    e = _plan_export(b, 22).export_id
    b.fail(e, "grc-webhook", ago(days=8), 503)
    b.fail(e, "grc-webhook", ago(days=2), 503)
    b.expect_plan(e, "grc-webhook", "delivery_expired", "first attempt 8 days before as_of")

    e = _plan_export(b, 23).export_id
    b.fail(e, "grc-webhook", ago(days=7), 503)
    b.fail(e, "grc-webhook", ago(days=1), 503)
    b.expect_plan(e, "grc-webhook", "eligible", "first attempt exactly 7 days before as_of (not > max age)")

    e = _plan_export(b, 24).export_id
    b.fail(e, "grc-webhook", ago(hours=3), 404, "not_found")  # att-000024-01
    b.fail(e, "grc-webhook", ago(hours=3), 503)  # att-000024-02: same instant, greater id, so the last
    b.expect_plan(e, "grc-webhook", "eligible", "tie on attempted_at: greatest attempt_id (503) is the last")

    e = _plan_export(b, 25).export_id
    b.fail(e, "grc-webhook", ago(hours=3), 503, attempt_id="att-000025-B")
    b.fail(e, "grc-webhook", ago(hours=3), 404, "not_found", attempt_id="att-000025-a")
    b.expect_plan(e, "grc-webhook", "permanent_error",
                  "tie on attempted_at: 'att-000025-a' > 'att-000025-B' by code point (404 is the last)")

    e = _plan_export(b, 26).export_id
    b.fail(e, "grc-webhook", ago(hours=5), 503)
    b.deliver(e, "grc-webhook", ago(hours=4))
    b.expect_recovered(e, "grc-webhook", "failed then delivered")

    e = _plan_export(b, 27).export_id
    b.deliver(e, "evidence-bucket", ago(hours=6))
    b.fail(e, "evidence-bucket", ago(hours=1), 500)
    b.expect_recovered(e, "evidence-bucket", "delivered then failed (any order)")

    e = _plan_export(b, 28).export_id
    b.fail(e, "grc-webhook", ago(hours=1), 503)
    b.deliver(e, "grc-webhook", b.ahead(hours=1))
    b.expect_plan(e, "grc-webhook", "eligible", "delivered attempt after as_of is ignored: still planned")

    e = _plan_export(b, 29).export_id
    b.fail(e, "grc-webhook", b.ahead(hours=2), 503)
    b.case("deliveries", f"{e} grc-webhook", "not planned: its only (failed) attempt is after as_of")

    # Rule 1: no export record at or before as_of.
    b.fail("exp-000030", "grc-webhook", ago(hours=1), 503)
    b.expect_plan("exp-000030", "grc-webhook", "export_unknown", "no export record at all")

    e31 = b.export(31, age_days=1, history=[("verified", b.ahead(days=1))])
    b.fail(e31.export_id, "grc-webhook", ago(hours=1), 503)
    b.expect_plan(e31.export_id, "grc-webhook", "export_unknown", "its only export record is dated after as_of")
    ref = b.reference(e31.export_id, archived_at=ago(hours=12), digest=e31.digest,
                      retain_until=e31.required_retain_until, expect=None)
    b.expected.orphans.add(ref)
    b.case("archives", ref, "orphan_reference: its export's only record is after as_of")

    # Rule 2: current state not verified.
    e32 = b.export(32, history=[("incomplete", None)])
    b.fail(e32.export_id, "grc-webhook", ago(hours=1), 503)
    b.expect_plan(e32.export_id, "grc-webhook", "export_not_verified", "current state incomplete")
    b.expected.unchecked_references.add(b.reference(e32, expect=None))

    e33 = b.export(33, history=[("verified", None), ("superseded", ago(days=2))])
    b.fail(e33.export_id, "grc-webhook", ago(hours=1), 404, "not_found")
    b.expect_plan(e33.export_id, "grc-webhook", "export_not_verified",
                  "verified then superseded (current = greatest updated_at); rule 2 before rule 5")
    b.expected.unchecked_references.add(b.reference(e33, expect=None))

    e = _plan_export(b, 34, history=[("verified", None), ("failed", b.ahead(days=1))]).export_id
    b.fail(e, "grc-webhook", ago(hours=1), 503)
    b.expect_plan(e, "grc-webhook", "eligible", "verified; a 'failed' state dated after as_of is ignored")

    # SPEC 5 on endpoints: credentials and private hosts that redaction must remove.
    e = _plan_export(b, 35).export_id
    b.fail(e, "partner-grc-gateway", ago(hours=1), 503, kind="webhook", visibility="private",
           endpoint=f"https://{_PRIVATE_CONNECTOR_HOST}/ingest/v2")
    b.expect_plan(e, "partner-grc-gateway", "eligible", "private connector: its host must become [private]")

    e = _plan_export(b, 36).export_id
    b.fail(e, "grc-webhook", ago(hours=2), 500, key="idem-000036-grc", visibility="public",
           endpoint=f"https://svc-export:{_DELIVERY_PASSWORD}@grc.example.com/api/v2/evidence")
    b.expect_plan(e, "grc-webhook", "eligible", "endpoint with user:password@")

    e = _plan_export(b, 37).export_id
    b.fail(e, "evidence-bucket", ago(hours=1), 503,
           endpoint=_presigned_s3(f"https://evidence-drop-prod.s3.eu-west-1.amazonaws.com/exports/{e}.tar.zst",
                                  _AMZ_SIGNATURE))
    b.expect_plan(e, "evidence-bucket", "eligible", "S3 presigned endpoint (X-Amz-Signature, AKIA credential)")

    e = _plan_export(b, 38).export_id
    b.fail(e, "azure-evidence", ago(hours=1), 408,
           endpoint=_azure_sas(f"https://auditevidence.blob.core.windows.net/exports/{e}.tar.zst", _AZURE_SIG))
    b.expect_plan(e, "azure-evidence", "eligible", "ambiguous 408 on azure_blob (idempotent kind); Azure SAS sig=")

    e = _plan_export(b, 39).export_id
    on_the_minute = (b.as_of - timedelta(hours=1)).replace(second=0, microsecond=0)
    b.fail(e, "grc-webhook", on_the_minute, 429, retry_after=600, style="minutes",
           endpoint=f"https://hooks.grc-vendor.example/v1/evidence?token={_WEBHOOK_TOKEN}")
    b.expect_plan(e, "grc-webhook", "eligible", "endpoint with token= query; timestamp without seconds")

    e = _plan_export(b, 40).export_id
    private_endpoints = [
        ("relay-webhook", "webhook", 503, None, "https://10.20.30.40:8443/evidence/hook"),
        ("audit-sftp", "sftp", None, "network_unreachable", f"sftp://192.168.14.7/inbound/{e}.tar.zst"),
        ("local-collector", "webhook", None, "connection_refused", "http://127.0.0.1:9000/collect"),
        ("relay-internal", "webhook", 503, None, "https://evidence-relay.internal/api/v1/evidence"),
        ("corp-grc", "webhook", 502, None, "https://grc.acme.corp/upload"),
    ]
    for destination, kind, status, code, endpoint in private_endpoints:
        key = "idem-000040-corp" if destination == "corp-grc" else None
        b.fail(e, destination, ago(hours=1), status, code, kind=kind, endpoint=endpoint, key=key)
        b.expect_plan(e, destination, "eligible", f"private host in endpoint ({endpoint.split('/')[2]})")

    e = _plan_export(b, 41).export_id
    b.fail(e, "gcs-evidence", ago(minutes=30), 500, retry_after=7200)
    b.expect_plan(e, "gcs-evidence", "retry_after_pending",
                  "ambiguous 500 on gcs (idempotent): Retry-After applies whatever the class")

    e = _plan_export(b, 42).export_id
    for hours in (3, 2, 0.5):
        b.fail(e, "grc-webhook", ago(hours=hours), 503, retry_after=120)
    b.expect_plan(e, "grc-webhook", "backoff_pending", "3 failures: 60 min backoff > Retry-After 120 s")

    e = _plan_export(b, 43).export_id
    for hours in (9, 7, 5, 3, 1):
        b.fail(e, "grc-webhook", ago(hours=hours))
    b.expect_plan(e, "grc-webhook", "attempts_exhausted", "5 unclassified failures: rule 3 before rule 6")

    e = _plan_export(b, 44).export_id
    b.deliver(e, "grc-webhook", ago(days=3), retry_after=30)
    b.fail(e, "evidence-bucket", ago(days=3), 200, "timeout")
    b.deliver(e, "evidence-bucket", ago(days=3) + timedelta(minutes=20))
    b.expect_recovered(e, "evidence-bucket", "no cross-field validation: Retry-After on a delivered attempt, "
                                             "200 on a failed one")

    # exp-000045: conflicting duplicate attempts (quarantined) next to a valid one.
    e = _plan_export(b, 45).export_id
    b.fail(e, "grc-webhook", ago(hours=2), 503)
    for status in (503, 502):
        b.fail(e, "grc-webhook", ago(minutes=30), status, attempt_id="att-000045-02",
               reasons=["conflicting_duplicate"])
    b.expect_plan(e, "grc-webhook", "eligible", "two conflicting rows of att-000045-02 quarantined; 1 failure left")


# ---------------------------------------------------------------------------------------------
# SPEC 3: archive reference health. One verified export per case (exp-000101..), generated
# 40 days before as_of; a healthy reference is compliance-locked past the required retention,
# digest as exported, checked yesterday (inventory + checksum).
# ---------------------------------------------------------------------------------------------


def _archive_health_cases(b: _SampleBuilder) -> None:
    ago, ahead = b.ago, b.ahead

    def case(export: _Export, covers: str) -> None:
        b.case("archives", export.export_id, covers)

    e = b.export(101)
    b.healthy_reference(e)
    case(e, "healthy: one intact reference, nothing to report")

    e = b.export(102)
    ref = b.reference(e, expect=["object_missing"])
    b.fresh_checks(ref, at=ago(days=2))
    b.check(ref, ago(hours=6), present=False)
    case(e, "object_missing: latest check found the object gone")

    e = b.export(103)
    ref = b.reference(e)
    b.check(ref, ago(days=3), present=False)
    b.fresh_checks(ref)
    case(e, "healthy: an earlier check found it missing, the latest found it back")

    e = b.export(104)
    ref = b.healthy_reference(e)
    b.check(ref, ahead(hours=1), present=False)
    case(e, "healthy: a 'missing' check dated after as_of is ignored")

    e = b.export(105)
    ref = b.reference(e, digest=_digest(e.export_id, "tampered"), expect=["digest_mismatch"])
    b.check(ref, ago(days=1), lock_mode="compliance")
    case(e, "digest_mismatch: archived_digest differs, no observed digest")

    e = b.export(106)
    ref = b.reference(e, digest=_digest(e.export_id, "typo"))
    b.fresh_checks(ref, digest=e.digest)
    case(e, "healthy: wrong archived_digest, but the observed digest (which wins) matches")

    e = b.export(107)
    ref = b.reference(e, expect=["digest_mismatch"])
    b.check(ref, ago(days=1), lock_mode="compliance")
    b.check(ref, ago(hours=20), digest=_digest(e.export_id, "bitrot"))
    case(e, "digest_mismatch: archived digest right, observed digest (bit rot) wrong")

    e = b.export(108)
    ref = b.reference(e, digest=None, expect=["digest_unverifiable"])
    b.check(ref, ago(days=1), lock_mode="compliance")
    case(e, "digest_unverifiable: no archived and no observed digest")

    e = b.export(109)
    ref = b.reference(e, digest=None)
    b.check(ref, ago(days=3), digest=e.digest)
    b.check(ref, ago(days=1), lock_mode="compliance")
    case(e, "healthy: latest non-null observed_digest comes from an older check")

    e = b.export(110)
    ref = b.reference(e, provider="filesystem", lock_mode="none", retain_until=None, expect=["not_immutable"])
    b.check(ref, ago(days=1), digest=e.digest, lock_mode="none")
    case(e, "not_immutable: lock_mode none, no legal hold")

    e = b.export(111)
    ref = b.reference(e, provider="gcs_bucket_lock", lock_mode=None, legal_hold=None, expect=["not_immutable"])
    b.check(ref, ago(days=1), digest=e.digest)
    case(e, "not_immutable: lock_mode and legal_hold null (defaults none / false)")

    e = b.export(112)
    ref = b.reference(e, provider="filesystem", lock_mode="none", retain_until=None, legal_hold=True)
    b.check(ref, ago(days=1), digest=e.digest)
    case(e, "healthy: lock none but legal hold (no retention_missing: lock is none)")

    e = b.export(113)
    ref = b.reference(e, expect=["not_immutable"])
    b.check(ref, ago(days=1), digest=e.digest, lock_mode="none")
    case(e, "not_immutable: declared compliance, observed lock none overrides")

    e = b.export(114)
    ref = b.reference(e, provider="azure_immutable_blob", lock_mode="governance", expect=["governance_mode"])
    b.fresh_checks(ref)
    case(e, "governance_mode: Azure unlocked policy")

    e = b.export(115)
    ref = b.reference(e, retain_until=None, expect=["retention_missing"])
    b.check(ref, ago(days=1), digest=e.digest, lock_mode="compliance")
    case(e, "retention_missing: compliance without retain_until")

    e = b.export(116)
    ref = b.reference(e, retain_until=ago(days=10), expect=["retention_expired", "retention_short"])
    b.fresh_checks(ref)
    case(e, "retention_expired (+ retention_short): retain_until 10 days before as_of")

    e = b.export(117)
    ref = b.reference(e, retain_until=b.as_of, expect=["retention_expired", "retention_short"])
    b.fresh_checks(ref)
    case(e, "retention_expired: retain_until == as_of exactly")

    e = b.export(118)
    ref = b.reference(e, retain_until=ago(days=10), legal_hold=True, expect=["retention_short"])
    b.fresh_checks(ref)
    case(e, "legal hold: no retention_expired, retention_short still fires")

    e = b.export(119, required_retain_until=ahead(days=5))
    ref = b.reference(e, retain_until=ahead(days=10), expect=["retention_expiring"])
    b.fresh_checks(ref)
    case(e, "retention_expiring: 10 days left; explicit required_retain_until (as_of + 5 d) met")

    e = b.export(120, required_retain_until=ahead(days=1))
    ref = b.reference(e, retain_until=ahead(days=30), expect=["retention_expiring"])
    b.fresh_checks(ref)
    case(e, "retention_expiring: retain_until == as_of + 30 days exactly")

    e = b.export(121)
    ref = b.reference(e, retain_until=e.generated_at + timedelta(days=5 * 365), expect=["retention_short"])
    b.fresh_checks(ref)
    case(e, "retention_short: 5 years < 2557 days after generated_at")

    e = b.export(122, required_retain_until=b.ago(days=40) + timedelta(days=3650))
    ref = b.reference(e, retain_until=e.generated_at + _REQUIRED_RETENTION + timedelta(days=30),
                      expect=["retention_short"])
    b.fresh_checks(ref)
    case(e, "retention_short: explicit required_retain_until (10 years) beats the 7-year default")

    e = b.export(123)
    ref = b.reference(e, retain_until=e.generated_at + timedelta(days=5 * 365))
    b.fresh_checks(ref, retain_until=e.required_retain_until + timedelta(days=30))
    case(e, "healthy: declared retention short, observed (extended) retention overrides")

    e = b.export(124)
    b.reference(e, expect=["check_stale"])
    case(e, "check_stale: no custody check at all")

    e = b.export(125)
    ref = b.reference(e, expect=["check_stale"])
    b.fresh_checks(ref, at=ago(days=8, hours=4))
    case(e, "check_stale: latest check 8 days old")

    e = b.export(126)
    ref = b.reference(e)
    b.check(ref, ago(days=7, hours=1), digest=e.digest)
    b.check(ref, ago(days=7), lock_mode="compliance")
    case(e, "healthy: latest check exactly 7 days old (not stale)")

    e = b.export(127)
    ref = b.reference(e, archived_at=ago(days=2))
    b.check(ref, ago(days=2, hours=1), digest=e.digest, lock_mode="compliance")
    case(e, "healthy: its only check is dated before archived_at, and still counts")

    e = b.export(128)
    b.expected.findings[(e.export_id, None)] = frozenset({"missing_reference"})
    case(e, "missing_reference: verified, no archive record")

    e = b.export(129)
    ref = b.reference(e, archived_at=ahead(hours=2), expect=None)
    b.check(ref, ago(hours=1), digest=e.digest)
    b.expected.findings[(e.export_id, None)] = frozenset({"missing_reference"})
    case(e, "missing_reference: its reference is archived after as_of; that ref's check is not unmatched")

    e = b.export(130)
    ref = b.reference(e, "a", expect=["object_missing"])
    b.check(ref, ago(days=1), present=False)
    b.healthy_reference(e, "b", provider="azure_immutable_blob")
    case(e, "two references, one intact: represented, custody_status warning")

    e = b.export(131)
    b.fresh_checks(b.reference(e, "a", digest=_digest(e.export_id, "v0"), expect=["digest_mismatch"]))
    ref = b.reference(e, "b", provider="filesystem", lock_mode="none", retain_until=None, expect=["not_immutable"])
    b.check(ref, ago(days=1), digest=e.digest)
    case(e, "two references, none intact: unrepresented, custody_status critical")

    e = b.export(132)
    b.fresh_checks(b.reference(e, "a", retain_until=ago(days=1), expect=["retention_expired", "retention_short"]))
    ref = b.reference(e, "b", provider="azure_immutable_blob", lock_mode="governance", expect=["governance_mode"])
    b.fresh_checks(ref)
    case(e, "two references: one critical, one with a warning only (intact): warning")

    e = b.export(133, history=[("verified", None), ("verified", ago(days=5))], digest_versions=["v1", "v2"])
    ref = b.reference(e, digest=_digest(e.export_id, "v1"), expect=["digest_mismatch"])
    b.check(ref, ago(days=1), digest=_digest(e.export_id, "v1"), lock_mode="compliance")
    case(e, "digest_mismatch: re-exported (v2); the reference holds v1 of an older state")

    e = b.export(134, history=[("verified", None), ("superseded", ago(days=3))])
    ref = b.reference(e, "a", expect=None)
    b.fresh_checks(ref)
    b.expected.unchecked_references.add(ref)
    b.expected.unchecked_references.add(
        b.reference(e, "b", provider="filesystem", lock_mode="none", retain_until=None, expect=None))
    case(e, "superseded: its 2 references are not checked (unchecked_references)")

    e = b.export(135, history=[("incomplete", None)])
    b.expected.unchecked_references.add(b.reference(e, expect=None))
    case(e, "incomplete: its reference is not checked")

    e = b.export(136, history=[("incomplete", None), ("verified", ago(days=20))])
    b.healthy_reference(e)
    case(e, "incomplete then verified: checked, healthy")

    e = b.export(137, history=[("verified", None), ("failed", ahead(days=1))])
    b.healthy_reference(e)
    case(e, "a 'failed' state after as_of is ignored: checked, healthy")

    ref = b.reference("exp-000138", digest=_digest("exp-000138"), archived_at=ago(days=30),
                      retain_until=ahead(days=2600), expect=None)
    b.check(ref, ago(days=1), lock_mode="compliance")
    b.expected.orphans.add(ref)
    b.case("archives", ref, "orphan_reference: no export record at all")

    b.check("ref-000139-x", ago(days=1), lock_mode="compliance")
    b.check("ref-000139-x", ago(hours=20), present=False)
    b.expected.unmatched_custody_checks += 2
    b.case("custody_checks", "ref-000139-x", "2 unmatched custody checks: reference in no archive record")

    e = b.export(140)
    ref = b.reference(e, expect=["object_missing", "not_immutable"])
    b.check(ref, ago(days=2), digest=e.digest)
    b.check(ref, ago(hours=8), present=False, lock_mode="none")
    case(e, "object_missing + not_immutable: a 'missing' check still contributes observed values")

    e = b.export(142)
    ref = b.reference(e, provider="filesystem", lock_mode="none", retain_until=ago(days=5),
                      expect=["not_immutable", "retention_expired", "retention_short"])
    b.check(ref, ago(days=1), digest=e.digest)
    case(e, "retention checks apply whatever the lock mode: none + expired + short")

    e = b.export(143)
    ref = b.reference(e, provider="azure_immutable_blob", lock_mode="governance", retain_until=None,
                      expect=["governance_mode", "retention_missing"])
    b.check(ref, ago(days=1), digest=e.digest, lock_mode="governance")
    case(e, "governance_mode + retention_missing: two warnings, still intact")

    e = b.export(144)
    ref = b.reference(e, provider="filesystem", lock_mode="none", retain_until=None)
    b.check(ref, ago(days=1), digest=e.digest, legal_hold=True)
    case(e, "healthy: lock none, but an observed legal hold")

    e = b.export(145)
    b.healthy_reference(e, "a")
    b.reference(e, "b", provider="filesystem", lock_mode="none", archived_at=ahead(days=1), expect=None)
    case(e, "healthy: its second (non-immutable) reference is archived after as_of")

    e = b.export(146)
    ref = b.reference(e)
    b.fresh_checks(ref, at=ago(days=2))
    for present in (True, False):
        b.check(ref, ago(days=1), present=present, reasons=["conflicting_duplicate"])
    case(e, "healthy: two conflicting checks at the same checked_at are quarantined")

    e = b.export(147)
    for days in (2600, 2700):  # same reference_id, different retain_until: both quarantined
        b.reference(e, retain_until=e.generated_at + timedelta(days=days), expect=None,
                    reasons=["conflicting_duplicate"])
    b.expected.findings[(e.export_id, None)] = frozenset({"missing_reference"})
    case(e, "missing_reference: its only reference is a conflicting duplicate (quarantined)")

    # SPEC 5 on archive URIs: credentials and private hosts; otherwise healthy.
    credential_uris = [
        (150, "minio_object_lock",
         f"https://archiver:{_ARCHIVE_PASSWORD}@files.evidence.example.com/worm/exp-000150.tar.zst",
         "user:password@ in archive_uri; provider not in the usual list"),
        (151, "azure_immutable_blob",
         _azure_sas("https://evidencearchive.blob.core.windows.net/worm/exp-000151.tar.zst", _AZURE_ARCHIVE_SIG),
         "Azure SAS sig= in archive_uri"),
        (152, "aws_s3_object_lock",
         _presigned_s3("https://evidence-archive-prod.s3.amazonaws.com/exports/exp-000152/bundle.tar.zst",
                       _AMZ_ARCHIVE_SIGNATURE),
         "S3 presigned archive_uri"),
        (153, "gcs_bucket_lock",
         "https://storage.googleapis.com/evidence-lock-prod/exports/exp-000153.tar.zst"
         "?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=archiver%40evidence.iam.gserviceaccount.com"
         f"%2F20261119%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Expires=900&X-Goog-Signature={_GOOG_SIGNATURE}",
         "GCS signed archive_uri"),
        (154, "filesystem", "sftp://nas01.vault.internal/worm/exp-000154.tar.zst",
         "private host (.internal) in archive_uri"),
        (155, "filesystem", "https://192.168.50.12/worm/exp-000155.tar.zst", "private address in archive_uri"),
        (156, "aws_s3_object_lock",
         f"https://archive.evidence.example.com/objects/exp-000156.tar.zst?token={_ARCHIVE_TOKEN}",
         "token= query in archive_uri"),
    ]
    for number, provider, uri, covers in credential_uris:
        e = b.export(number)
        b.healthy_reference(e, provider=provider, uri=uri)
        case(e, f"healthy; {covers}")


# ---------------------------------------------------------------------------------------------
# SPEC 1.5: records that break the contract (exp-00095x..), each with the reasons it earns.
# ---------------------------------------------------------------------------------------------


def _quarantine_cases(b: _SampleBuilder) -> None:
    ago = b.ago
    day_before = ago(days=2)
    naive = _iso(day_before).removesuffix("Z")

    def bad_export(number: int, reasons: list[str], covers: str, **changes: Any) -> None:
        export_id = f"exp-{number:06d}"
        record = {
            "export_id": export_id, "release_record_ref": f"rel-2026-{number:04d}",
            "verification_id": None, "verification_state": "verified", "export_digest": _digest(export_id),
            "generated_at": _iso(ago(days=3)), "updated_at": _iso(day_before),
        }
        record.update(changes)
        record = {name: value for name, value in record.items() if value is not _DROP}
        b.add("exports", export_id, record, reasons)
        b.case("exports", export_id, f"quarantine {'+'.join(reasons)}: {covers}")

    b.add("exports", "exp-000951",
          '{"export_id": "exp-000951", "release_record_ref": "rel-2026-0951", "verification_state": "verified", '
          f'"note": "re-upload with {_LEAKED_KEY_ID} via https://hooks.grc-vendor.example/v1/evidence?token='
          f'{_WEBHOOK_TOKEN}", "export_digest": "sha256:', ["malformed_json"])
    b.case("exports", "exp-000951", "quarantine malformed_json: truncated line holding an AKIA key and a token URL")
    b.add("exports", "exp-000952", f'["exp-000952", "verified", "{_digest("exp-000952")}"]', ["malformed_json"])
    b.case("exports", "exp-000952", "quarantine malformed_json: a JSON array, not an object")
    bad_export(953, ["missing_required_field"], "release_record_ref absent", release_record_ref=_DROP)
    bad_export(954, ["missing_required_field"], 'export_digest ""', export_digest="")
    bad_export(955, ["wrong_type"], "release_record_ref is the number 4711", release_record_ref=4711)
    bad_export(956, ["wrong_type"], "generated_at is an epoch number", generated_at=1794556800)
    bad_export(957, ["unknown_enum_value"], "verification_state approved", verification_state="approved")
    bad_export(958, ["unknown_enum_value"], "verification_state Verified (case)", verification_state="Verified")
    bad_export(959, ["naive_timestamp"], "updated_at without offset", updated_at=naive)
    bad_export(960, ["invalid_timestamp"], "space instead of T", updated_at=_iso(day_before).replace("T", " "))
    bad_export(961, ["invalid_timestamp"], "lower-case z", updated_at=_iso(day_before).replace("Z", "z"))
    bad_export(962, ["invalid_timestamp"], "February 30th", generated_at=f"{b.as_of.year}-02-30T10:00:00Z")
    bad_export(963, ["malformed_digest"], "upper-case hex", export_digest=_digest("exp-000963").upper()
               .replace("SHA256:", "sha256:"))
    bad_export(964, ["malformed_digest"], "63 hex characters", export_digest=_digest("exp-000964")[:-1])
    bad_export(965, ["naive_timestamp", "malformed_digest"], "two reasons on one record",
               updated_at=naive, export_digest="md5:" + "0" * 32)
    # A conflicting pair (same export_id and updated_at) after a valid earlier state.
    b.export(970, history=[("incomplete", ago(days=39))])
    for state in ("verified", "failed"):
        record = {"export_id": "exp-000970", "release_record_ref": "rel-2026-0970", "verification_id": None,
                  "verification_state": state, "export_digest": _digest("exp-000970"),
                  "generated_at": _iso(ago(days=40)), "updated_at": _iso(day_before)}
        b.add("exports", "exp-000970", record, ["conflicting_duplicate"])
    b.case("exports", "exp-000970", "quarantine conflicting_duplicate: two states at one updated_at "
                                    "(current state stays the earlier 'incomplete')")
    # A delivery whose export has only a quarantined record: the export is unknown.
    b.fail("exp-000959", "grc-webhook", ago(hours=1), 503)
    b.expect_plan("exp-000959", "grc-webhook", "export_unknown", "its only export record is quarantined")

    # deliveries.csv
    def bad_attempt(number: int, reasons: list[str], covers: str, **changes: Any) -> None:
        export_id = f"exp-{number:06d}"
        record = b.attempt(export_id, "grc-webhook", ago(hours=2), "failed", status=503, reasons=reasons)
        record.update(changes)
        b.case("deliveries", record["attempt_id"] or export_id, f"quarantine {'+'.join(reasons)}: {covers}")

    bad_attempt(971, ["wrong_type"], 'http_status "abc"', http_status="abc")
    bad_attempt(972, ["wrong_type"], 'retry_after_seconds "12.5"', retry_after_seconds="12.5")
    bad_attempt(973, ["out_of_range"], "http_status 700; endpoint with token= in the raw text", http_status=700,
                endpoint=f"https://hooks.grc-vendor.example/v1/evidence?token={_WEBHOOK_TOKEN}")
    bad_attempt(974, ["out_of_range"], "retry_after_seconds 40000000", http_status=429, retry_after_seconds=40_000_000)
    bad_attempt(975, ["out_of_range"], "http_status 99", http_status=99)
    bad_attempt(976, ["unknown_enum_value"], "outcome success", outcome="success")
    bad_attempt(977, ["unknown_enum_value"], "connector_visibility internal", connector_visibility="internal")
    bad_attempt(978, ["missing_required_field"], "attempt_id empty", attempt_id="")
    bad_attempt(979, ["missing_required_field"], "connector_kind blank after trimming", connector_kind="   ")
    bad_attempt(980, ["naive_timestamp"], "attempted_at without offset", attempted_at=naive)
    bad_attempt(981, ["invalid_timestamp"], "space instead of T", attempted_at=_iso(day_before).replace("T", " "))
    bad_attempt(982, ["invalid_timestamp"], "lower-case z", attempted_at=_iso(day_before).replace("Z", "z"))

    # archives.parquet: native types, so no type or timestamp text faults here.
    def bad_reference(number: int, reasons: list[str], covers: str, **changes: Any) -> None:
        export_id = f"exp-{number:06d}"
        record = {"reference_id": f"ref-{number:06d}-a", "export_id": export_id,
                  "archive_uri": _archive_uri("aws_s3_object_lock", export_id, "a"),
                  "archive_provider": "aws_s3_object_lock", "archived_digest": _digest(export_id),
                  "lock_mode": "compliance", "retain_until": ago(days=3) + _REQUIRED_RETENTION,
                  "legal_hold": False, "archived_at": ago(days=3)}
        record.update(changes)
        b.add("archives", export_id, record, reasons)
        b.case("archives", record["reference_id"], f"quarantine {'+'.join(reasons)}: {covers}")

    bad_reference(983, ["missing_required_field"], "archive_uri null", archive_uri=None)
    bad_reference(984, ["missing_required_field"], "archived_at null", archived_at=None)
    bad_reference(985, ["unknown_enum_value"], "lock_mode worm", lock_mode="worm")
    bad_reference(986, ["unknown_enum_value"], "lock_mode COMPLIANCE (case)", lock_mode="COMPLIANCE")
    bad_reference(987, ["malformed_digest"], "upper-case hex",
                  archived_digest="sha256:" + _digest("exp-000987")[7:].upper())
    bad_reference(988, ["malformed_digest"], "md5 digest", archived_digest="md5:" + "ab" * 16)

    # custody_checks.jsonl.gz: all point at exp-000101's healthy reference, later than its
    # fresh checks, so accepting one of them by mistake shows up as a finding.
    ref = "ref-000101-a"
    at = ago(hours=3)

    def bad_check(reasons: list[str], covers: str, minutes: int, **changes: Any) -> None:
        record = {"reference_id": ref, "checked_at": _iso(at + timedelta(minutes=minutes)), "object_present": True}
        record.update(changes)
        record = {name: value for name, value in record.items() if value is not _DROP}
        b.add("custody_checks", ref, record, reasons)
        b.case("custody_checks", f"{ref} @{record.get('checked_at')}", f"quarantine {'+'.join(reasons)}: {covers}")

    b.add("custody_checks", ref,
          f'{{"reference_id": "{ref}", "checked_at": "{_iso(at)}", "object_present": fal', ["malformed_json"])
    b.case("custody_checks", f"{ref} (truncated line)", "quarantine malformed_json: truncated line")
    bad_check(["wrong_type"], 'object_present "false" (a string)', 1, object_present="false")
    bad_check(["wrong_type"], "object_present 0 (a number)", 2, object_present=0)
    bad_check(["wrong_type"], 'observed_legal_hold "false" (a string)', 3, observed_legal_hold="false")
    bad_check(["missing_required_field"], "object_present absent", 4, object_present=_DROP)
    bad_check(["unknown_enum_value"], "observed_lock_mode locked", 5, observed_lock_mode="locked")
    bad_check(["malformed_digest"], "40 hex characters", 6, observed_digest="sha256:" + "a" * 40)
    bad_check(["naive_timestamp"], "checked_at without offset, with a fraction", 7,
              checked_at=_iso(at + timedelta(minutes=7, microseconds=123456)).removesuffix("Z"))
    bad_check(["invalid_timestamp"], "hour 25", 8, checked_at=_iso(at).replace("T" + _iso(at)[11:13], "T25"))


# ---------------------------------------------------------------------------------------------
# Filler: seeded, healthy, delivered exports that give the sample its volume.
# ---------------------------------------------------------------------------------------------

_FILLER_DESTINATIONS = ("grc-webhook", "evidence-bucket", "audit-sftp", "gcs-evidence", "azure-evidence",
                        "auditor-mailbox")
_TRANSIENT_FAILURES = ((503, None), (429, "throttled"), (502, None), (500, "timeout"), (None, "connection_reset"),
                       (None, "dns_failure"), (504, None))


def _filler(b: _SampleBuilder, first: int, count: int) -> None:
    rng = b.rng
    for number in range(first, first + count):
        age_days = rng.randint(3, 300) + rng.randint(0, 23) / 24
        generated_at = b.ago(days=age_days)
        n_states = rng.choice((1, 1, 2, 2, 3))
        history = [("incomplete", generated_at + timedelta(minutes=30 * (k + 1))) for k in range(n_states - 1)]
        history.append(("verified", generated_at + timedelta(hours=2 + n_states)))
        required = generated_at + timedelta(days=3650) if rng.random() < 0.1 else None
        extra = {"request_headers": f"Authorization: Bearer {_BEARER_TOKEN}"} if number % 20 == 0 else None
        export = b.export(number, age_days=age_days, history=history, required_retain_until=required, extra=extra)
        if number % 20 == 0:
            b.case("exports", export.export_id, "extra field request_headers with Authorization: Bearer <token>")
        if number == first:
            b.duplicate_last("exports")
            b.case("exports", export.export_id, "exact duplicate: the same line twice")

        # Deliveries: each destination ends delivered; a failure first makes it recovered.
        for destination in sorted(rng.sample(_FILLER_DESTINATIONS, rng.randint(1, 3))):
            at = generated_at + timedelta(hours=n_states + 3, minutes=rng.randint(5, 120))
            failures = rng.choice((0, 0, 0, 1, 2))
            for k in range(failures):
                status, code = rng.choice(_TRANSIENT_FAILURES)
                b.fail(export.export_id, destination, at, status, code,
                       retry_after=rng.choice((None, 60, 300)) if status == 429 else None)
                at += timedelta(minutes=15 * 2 ** k + rng.randint(0, 10))
            key = f"idem-{export.export_id[4:]}-{destination}" if rng.random() < 0.6 else None
            b.deliver(export.export_id, destination, at, key=key)
            if failures:
                b.expect_recovered(export.export_id, destination, None)

        # References: compliance-locked past the required retention, checked daily.
        for suffix in "ab"[: rng.choice((1, 1, 1, 2))]:
            provider = rng.choice(PROVIDERS[:3])
            retain_until = export.required_retain_until + timedelta(days=rng.randint(1, 365))
            ref = b.reference(export, suffix, provider=provider, retain_until=retain_until,
                              legal_hold=rng.choice((False, False, None)),
                              archived_at=generated_at + timedelta(hours=rng.randint(3, 30)))
            if number == first + 1 and suffix == "a":
                b.duplicate_last("archives")
                b.case("archives", ref, "exact duplicate: the same row twice")
            for day in range(7):  # a week of daily inventory listings, on the hour
                b.check(ref, b.ago(days=day, hours=rng.randint(1, 20)), lock_mode="compliance",
                        retain_until=retain_until, legal_hold=False,
                        extra={"collector": "inventory-v3"} if day else None)
            b.check(ref, b.ago(hours=rng.randint(2, 60), minutes=17), digest=export.digest)  # checksum job
            if number == first + 2:
                b.duplicate_last("custody_checks")
                b.case("custody_checks", ref, "exact duplicate: the same check twice")
            if number % 25 == 3:
                b.check(ref, b.ago(hours=0.5), extra={"headers": {"Authorization": f"Bearer {_BEARER_TOKEN}"}})
                b.case("custody_checks", ref, "extra field holding an Authorization header (nested object)")


# ---------------------------------------------------------------------------------------------
# Assembling and writing the default sample
# ---------------------------------------------------------------------------------------------


def build_sample(seed: int = DEFAULT_SEED, as_of: datetime = DEFAULT_AS_OF) -> _SampleBuilder:
    """Every row of the default sample, with its planted cases and expected outcomes."""
    builder = _SampleBuilder(as_of, random.Random(seed))
    _retry_plan_cases(builder)
    _archive_health_cases(builder)
    _duplicate_spellings(builder)
    _quarantine_cases(builder)
    _filler(builder, first=201, count=100)
    return builder


def _duplicate_spellings(b: _SampleBuilder) -> None:
    """Exact duplicates judged on stored values: extra fields and offset spelling do not count."""
    exports = b.rows["exports"]
    original = next(row for row in exports if isinstance(row.value, dict) and row.value["export_id"] == "exp-000101")
    with_header = dict(original.value, request_headers=f"Authorization: Bearer {_BEARER_TOKEN}")
    b.add("exports", original.sort_key, with_header, exact_duplicate=True)
    b.case("exports", "exp-000101", "exact duplicate: same contract values, plus an extra field "
                                    "holding Authorization: Bearer <token>")
    original = next(row for row in exports if isinstance(row.value, dict) and row.value["export_id"] == "exp-000136"
                    and row.value["verification_state"] == "verified")
    updated_at = datetime.fromisoformat(original.value["updated_at"])
    b.add("exports", original.sort_key, dict(original.value, updated_at=_iso(updated_at, "+01:00")),
          exact_duplicate=True)
    b.case("exports", "exp-000136", "exact duplicate: updated_at spelled with +01:00, same instant")


def _ordered_rows(rows: list[_Row]) -> list[_Row]:
    return sorted(rows, key=lambda row: row.sort_key)  # stable: builder order within a key


def _jsonl_bytes(rows: list[_Row], blank_line_after: int | None = None) -> bytes:
    lines = []
    for number, row in enumerate(rows, start=1):
        lines.append(row.value if isinstance(row.value, str) else json.dumps(row.value, ensure_ascii=False))
        if number == blank_line_after:
            lines.append("")  # a blank line is not a record (SPEC 1.6)
    return ("\n".join(lines) + "\n").encode("utf-8")


def _csv_bytes(rows: list[_Row], columns: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.value.get(name) is None else row.value[name] for name in columns])
    return buffer.getvalue().encode("utf-8")


_ARCHIVE_SCHEMA = {
    "reference_id": pl.Utf8, "export_id": pl.Utf8, "archive_uri": pl.Utf8, "archive_provider": pl.Utf8,
    "archived_digest": pl.Utf8, "lock_mode": pl.Utf8, "retain_until": UTC_US, "legal_hold": pl.Boolean,
    "archived_at": UTC_US,
}


def _parquet_bytes(rows: list[_Row]) -> bytes:
    frame = pl.DataFrame([row.value for row in rows], schema=_ARCHIVE_SCHEMA, orient="row")
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    return buffer.getvalue()


def _gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)  # mtime 0: the same bytes on every run


_BLANK_LINE_AFTER = 40  # one blank line inside exports.jsonl; source rows count physical lines


def sample_file_bytes(builder: _SampleBuilder) -> dict[str, bytes]:
    """The four files of the default sample, as bytes, by log name."""
    rows = {log: _ordered_rows(builder.rows[log]) for log in LOG_NAMES}
    return {
        "exports": _jsonl_bytes(rows["exports"], blank_line_after=_BLANK_LINE_AFTER),
        "deliveries": _csv_bytes(rows["deliveries"], LOGS["deliveries"].field_names),
        "archives": _parquet_bytes(rows["archives"]),
        "custody_checks": _gzip_bytes(_jsonl_bytes(rows["custody_checks"])),
    }


def _row_numbers(log: str, rows: list[_Row]) -> list[int]:
    """The source row of each row as a reader reports it (JSON Lines: physical line number)."""
    if log == "exports":
        return [n if n <= _BLANK_LINE_AFTER else n + 1 for n in range(1, len(rows) + 1)]
    return list(range(1, len(rows) + 1))


def expected_outcomes(seed: int = DEFAULT_SEED, as_of: datetime = DEFAULT_AS_OF) -> Expectations:
    """What a correct run of the default sample at as_of (default policy) reports."""
    builder = build_sample(seed, as_of)
    expected = builder.expected
    for log in LOG_NAMES:
        rows = _ordered_rows(builder.rows[log])
        name = SAMPLE_FILES[log]
        numbers = _row_numbers(log, rows)
        expected.quarantine[name] = {n: row.reasons for n, row in zip(numbers, rows) if row.reasons}
        expected.exact_duplicates[name] = sum(row.exact_duplicate for row in rows)
        expected.rows_read[name] = len(rows)
    return expected


def planted_cases(seed: int = DEFAULT_SEED, as_of: datetime = DEFAULT_AS_OF) -> list[PlantedCase]:
    """Which SPEC case each planted record covers, in the order they were planted."""
    return list(build_sample(seed, as_of).cases)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write next to the target, then rename: a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def write_sample(out_dir: str | Path, seed: int = DEFAULT_SEED, as_of: datetime = DEFAULT_AS_OF) -> dict[str, Path]:
    """Write the default sample's four files into out_dir; return log name -> path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for log, data in sample_file_bytes(build_sample(seed, as_of)).items():
        paths[log] = out / SAMPLE_FILES[log]
        _write_atomically(paths[log], data)
    return paths


# =============================================================================================
# --scale N: the benchmark set, vectorised
# =============================================================================================
# Every choice is a draw from a splitmix64 hash of a row key (export index, delivery, attempt,
# reference, check), so the data depends only on (N, seed, as_of), not on chunking, and no
# Python code runs per row. Timestamps are Int64 microseconds until written.

_MASK64 = (1 << 64) - 1
_US = 1_000_000
_MINUTE_US = 60 * _US
_HOUR_US = 60 * _MINUTE_US
_DAY_US = 24 * _HOUR_US
SCALE_CHUNK_EXPORTS = 100_000  # exports generated and written per step: bounds memory at any N
_TIMESTAMP_FIELDS = {
    "exports": ("generated_at", "updated_at", "required_retain_until"),
    "deliveries": ("attempted_at",),
    "archives": ("retain_until", "archived_at"),
    "custody_checks": ("checked_at", "observed_retain_until"),
}
_SCALE_DESTINATIONS = tuple(DESTINATIONS)  # index -> name


def _hashed(key: pl.Expr, salt: int) -> pl.Expr:
    """splitmix64(key + salt): a uniform, stable UInt64 per row (Polars' own hash may change between versions)."""
    z = key.cast(pl.UInt64) + pl.lit((salt * 0x9E3779B97F4A7C15) & _MASK64, dtype=pl.UInt64)
    z = (z ^ (z // pl.lit(1 << 30, pl.UInt64))) * pl.lit(0xBF58476D1CE4E5B9, pl.UInt64)
    z = (z ^ (z // pl.lit(1 << 27, pl.UInt64))) * pl.lit(0x94D049BB133111EB, pl.UInt64)
    return z ^ (z // pl.lit(1 << 31, pl.UInt64))


def _draw(hash_column: str, modulus: int, shift: int) -> pl.Expr:
    """An integer in [0, modulus) from the bits of a hash above `shift` (one hash serves several draws)."""
    bits = pl.col(hash_column) // pl.lit(1 << shift, pl.UInt64)
    return (bits % pl.lit(modulus, pl.UInt64)).cast(pl.Int64)


def _chosen(index: pl.Expr, values: Iterable[Any], dtype: pl.DataType = pl.Utf8) -> pl.Expr:
    """values[index] (a small lookup table)."""
    return index.replace_strict(dict(enumerate(values)), return_dtype=dtype)


_HEX4: pl.Series | None = None


def _hex_text(key: pl.Expr, salt: int) -> pl.Expr:
    """64 lowercase hex characters from four hashes of key: digest-shaped, not a real sha256."""
    global _HEX4
    if _HEX4 is None:
        _HEX4 = pl.Series("hex4", [f"{value:04x}" for value in range(1 << 16)])
    parts = []
    for k in range(4):
        h = _hashed(key, salt + k)
        for shift in (0, 16, 32, 48):
            chunk = ((h // pl.lit(1 << shift, pl.UInt64)) % pl.lit(1 << 16, pl.UInt64)).cast(pl.UInt32)
            parts.append(pl.lit(_HEX4).gather(chunk))
    return pl.concat_str(parts)


def _scaled_export_base(lo: int, hi: int, total: int, seed: int, as_of_us: int) -> pl.DataFrame:
    """One row per export index in [lo, hi): its id and the draws every log shares."""
    width = max(6, len(str(total)))
    number = (pl.col("i") + 1).cast(pl.Utf8).str.zfill(width)
    return (
        pl.select(pl.int_range(lo, hi, dtype=pl.Int64).alias("i"))
        .with_columns(h=_hashed(pl.col("i"), seed * 64 + 1), number=number,
                      digest_hex=_hex_text(pl.col("i"), seed * 64 + 50))
        .with_columns(
            export_id=pl.lit("exp-") + pl.col("number"),
            registered=_draw("h", 100, 0) != 0,  # 1%: no export record (export_unknown, orphans)
            n_states=1 + _draw("h", 3, 8),  # 1-3 states, mean 2
            final_code=_draw("h", 100, 12),
            generated_at=as_of_us - (2 * 3600 + _draw("h", 40 * 86_400, 20)) * _US,
            required_explicit=_draw("h", 10, 44) == 0,
            redigest=_draw("h", 100, 48) == 0,  # re-exported: the last state has a new digest
            future_state=_draw("h", 50, 56) == 0,  # the last state is dated after as_of
        )
    )


def _scaled_exports(base: pl.DataFrame, as_of_us: int) -> pl.DataFrame:
    j, last = pl.col("j"), pl.col("j") == pl.col("n_states") - 1
    final_state = (
        pl.when(pl.col("final_code") < 86).then(pl.lit("verified"))
        .when(pl.col("final_code") < 91).then(pl.lit("incomplete"))
        .when(pl.col("final_code") < 95).then(pl.lit("failed"))
        .otherwise(pl.lit("superseded"))
    )
    state = pl.when(last).then(final_state).otherwise(pl.lit("incomplete"))
    updated_at = pl.col("generated_at") + (j * (40 + _draw("h", 600, 30)) + 60) * _MINUTE_US
    future = pl.col("future_state") & last & (pl.col("n_states") > 1)
    digest_hex = pl.when(pl.col("redigest") & last).then(pl.col("digest_hex").str.reverse()).otherwise("digest_hex")
    return (
        base.filter("registered")
        .with_columns(j=pl.int_ranges(0, "n_states"))
        .explode("j")
        .select(
            "export_id",
            release_record_ref=pl.lit("rel-2026-") + (pl.col("i") // 4 + 1).cast(pl.Utf8).str.zfill(6),
            verification_id=pl.when(state == "verified").then(pl.format("ver-{}-{}", "number", j + 1)),
            verification_state=state,
            export_digest=pl.lit("sha256:") + digest_hex,
            generated_at="generated_at",
            updated_at=pl.when(future).then(as_of_us + _HOUR_US + j * _MINUTE_US).otherwise(updated_at),
            required_retain_until=pl.when("required_explicit").then(pl.col("generated_at") + 3650 * _DAY_US),
            row_key=pl.col("i") * 4 + j,
        )
    )


# Failed attempts: (http_status, error_code) covering every error class of SPEC 2.2.
_FAILURES = ((503, None), (503, None), (429, "throttled"), (None, "rate_limited"), (502, None), (500, "timeout"),
             (504, None), (None, "connection_reset"), (404, "not_found"), (401, "auth_failed"),
             (None, "connection_refused"), (None, "dns_failure"), (408, None), (None, None), (302, "mailbox_full"),
             (501, None))


def _scaled_endpoint(destination: pl.Expr, export_id: pl.Expr, flag: pl.Expr) -> pl.Expr:
    """The endpoint of an attempt; `flag` (about 2%) plants credentials in webhook and S3 endpoints."""
    bundle = export_id + pl.lit(".tar.zst")
    return (
        pl.when(destination == "grc-webhook")
        .then(pl.when(flag).then(pl.lit(f"https://hooks.grc-vendor.example/v1/evidence?token={_WEBHOOK_TOKEN}"))
              .otherwise(pl.lit("https://grc.example.com/api/v2/evidence")))
        .when(destination == "evidence-bucket")
        .then(pl.when(flag).then(pl.lit("https://evidence-drop-prod.s3.eu-west-1.amazonaws.com/exports/") + bundle
                                 + pl.lit(_presigned_s3("", _AMZ_SIGNATURE)))
              .otherwise(pl.lit("s3://evidence-drop-prod/exports/") + bundle))
        .when(destination == "audit-sftp").then(pl.lit("sftp://192.168.14.7/inbound/") + bundle)
        .when(destination == "gcs-evidence").then(pl.lit("gs://auditor-evidence-drop/exports/") + bundle)
        .when(destination == "azure-evidence")
        .then(pl.lit("https://auditevidence.blob.core.windows.net/exports/") + bundle
              + pl.lit(_azure_sas("", _AZURE_SIG)))
        .otherwise(pl.lit("mailto:evidence@auditor.example.net"))
    )


def _scaled_deliveries(base: pl.DataFrame, seed: int, as_of_us: int) -> pl.DataFrame:
    """~10 attempts per export: 1-4 destinations x 1-7 attempts; ~36% of deliveries never delivered."""
    deliveries = (
        base.select("i", "number", "export_id", hd=_hashed(pl.col("i"), seed * 64 + 3))
        .with_columns(n_dest=1 + _draw("hd", 4, 0), first_dest=_draw("hd", 6, 4))
        .with_columns(d=pl.int_ranges(0, "n_dest"))
        .explode("d")
        .with_columns(hv=_hashed(pl.col("i") * 8 + pl.col("d"), seed * 64 + 4))
        .with_columns(n_att=1 + _draw("hv", 7, 0), fate=_draw("hv", 100, 4),
                      first_at=as_of_us - (600 + _draw("hv", 9 * 86_400, 12)) * _US,
                      gap=(5 + _draw("hv", 180, 36)) * _MINUTE_US, keyed=_draw("hv", 10, 44) < 6,
                      dest=(pl.col("first_dest") + pl.col("d")) % 6, hidden=_draw("hv", 10, 48),
                      recent=_draw("hv", 100, 52) < 15, lag=_draw("hv", 1800, 20) * _US)
        # 15% of deliveries end within the last half hour, so some are still waiting at as_of.
        .with_columns(first_at=pl.when("recent")
                      .then(as_of_us - (pl.col("n_att") - 1) * pl.col("gap") - pl.col("lag"))
                      .otherwise("first_at"))
        .with_columns(a=pl.int_ranges(0, "n_att"))
        .explode("a")
        .with_columns(row_key=(pl.col("i") * 8 + pl.col("d")) * 8 + pl.col("a"))
        .with_columns(ha=_hashed(pl.col("row_key"), seed * 64 + 5))
    )
    a, n_att, fate = pl.col("a"), pl.col("n_att"), pl.col("fate")
    delivered = ((fate < 62) & (a == n_att - 1)) | ((fate >= 62) & (fate < 64) & (a == 0))  # 2%: then failed
    destination = _chosen(pl.col("dest"), _SCALE_DESTINATIONS)
    kind = _chosen(pl.col("dest"), [DESTINATIONS[name][0] for name in _SCALE_DESTINATIONS])
    failure = _draw("ha", len(_FAILURES), 0)
    status = _chosen(failure, [s for s, _ in _FAILURES], pl.Int64)
    code = _chosen(failure, [c for _, c in _FAILURES])
    code = pl.when(_draw("ha", 50, 8) == 0).then(pl.lit(" ") + code.str.to_uppercase()).otherwise(code)
    delivered_status = pl.when(kind == "webhook").then(200).when(kind.is_in(["s3", "gcs", "azure_blob"])).then(201)
    retry_after = (
        pl.when(status == 429).then(30 + _draw("ha", 3570, 12))
        .when((status == 503) & (_draw("ha", 4, 24) == 0)).then(pl.lit(120, pl.Int64))
    )
    visibility = (
        pl.when(destination == "audit-sftp").then(pl.lit("private"))
        .when(pl.col("hidden") < 3).then(pl.lit(None, pl.Utf8))
        .otherwise(pl.lit("public"))
    )
    return deliveries.select(
        attempt_id=pl.format("att-{}-{}-{}", "number", "d", a.cast(pl.Utf8).str.zfill(2)),
        export_id="export_id",
        destination=destination,
        connector_kind=kind,
        connector_visibility=visibility,
        attempted_at=pl.col("first_at") + a * pl.col("gap"),
        outcome=pl.when(delivered).then(pl.lit("delivered")).otherwise(pl.lit("failed")),
        http_status=pl.when(delivered).then(delivered_status).otherwise(status),
        error_code=pl.when(delivered).then(pl.lit(None, pl.Utf8)).otherwise(code),
        retry_after_seconds=pl.when(delivered).then(pl.lit(None, pl.Int64)).otherwise(retry_after),
        idempotency_key=pl.when("keyed").then(pl.format("idem-{}-{}", "export_id", destination)),
        endpoint=_scaled_endpoint(destination, pl.col("export_id"), _draw("ha", 50, 30) == 0),
        row_key="row_key",
    )


def _scaled_reference_rows(base: pl.DataFrame, seed: int, as_of_us: int) -> pl.DataFrame:
    """~1.5 references per export (2% none), with every column custody checks derive from."""
    refs = (
        base.select("i", "number", "export_id", "generated_at", "digest_hex", hr=_hashed(pl.col("i"), seed * 64 + 6))
        .with_columns(n_refs=pl.when(_draw("hr", 50, 0) == 0).then(0).otherwise(1 + _draw("hr", 2, 8)))
        .with_columns(r=pl.int_ranges(0, "n_refs"))
        .explode("r")
        .drop_nulls("r")
        .with_columns(row_key=pl.col("i") * 4 + pl.col("r"))
        .with_columns(hx=_hashed(pl.col("row_key"), seed * 64 + 7))
    )
    provider_code, lock_code = _draw("hx", 20, 0), _draw("hx", 100, 8)
    provider = (
        pl.when(provider_code < 9).then(pl.lit("aws_s3_object_lock"))
        .when(provider_code < 14).then(pl.lit("azure_immutable_blob"))
        .when(provider_code < 18).then(pl.lit("gcs_bucket_lock"))
        .otherwise(pl.lit("filesystem"))
    )
    lock_mode = (
        pl.when(provider == "filesystem").then(pl.when(lock_code < 50).then(pl.lit(None, pl.Utf8))
                                               .otherwise(pl.lit("none")))
        .when((provider == "azure_immutable_blob") & (lock_code >= 80)).then(pl.lit("governance"))
        .when((provider == "aws_s3_object_lock") & (lock_code >= 95)).then(pl.lit("governance"))
        .otherwise(pl.lit("compliance"))
    )
    digest_code, retain_code, hold_code = _draw("hx", 100, 16), _draw("hx", 100, 24), _draw("hx", 100, 48)
    generated = pl.col("generated_at")
    retain_until = (
        pl.when(retain_code < 90).then(generated + (2557 + 30 + _draw("hx", 365, 32)) * _DAY_US)
        .when(retain_code < 94).then(generated + 1826 * _DAY_US)  # retention_short
        .when(retain_code < 96).then(as_of_us + (1 + _draw("hx", 29, 40)) * _DAY_US)  # expiring
        .when(retain_code < 97).then(as_of_us - (1 + _draw("hx", 100, 40)) * _DAY_US)  # expired
    )
    name = pl.col("export_id") + pl.lit("-") + pl.col("r").cast(pl.Utf8) + pl.lit(".tar.zst")
    uri = (
        pl.when(provider == "aws_s3_object_lock")
        .then(pl.format("s3://evidence-archive-prod/exports/{}?versionId={}", name, pl.col("hx").cast(pl.Utf8)))
        .when(provider == "azure_immutable_blob")
        .then(pl.lit("https://evidencearchive.blob.core.windows.net/worm/") + name)
        .when(provider == "gcs_bucket_lock").then(pl.lit("gs://evidence-lock-prod/exports/") + name)
        .otherwise(pl.lit("file:///srv/worm/exports/") + name)
    )
    return refs.select(
        reference_id=pl.format("ref-{}-{}", "number", "r"),
        export_id="export_id",
        archive_uri=uri,
        archive_provider=provider,
        archived_digest=pl.when(digest_code < 94).then(pl.lit("sha256:") + pl.col("digest_hex"))
        .when(digest_code >= 97).then(pl.lit("sha256:") + pl.col("digest_hex").str.reverse()),  # mismatch
        lock_mode=lock_mode,
        retain_until=retain_until,
        legal_hold=pl.when(hold_code < 3).then(True).when(hold_code < 80).then(False),
        archived_at=pl.when(_draw("hx", 200, 56) == 0).then(as_of_us + _HOUR_US)
        .otherwise(generated + (30 + _draw("hx", 1440, 52)) * _MINUTE_US),
        row_key="row_key",
    )


def _scaled_custody_checks(references: pl.DataFrame, seed: int, as_of_us: int) -> pl.DataFrame:
    """0-4 checks per reference (mean 2); 5% stale, 1% object gone, 0.2% of an unknown reference."""
    checks = (
        references.with_columns(hc=_hashed(pl.col("row_key"), seed * 64 + 8))
        .with_columns(n_checks=_draw("hc", 5, 0), stale=_draw("hc", 20, 4) == 0)
        .with_columns(c=pl.int_ranges(0, "n_checks"))
        .explode("c")
        .drop_nulls("c")
        .with_columns(row_key=pl.col("row_key") * 8 + pl.col("c"))
        .with_columns(hk=_hashed(pl.col("row_key"), seed * 64 + 9))
    )
    c = pl.col("c")
    inventory = c % 2 == 1  # odd checks are inventory listings, even ones checksum jobs
    checked_at = as_of_us - c * _DAY_US - _draw("hk", 86_400, 0) * _US
    return checks.select(
        reference_id=pl.when(_draw("hk", 500, 32) == 0).then(pl.col("reference_id") + pl.lit("-gone"))
        .otherwise("reference_id"),
        checked_at=pl.when("stale").then(checked_at - 9 * _DAY_US).otherwise(checked_at),
        object_present=_draw("hk", 100, 20) != 0,
        observed_digest=pl.when(~inventory & (_draw("hk", 2, 28) == 0)).then("archived_digest"),
        observed_lock_mode=pl.when(inventory).then("lock_mode"),
        observed_retain_until=pl.when(inventory).then("retain_until"),
        observed_legal_hold=pl.when(inventory).then("legal_hold"),
        row_key="row_key",
    )


# Value faults (every format) and text faults (JSON Lines only), per log. A fault code is drawn
# per row: 0-2 a value fault, 3-4 a text fault, 5 an exact duplicate, 6 a conflicting pair.
_VALUE_FAULTS: dict[str, list[tuple[str, Any]]] = {
    "exports": [("verification_state", "approved"), ("export_digest", "UPPER"), ("release_record_ref", None)],
    "deliveries": [("http_status", 700), ("outcome", "success"), ("retry_after_seconds", 40_000_000),
                   ("attempt_id", None)],
    "archives": [("lock_mode", "worm"), ("archived_digest", "md5:" + "ab" * 16), ("archive_uri", None)],
    "custody_checks": [("observed_lock_mode", "locked"), ("observed_digest", "UPPER"), ("reference_id", None)],
}
_CONFLICTING_CHANGE: dict[str, tuple[str, Any]] = {  # the second copy of a conflicting pair
    "exports": ("release_record_ref", "rel-2026-conflict"),
    "deliveries": ("idempotency_key", "idem-conflict"),
    "archives": ("archive_provider", "filesystem"),
    "custody_checks": ("observed_lock_mode", "governance"),
}
_DATE_FIELD = {"exports": "updated_at", "deliveries": "attempted_at", "archives": "archived_at",
               "custody_checks": "checked_at"}
_WRONG_TYPES: dict[str, list[tuple[str, str]]] = {  # regex, replacement on the JSON text
    "exports": [(r'"release_record_ref":"[^"]*"', '"release_record_ref":4711')],
    "deliveries": [(r'"http_status":(\d+)', '"http_status":"${1}"'), (r'"http_status":(\d+)', '"http_status":${1}.0')],
    "archives": [(r'"legal_hold":(true|false)', '"legal_hold":"${1}"')],
    "custody_checks": [(r'"object_present":(true|false)', '"object_present":"${1}"')],
}


def _with_faults(frame: pl.DataFrame, log: str, seed: int, text_faults: bool) -> pl.DataFrame:
    """The frame with its value faults applied, duplicates repeated, and a `text_fault` code per row."""
    frame = frame.with_columns(hq=_hashed(pl.col("row_key"), seed * 64 + 20))
    fault = _draw("hq", 1000, 0)
    value_kind = _draw("hq", len(_VALUE_FAULTS[log]), 16)
    faulted = []
    for k, (name, bad) in enumerate(_VALUE_FAULTS[log]):
        hit = (fault < 3) & (value_kind == k)
        replacement = pl.col(name).str.to_uppercase() if bad == "UPPER" else pl.lit(bad, frame.schema[name])
        faulted.append(pl.when(hit).then(replacement).otherwise(pl.col(name)).alias(name))
    n_text = 3 + len(_WRONG_TYPES[log])  # malformed, naive, invalid timestamp, wrong types
    text_fault = pl.when((fault >= 3) & (fault < 5) & text_faults).then(_draw("hq", n_text, 16))
    frame = frame.with_columns(*faulted, text_fault=text_fault,
                               copies=pl.when(fault.is_in([5, 6])).then(2).otherwise(1), conflict=fault == 6)
    frame = frame.with_columns(copy=pl.int_ranges(0, "copies")).explode("copy")
    name, value = _CONFLICTING_CHANGE[log]
    second = (pl.col("copy") == 1) & pl.col("conflict")
    return frame.with_columns(pl.when(second).then(pl.lit(value, frame.schema[name])).otherwise(pl.col(name))
                              .alias(name))


def _json_lines(frame: pl.DataFrame, log: str, columns: list[str]) -> pl.Series:
    """One JSON object per row (timestamps as ISO text with Z), with the text faults applied."""
    as_text = [
        pl.col(name).cast(UTC_US).dt.strftime("%Y-%m-%dT%H:%M:%SZ") if name in _TIMESTAMP_FIELDS[log] else pl.col(name)
        for name in columns
    ]
    lines = frame.select(pl.struct(as_text).struct.json_encode().alias("line")).to_series()
    faulty = frame.select(pl.arg_where(pl.col("text_fault").is_not_null())).to_series()
    if faulty.len() == 0:
        return lines
    date = _DATE_FIELD[log]
    kinds = frame["text_fault"].gather(faulty)
    line, kind = pl.col("line"), pl.col("kind")
    fixed = pl.when(kind == 0).then(line.str.slice(0, line.str.len_chars() // 2))  # malformed JSON
    fixed = fixed.when(kind == 1).then(line.str.replace(f'"{date}":"([^"]*)Z"', f'"{date}":"${{1}}"'))  # naive
    fixed = fixed.when(kind == 2).then(line.str.replace(f'"{date}":"([0-9-]+)T', f'"{date}":"${{1}} '))  # invalid
    for k, (pattern, replacement) in enumerate(_WRONG_TYPES[log], start=3):
        fixed = fixed.when(kind == k).then(line.str.replace(pattern, replacement))
    corrupted = pl.DataFrame({"line": lines.gather(faulty), "kind": kinds}).select(fixed.otherwise(line)).to_series()
    return lines.scatter(faulty, corrupted)


class _ScaledLogWriter:
    """Appends chunks of one log to one file: Parquet row groups or JSON Lines."""

    def __init__(self, log: str, path: Path, fmt: str):
        self.log, self.path, self.fmt = log, path, fmt
        self.columns = LOGS[log].field_names
        self.rows = 0
        self._parquet = None
        self._text = open(path, "wb") if fmt == "jsonl" else None

    def write(self, frame: pl.DataFrame) -> None:
        self.rows += frame.height
        if self.fmt == "jsonl":
            lines = _json_lines(frame, self.log, self.columns)
            pl.DataFrame({"line": lines}).write_csv(self._text, include_header=False, quote_style="never")
            return
        import pyarrow.parquet as pq

        typed = frame.select(
            pl.col(name).cast(UTC_US) if name in _TIMESTAMP_FIELDS[self.log] else pl.col(name)
            for name in self.columns
        ).to_arrow()
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.path, typed.schema, compression="zstd")
        self._parquet.write_table(typed.cast(self._parquet.schema))

    def close(self) -> None:
        if self._text:
            self._text.close()
        if self._parquet:
            self._parquet.close()


def write_scaled(out_dir: str | Path, exports: int, fmt: str = "parquet", seed: int = DEFAULT_SEED,
                 as_of: datetime = DEFAULT_AS_OF, progress: Any = None) -> dict[str, Path]:
    """Write the benchmark set for `exports` exports as <log>.<fmt> files; return log name -> path.

    `progress`, when given, is called with one line of text after each chunk.
    """
    if fmt not in ("parquet", "jsonl"):
        raise ValueError(f"format must be parquet or jsonl, not {fmt!r}")
    if exports < 1:
        raise ValueError("exports must be at least 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    as_of_us = int(as_of.timestamp()) * _US + as_of.microsecond
    writers = {log: _ScaledLogWriter(log, out / f"{log}.{fmt}", fmt) for log in LOG_NAMES}
    try:
        for lo in range(0, exports, SCALE_CHUNK_EXPORTS):
            hi = min(lo + SCALE_CHUNK_EXPORTS, exports)
            base = _scaled_export_base(lo, hi, exports, seed, as_of_us)
            references = _scaled_reference_rows(base, seed, as_of_us)
            frames = {
                "exports": _scaled_exports(base, as_of_us),
                "deliveries": _scaled_deliveries(base, seed, as_of_us),
                "archives": references,
                "custody_checks": _scaled_custody_checks(references, seed, as_of_us),
            }
            for log, frame in frames.items():
                writers[log].write(_with_faults(frame, log, seed, text_faults=fmt == "jsonl"))
            if progress:
                progress(f"{hi:,}/{exports:,} exports")
    finally:
        for writer in writers.values():
            writer.close()
    if progress:
        progress(", ".join(f"{log} {writer.rows:,} rows" for log, writer in writers.items()))
    return {log: writer.path for log, writer in writers.items()}


# =============================================================================================
# Command line
# =============================================================================================


def _as_of_argument(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no offset; write e.g. 2026-11-20T06:00:00Z")
    return moment.astimezone(UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m exportaudit.sample_data",
        description="Write exportaudit's deterministic sample data (default) or a benchmark set (--scale).",
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory (created if missing)")
    parser.add_argument("--scale", type=int, metavar="N", help="write N exports of benchmark data instead")
    parser.add_argument("--format", choices=("jsonl", "parquet"), help="file format with --scale (default parquet)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--as-of", type=_as_of_argument, default=DEFAULT_AS_OF,
                        help="instant the data is shaped around (default 2026-11-20T06:00:00Z)")
    args = parser.parse_args(argv)
    if args.scale is None and args.format:
        parser.error("--format applies to --scale; the default sample writes one file per format")
    if args.scale is not None and args.scale < 1:
        parser.error("--scale must be at least 1")

    import time

    started = time.perf_counter()
    if args.scale is None:
        paths = write_sample(args.out, seed=args.seed, as_of=args.as_of)
    else:
        paths = write_scaled(args.out, args.scale, args.format or "parquet", seed=args.seed, as_of=args.as_of,
                             progress=lambda line: print(line, file=sys.stderr, flush=True))
    for log, path in paths.items():
        print(f"{log}: {path} ({path.stat().st_size:,} bytes)")
    print(f"written in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
