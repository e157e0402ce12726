"""The default sample: ~200 hand-shaped exports with planted cases and their expected outcomes.

`write_sample` writes exactly four files, one per format: `exports.jsonl`,
`deliveries.csv`, `archives.parquet`, `custody_checks.jsonl.gz`. Every planted record is
placed relative to as_of so that, evaluated at that as_of with the default policy, it hits
one named case of docs/inputs.md#bad-input-and-quarantine, 2, 3 or 5 (see `planted_cases()` and `expected_outcomes()`).
Filler exports (seeded random) are healthy and delivered, so they add volume without
adding cases. The bytes are the same on every run: no wall clock, gzip mtime 0, fixed row
order.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

import polars as pl

from exportaudit.contract import LOGS
from exportaudit.sample.common import (
    AMZ_ARCHIVE_SIGNATURE,
    AMZ_SIGNATURE,
    ARCHIVE_PASSWORD,
    ARCHIVE_TOKEN,
    AWS_KEY_ID,
    AZURE_ARCHIVE_SIG,
    AZURE_SIG,
    BEARER_TOKEN,
    DEFAULT_AS_OF,
    DEFAULT_SEED,
    DELIVERY_PASSWORD,
    DESTINATIONS,
    GOOG_SIGNATURE,
    LEAKED_KEY_ID,
    LOG_NAMES,
    PRIVATE_CONNECTOR_HOST,
    PRIVATE_HOSTS,
    PROVIDERS,
    UTC_US,
    WEBHOOK_TOKEN,
    azure_sas_url,
    presigned_s3_url,
)

SAMPLE_FILES = {
    "exports": "exports.jsonl",
    "deliveries": "deliveries.csv",
    "archives": "archives.parquet",
    "custody_checks": "custody_checks.jsonl.gz",
}

# Every value here appears in the inputs and must appear in no output.
PLANTED_SECRETS: tuple[str, ...] = (
    DELIVERY_PASSWORD,
    ARCHIVE_PASSWORD,
    AWS_KEY_ID,
    LEAKED_KEY_ID,
    AMZ_SIGNATURE,
    AMZ_ARCHIVE_SIGNATURE,
    GOOG_SIGNATURE,
    AZURE_SIG,
    AZURE_ARCHIVE_SIG,
    WEBHOOK_TOKEN,
    ARCHIVE_TOKEN,
    BEARER_TOKEN,
    PRIVATE_CONNECTOR_HOST,
    *PRIVATE_HOSTS,
)


@dataclass(frozen=True)
class PlantedCase:
    """One planted record (or group) and the documented rule it covers."""

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


# Spellings of one instant that docs/inputs.md#fine-print-on-types-and-formats accepts: style -> (offset in minutes, suffix).
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
# docs/retry-plan.md: the retry plan. One export per case (exp-000001..), each verified with a healthy
# archive reference (so only the plan is exercised) unless the case says otherwise.
# ---------------------------------------------------------------------------------------------


def _export_with_healthy_reference(b: _SampleBuilder, number: int, **kw: Any) -> _Export:
    export = b.export(number, **kw)
    b.healthy_reference(export)
    return export


def _plant_retry_plan_cases(b: _SampleBuilder) -> None:
    """Every retry-plan case, exp-000001 to exp-000045, in that order."""
    _plant_backoff_cases(b)
    _plant_error_class_cases(b)
    _plant_attempt_count_and_age_cases(b)
    _plant_recovered_delivery_cases(b)
    _plant_export_state_cases(b)
    _plant_endpoint_credential_cases(b)
    _plant_rule_order_cases(b)


def _plant_backoff_cases(b: _SampleBuilder) -> None:
    """exp-000001..7: when a retry is due, from the backoff and Retry-After."""
    ago = b.ago
    # Rules 8-9: backoff = 15 min x 2^(failed-1); delay = max(backoff, Retry-After).
    e = _export_with_healthy_reference(b, 1).export_id
    b.fail(e, "grc-webhook", ago(hours=2), 503)
    b.expect_plan(e, "grc-webhook", "eligible", "one 503 (unavailable) 2 h ago, 15 min backoff elapsed")

    e = _export_with_healthy_reference(b, 2).export_id
    b.fail(e, "grc-webhook", ago(minutes=15), 503)
    b.expect_plan(e, "grc-webhook", "eligible", "next_attempt_at == as_of exactly (not > as_of)")

    e = _export_with_healthy_reference(b, 3).export_id
    b.fail(e, "grc-webhook", ago(hours=1), 503, style="+02:00")
    b.fail(e, "grc-webhook", ago(minutes=10), 503, style="+0530")
    b.expect_plan(e, "grc-webhook", "backoff_pending",
                  "2 failures, 30 min backoff ends in 20 min; offsets +02:00/+0530")

    e = _export_with_healthy_reference(b, 4).export_id
    b.fail(e, "grc-webhook", ago(minutes=10), 429, "throttled", retry_after=3600)
    b.expect_plan(e, "grc-webhook", "retry_after_pending", "throttled (429), Retry-After 3600 s > 900 s backoff")

    e = _export_with_healthy_reference(b, 5).export_id
    b.fail(e, "grc-webhook", ago(minutes=5), 429, retry_after=900)
    b.expect_plan(e, "grc-webhook", "backoff_pending", "Retry-After 900 s == backoff (not >), next in 10 min")

    e = _export_with_healthy_reference(b, 6).export_id
    b.fail(e, "grc-webhook", ago(hours=3), None, "rate_limited", retry_after=60)
    b.expect_plan(e, "grc-webhook", "eligible", "throttled by error_code rate_limited, null http_status")

    e = _export_with_healthy_reference(b, 7).export_id
    for hours in (20, 10, 3, 0.5):
        b.fail(e, "audit-sftp", ago(hours=hours), None, "connection_refused", style="-05")
    b.expect_plan(e, "audit-sftp", "backoff_pending", "unavailable by error_code, 4 failures (< 5), 120 min backoff")



def _plant_error_class_cases(b: _SampleBuilder) -> None:
    """exp-000008..19: how a failure is classified (http_status, error_code, connector kind, key)."""
    ago = b.ago
    e = _export_with_healthy_reference(b, 8).export_id
    b.fail(e, "grc-webhook", ago(hours=1), 502)
    b.expect_plan(e, "grc-webhook", "unsafe_without_idempotency_key", "ambiguous 502 on webhook, no key")

    e = _export_with_healthy_reference(b, 9).export_id
    b.fail(e, "evidence-bucket", ago(hours=1), 504, kind=" S3 ")
    b.expect_plan(e, "evidence-bucket", "eligible",
                  "ambiguous 504, no key, connector_kind ' S3 ' normalised to s3 (idempotent kind)")

    e = _export_with_healthy_reference(b, 10).export_id
    b.fail(e, "grc-webhook", ago(hours=2), 500, key="idem-000010-grc", style="nanos")
    b.expect_plan(e, "grc-webhook", "eligible", "ambiguous 500 with idempotency key; 9 fraction digits")

    e = _export_with_healthy_reference(b, 11).export_id
    b.fail(e, "grc-webhook", ago(hours=1), 200, "timeout")
    b.expect_plan(e, "grc-webhook", "unsafe_without_idempotency_key",
                  "failed attempt with http 200: error_code timeout decides (ambiguous)")

    e = _export_with_healthy_reference(b, 12).export_id
    b.fail(e, "auditor-mailbox", ago(hours=1), 599)
    b.expect_plan(e, "auditor-mailbox", "unsafe_without_idempotency_key", "599, a 5xx named nowhere: ambiguous")

    e = _export_with_healthy_reference(b, 13).export_id
    b.fail(e, "grc-webhook", ago(hours=1), 404, "not_found")
    b.expect_plan(e, "grc-webhook", "permanent_error", "404 not_found")

    e = _export_with_healthy_reference(b, 14).export_id
    b.fail(e, "grc-webhook", ago(hours=1), 501)
    b.expect_plan(e, "grc-webhook", "permanent_error", "501, a permanent 5xx")

    e = _export_with_healthy_reference(b, 15).export_id
    b.fail(e, "audit-sftp", ago(hours=1), None, "auth_failed")
    b.expect_plan(e, "audit-sftp", "permanent_error", "permanent by error_code auth_failed, null http_status")

    e = _export_with_healthy_reference(b, 16).export_id
    b.fail(e, "grc-webhook", ago(hours=1), 429, "not_found")
    b.expect_plan(e, "grc-webhook", "eligible", "429 with error_code not_found: http_status decides (throttled)")

    e = _export_with_healthy_reference(b, 17).export_id
    b.fail(e, "grc-webhook", ago(hours=1))
    b.expect_plan(e, "grc-webhook", "unclassified_error", "no http_status, no error_code: unknown")

    e = _export_with_healthy_reference(b, 18).export_id
    b.fail(e, "audit-sftp", ago(hours=1), None, " TLS_Handshake_Failed\t")
    b.expect_plan(e, "audit-sftp", "eligible", "error_code ' TLS_Handshake_Failed\\t' trimmed, lowercased: unavailable")

    e = _export_with_healthy_reference(b, 19).export_id
    b.fail(e, "auditor-mailbox", ago(hours=1), 302, "mailbox_full")
    b.expect_plan(e, "auditor-mailbox", "unclassified_error", "302 + unlisted error_code mailbox_full: unknown")



def _plant_attempt_count_and_age_cases(b: _SampleBuilder) -> None:
    """exp-000020..25: attempt counts, delivery age, and which attempt is the last."""
    ago = b.ago
    e = _export_with_healthy_reference(b, 20).export_id
    for hours in (10, 8, 6, 4, 1):
        b.fail(e, "grc-webhook", ago(hours=hours), 503)
    b.expect_plan(e, "grc-webhook", "attempts_exhausted", "5 failed attempts (= max_attempts)")

    e = _export_with_healthy_reference(b, 21).export_id
    for hours in (12, 10, 8, 4):
        b.fail(e, "grc-webhook", ago(hours=hours), 503)
    b.duplicate_last("deliveries")
    b.expect_plan(e, "grc-webhook", "eligible", "4 failures + 1 exact duplicate row: counts 4, not exhausted")

    e = _export_with_healthy_reference(b, 22).export_id
    b.fail(e, "grc-webhook", ago(days=8), 503)
    b.fail(e, "grc-webhook", ago(days=2), 503)
    b.expect_plan(e, "grc-webhook", "delivery_expired", "first attempt 8 days before as_of")

    e = _export_with_healthy_reference(b, 23).export_id
    b.fail(e, "grc-webhook", ago(days=7), 503)
    b.fail(e, "grc-webhook", ago(days=1), 503)
    b.expect_plan(e, "grc-webhook", "eligible", "first attempt exactly 7 days before as_of (not > max age)")

    e = _export_with_healthy_reference(b, 24).export_id
    b.fail(e, "grc-webhook", ago(hours=3), 404, "not_found")  # att-000024-01
    b.fail(e, "grc-webhook", ago(hours=3), 503)  # att-000024-02: same instant, greater id, so the last
    b.expect_plan(e, "grc-webhook", "eligible", "tie on attempted_at: greatest attempt_id (503) is the last")

    e = _export_with_healthy_reference(b, 25).export_id
    b.fail(e, "grc-webhook", ago(hours=3), 503, attempt_id="att-000025-B")
    b.fail(e, "grc-webhook", ago(hours=3), 404, "not_found", attempt_id="att-000025-a")
    b.expect_plan(e, "grc-webhook", "permanent_error",
                  "tie on attempted_at: 'att-000025-a' > 'att-000025-B' by code point (404 is the last)")



def _plant_recovered_delivery_cases(b: _SampleBuilder) -> None:
    """exp-000026..29: delivered attempts (recovered) and attempts dated after as_of."""
    ago = b.ago
    e = _export_with_healthy_reference(b, 26).export_id
    b.fail(e, "grc-webhook", ago(hours=5), 503)
    b.deliver(e, "grc-webhook", ago(hours=4))
    b.expect_recovered(e, "grc-webhook", "failed then delivered")

    e = _export_with_healthy_reference(b, 27).export_id
    b.deliver(e, "evidence-bucket", ago(hours=6))
    b.fail(e, "evidence-bucket", ago(hours=1), 500)
    b.expect_recovered(e, "evidence-bucket", "delivered then failed (any order)")

    e = _export_with_healthy_reference(b, 28).export_id
    b.fail(e, "grc-webhook", ago(hours=1), 503)
    b.deliver(e, "grc-webhook", b.ahead(hours=1))
    b.expect_plan(e, "grc-webhook", "eligible", "delivered attempt after as_of is ignored: still planned")

    e = _export_with_healthy_reference(b, 29).export_id
    b.fail(e, "grc-webhook", b.ahead(hours=2), 503)
    b.case("deliveries", f"{e} grc-webhook", "not planned: its only (failed) attempt is after as_of")



def _plant_export_state_cases(b: _SampleBuilder) -> None:
    """exp-000030..34: deliveries of unknown, unverified or later-changed exports."""
    ago = b.ago
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

    e = _export_with_healthy_reference(b, 34, history=[("verified", None), ("failed", b.ahead(days=1))]).export_id
    b.fail(e, "grc-webhook", ago(hours=1), 503)
    b.expect_plan(e, "grc-webhook", "eligible", "verified; a 'failed' state dated after as_of is ignored")



def _plant_endpoint_credential_cases(b: _SampleBuilder) -> None:
    """exp-000035..40: credentials and private hosts in endpoints, each on a retryable failure."""
    ago = b.ago
    # docs/security.md#what-is-never-stored-or-printed on endpoints: credentials and private hosts that redaction must remove.
    e = _export_with_healthy_reference(b, 35).export_id
    b.fail(e, "partner-grc-gateway", ago(hours=1), 503, kind="webhook", visibility="private",
           endpoint=f"https://{PRIVATE_CONNECTOR_HOST}/ingest/v2")
    b.expect_plan(e, "partner-grc-gateway", "eligible", "private connector: its host must become [private]")

    e = _export_with_healthy_reference(b, 36).export_id
    b.fail(e, "grc-webhook", ago(hours=2), 500, key="idem-000036-grc", visibility="public",
           endpoint=f"https://svc-export:{DELIVERY_PASSWORD}@grc.example.com/api/v2/evidence")
    b.expect_plan(e, "grc-webhook", "eligible", "endpoint with user:password@")

    e = _export_with_healthy_reference(b, 37).export_id
    b.fail(e, "evidence-bucket", ago(hours=1), 503,
           endpoint=presigned_s3_url(f"https://evidence-drop-prod.s3.eu-west-1.amazonaws.com/exports/{e}.tar.zst",
                                  AMZ_SIGNATURE))
    b.expect_plan(e, "evidence-bucket", "eligible", "S3 presigned endpoint (X-Amz-Signature, AKIA credential)")

    e = _export_with_healthy_reference(b, 38).export_id
    b.fail(e, "azure-evidence", ago(hours=1), 408,
           endpoint=azure_sas_url(f"https://auditevidence.blob.core.windows.net/exports/{e}.tar.zst", AZURE_SIG))
    b.expect_plan(e, "azure-evidence", "eligible", "ambiguous 408 on azure_blob (idempotent kind); Azure SAS sig=")

    e = _export_with_healthy_reference(b, 39).export_id
    on_the_minute = (b.as_of - timedelta(hours=1)).replace(second=0, microsecond=0)
    b.fail(e, "grc-webhook", on_the_minute, 429, retry_after=600, style="minutes",
           endpoint=f"https://hooks.grc-vendor.example/v1/evidence?token={WEBHOOK_TOKEN}")
    b.expect_plan(e, "grc-webhook", "eligible", "endpoint with token= query; timestamp without seconds")

    e = _export_with_healthy_reference(b, 40).export_id
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



def _plant_rule_order_cases(b: _SampleBuilder) -> None:
    """exp-000041..45: rules that meet (Retry-After vs class, backoff vs Retry-After, count vs
    class), fields never cross-validated, and conflicting duplicate attempts."""
    ago = b.ago
    e = _export_with_healthy_reference(b, 41).export_id
    b.fail(e, "gcs-evidence", ago(minutes=30), 500, retry_after=7200)
    b.expect_plan(e, "gcs-evidence", "retry_after_pending",
                  "ambiguous 500 on gcs (idempotent): Retry-After applies whatever the class")

    e = _export_with_healthy_reference(b, 42).export_id
    for hours in (3, 2, 0.5):
        b.fail(e, "grc-webhook", ago(hours=hours), 503, retry_after=120)
    b.expect_plan(e, "grc-webhook", "backoff_pending", "3 failures: 60 min backoff > Retry-After 120 s")

    e = _export_with_healthy_reference(b, 43).export_id
    for hours in (9, 7, 5, 3, 1):
        b.fail(e, "grc-webhook", ago(hours=hours))
    b.expect_plan(e, "grc-webhook", "attempts_exhausted", "5 unclassified failures: rule 3 before rule 6")

    e = _export_with_healthy_reference(b, 44).export_id
    b.deliver(e, "grc-webhook", ago(days=3), retry_after=30)
    b.fail(e, "evidence-bucket", ago(days=3), 200, "timeout")
    b.deliver(e, "evidence-bucket", ago(days=3) + timedelta(minutes=20))
    b.expect_recovered(e, "evidence-bucket", "no cross-field validation: Retry-After on a delivered attempt, "
                                             "200 on a failed one")

    # exp-000045: conflicting duplicate attempts (quarantined) next to a valid one.
    e = _export_with_healthy_reference(b, 45).export_id
    b.fail(e, "grc-webhook", ago(hours=2), 503)
    for status in (503, 502):
        b.fail(e, "grc-webhook", ago(minutes=30), status, attempt_id="att-000045-02",
               reasons=["conflicting_duplicate"])
    b.expect_plan(e, "grc-webhook", "eligible", "two conflicting rows of att-000045-02 quarantined; 1 failure left")


# ---------------------------------------------------------------------------------------------
# docs/archive-health.md: archive reference health. One verified export per case (exp-000101..), generated
# 40 days before as_of; a healthy reference is compliance-locked past the required retention,
# digest as exported, checked yesterday (inventory + checksum).
# ---------------------------------------------------------------------------------------------


def _plant_archive_health_cases(b: _SampleBuilder) -> None:
    """Every archive-health case, exp-000101 to exp-000156, in that order."""
    _plant_presence_and_digest_cases(b)
    _plant_lock_cases(b)
    _plant_retention_cases(b)
    _plant_check_age_cases(b)
    _plant_reference_count_cases(b)
    _plant_export_state_reference_cases(b)
    _plant_combined_finding_cases(b)
    _plant_archive_uri_credential_cases(b)


def _archive_case(b: _SampleBuilder, export: _Export, covers: str) -> None:
    b.case("archives", export.export_id, covers)


def _plant_presence_and_digest_cases(b: _SampleBuilder) -> None:
    """exp-000101..109: the object gone or back, and archived against observed digests."""
    ago, ahead = b.ago, b.ahead
    e = b.export(101)
    b.healthy_reference(e)
    _archive_case(b, e, "healthy: one intact reference, nothing to report")

    e = b.export(102)
    ref = b.reference(e, expect=["object_missing"])
    b.fresh_checks(ref, at=ago(days=2))
    b.check(ref, ago(hours=6), present=False)
    _archive_case(b, e, "object_missing: latest check found the object gone")

    e = b.export(103)
    ref = b.reference(e)
    b.check(ref, ago(days=3), present=False)
    b.fresh_checks(ref)
    _archive_case(b, e, "healthy: an earlier check found it missing, the latest found it back")

    e = b.export(104)
    ref = b.healthy_reference(e)
    b.check(ref, ahead(hours=1), present=False)
    _archive_case(b, e, "healthy: a 'missing' check dated after as_of is ignored")

    e = b.export(105)
    ref = b.reference(e, digest=_digest(e.export_id, "tampered"), expect=["digest_mismatch"])
    b.check(ref, ago(days=1), lock_mode="compliance")
    _archive_case(b, e, "digest_mismatch: archived_digest differs, no observed digest")

    e = b.export(106)
    ref = b.reference(e, digest=_digest(e.export_id, "typo"))
    b.fresh_checks(ref, digest=e.digest)
    _archive_case(b, e, "healthy: wrong archived_digest, but the observed digest (which wins) matches")

    e = b.export(107)
    ref = b.reference(e, expect=["digest_mismatch"])
    b.check(ref, ago(days=1), lock_mode="compliance")
    b.check(ref, ago(hours=20), digest=_digest(e.export_id, "bitrot"))
    _archive_case(b, e, "digest_mismatch: archived digest right, observed digest (bit rot) wrong")

    e = b.export(108)
    ref = b.reference(e, digest=None, expect=["digest_unverifiable"])
    b.check(ref, ago(days=1), lock_mode="compliance")
    _archive_case(b, e, "digest_unverifiable: no archived and no observed digest")

    e = b.export(109)
    ref = b.reference(e, digest=None)
    b.check(ref, ago(days=3), digest=e.digest)
    b.check(ref, ago(days=1), lock_mode="compliance")
    _archive_case(b, e, "healthy: latest non-null observed_digest comes from an older check")



def _plant_lock_cases(b: _SampleBuilder) -> None:
    """exp-000110..114: lock mode and legal hold, declared and observed."""
    ago = b.ago
    e = b.export(110)
    ref = b.reference(e, provider="filesystem", lock_mode="none", retain_until=None, expect=["not_immutable"])
    b.check(ref, ago(days=1), digest=e.digest, lock_mode="none")
    _archive_case(b, e, "not_immutable: lock_mode none, no legal hold")

    e = b.export(111)
    ref = b.reference(e, provider="gcs_bucket_lock", lock_mode=None, legal_hold=None, expect=["not_immutable"])
    b.check(ref, ago(days=1), digest=e.digest)
    _archive_case(b, e, "not_immutable: lock_mode and legal_hold null (defaults none / false)")

    e = b.export(112)
    ref = b.reference(e, provider="filesystem", lock_mode="none", retain_until=None, legal_hold=True)
    b.check(ref, ago(days=1), digest=e.digest)
    _archive_case(b, e, "healthy: lock none but legal hold (no retention_missing: lock is none)")

    e = b.export(113)
    ref = b.reference(e, expect=["not_immutable"])
    b.check(ref, ago(days=1), digest=e.digest, lock_mode="none")
    _archive_case(b, e, "not_immutable: declared compliance, observed lock none overrides")

    e = b.export(114)
    ref = b.reference(e, provider="azure_immutable_blob", lock_mode="governance", expect=["governance_mode"])
    b.fresh_checks(ref)
    _archive_case(b, e, "governance_mode: Azure unlocked policy")



def _plant_retention_cases(b: _SampleBuilder) -> None:
    """exp-000115..123: retention missing, expired, expiring or short, declared and observed."""
    ago, ahead = b.ago, b.ahead
    e = b.export(115)
    ref = b.reference(e, retain_until=None, expect=["retention_missing"])
    b.check(ref, ago(days=1), digest=e.digest, lock_mode="compliance")
    _archive_case(b, e, "retention_missing: compliance without retain_until")

    e = b.export(116)
    ref = b.reference(e, retain_until=ago(days=10), expect=["retention_expired", "retention_short"])
    b.fresh_checks(ref)
    _archive_case(b, e, "retention_expired (+ retention_short): retain_until 10 days before as_of")

    e = b.export(117)
    ref = b.reference(e, retain_until=b.as_of, expect=["retention_expired", "retention_short"])
    b.fresh_checks(ref)
    _archive_case(b, e, "retention_expired: retain_until == as_of exactly")

    e = b.export(118)
    ref = b.reference(e, retain_until=ago(days=10), legal_hold=True, expect=["retention_short"])
    b.fresh_checks(ref)
    _archive_case(b, e, "legal hold: no retention_expired, retention_short still fires")

    e = b.export(119, required_retain_until=ahead(days=5))
    ref = b.reference(e, retain_until=ahead(days=10), expect=["retention_expiring"])
    b.fresh_checks(ref)
    _archive_case(b, e, "retention_expiring: 10 days left; explicit required_retain_until (as_of + 5 d) met")

    e = b.export(120, required_retain_until=ahead(days=1))
    ref = b.reference(e, retain_until=ahead(days=30), expect=["retention_expiring"])
    b.fresh_checks(ref)
    _archive_case(b, e, "retention_expiring: retain_until == as_of + 30 days exactly")

    e = b.export(121)
    ref = b.reference(e, retain_until=e.generated_at + timedelta(days=5 * 365), expect=["retention_short"])
    b.fresh_checks(ref)
    _archive_case(b, e, "retention_short: 5 years < 2557 days after generated_at")

    e = b.export(122, required_retain_until=b.ago(days=40) + timedelta(days=3650))
    ref = b.reference(e, retain_until=e.generated_at + _REQUIRED_RETENTION + timedelta(days=30),
                      expect=["retention_short"])
    b.fresh_checks(ref)
    _archive_case(b, e, "retention_short: explicit required_retain_until (10 years) beats the 7-year default")

    e = b.export(123)
    ref = b.reference(e, retain_until=e.generated_at + timedelta(days=5 * 365))
    b.fresh_checks(ref, retain_until=e.required_retain_until + timedelta(days=30))
    _archive_case(b, e, "healthy: declared retention short, observed (extended) retention overrides")



def _plant_check_age_cases(b: _SampleBuilder) -> None:
    """exp-000124..127: how old the latest custody check is."""
    ago = b.ago
    e = b.export(124)
    b.reference(e, expect=["check_stale"])
    _archive_case(b, e, "check_stale: no custody check at all")

    e = b.export(125)
    ref = b.reference(e, expect=["check_stale"])
    b.fresh_checks(ref, at=ago(days=8, hours=4))
    _archive_case(b, e, "check_stale: latest check 8 days old")

    e = b.export(126)
    ref = b.reference(e)
    b.check(ref, ago(days=7, hours=1), digest=e.digest)
    b.check(ref, ago(days=7), lock_mode="compliance")
    _archive_case(b, e, "healthy: latest check exactly 7 days old (not stale)")

    e = b.export(127)
    ref = b.reference(e, archived_at=ago(days=2))
    b.check(ref, ago(days=2, hours=1), digest=e.digest, lock_mode="compliance")
    _archive_case(b, e, "healthy: its only check is dated before archived_at, and still counts")



def _plant_reference_count_cases(b: _SampleBuilder) -> None:
    """exp-000128..132: exports with no usable reference, or two references."""
    ago, ahead = b.ago, b.ahead
    e = b.export(128)
    b.expected.findings[(e.export_id, None)] = frozenset({"missing_reference"})
    _archive_case(b, e, "missing_reference: verified, no archive record")

    e = b.export(129)
    ref = b.reference(e, archived_at=ahead(hours=2), expect=None)
    b.check(ref, ago(hours=1), digest=e.digest)
    b.expected.findings[(e.export_id, None)] = frozenset({"missing_reference"})
    _archive_case(b, e, "missing_reference: its reference is archived after as_of; that ref's check is not unmatched")

    e = b.export(130)
    ref = b.reference(e, "a", expect=["object_missing"])
    b.check(ref, ago(days=1), present=False)
    b.healthy_reference(e, "b", provider="azure_immutable_blob")
    _archive_case(b, e, "two references, one intact: represented, custody_status warning")

    e = b.export(131)
    b.fresh_checks(b.reference(e, "a", digest=_digest(e.export_id, "v0"), expect=["digest_mismatch"]))
    ref = b.reference(e, "b", provider="filesystem", lock_mode="none", retain_until=None, expect=["not_immutable"])
    b.check(ref, ago(days=1), digest=e.digest)
    _archive_case(b, e, "two references, none intact: unrepresented, custody_status critical")

    e = b.export(132)
    b.fresh_checks(b.reference(e, "a", retain_until=ago(days=1), expect=["retention_expired", "retention_short"]))
    ref = b.reference(e, "b", provider="azure_immutable_blob", lock_mode="governance", expect=["governance_mode"])
    b.fresh_checks(ref)
    _archive_case(b, e, "two references: one critical, one with a warning only (intact): warning")



def _plant_export_state_reference_cases(b: _SampleBuilder) -> None:
    """exp-000133..139: references of re-exported, superseded, incomplete or unknown exports,
    and custody checks of no reference."""
    ago, ahead = b.ago, b.ahead
    e = b.export(133, history=[("verified", None), ("verified", ago(days=5))], digest_versions=["v1", "v2"])
    ref = b.reference(e, digest=_digest(e.export_id, "v1"), expect=["digest_mismatch"])
    b.check(ref, ago(days=1), digest=_digest(e.export_id, "v1"), lock_mode="compliance")
    _archive_case(b, e, "digest_mismatch: re-exported (v2); the reference holds v1 of an older state")

    e = b.export(134, history=[("verified", None), ("superseded", ago(days=3))])
    ref = b.reference(e, "a", expect=None)
    b.fresh_checks(ref)
    b.expected.unchecked_references.add(ref)
    b.expected.unchecked_references.add(
        b.reference(e, "b", provider="filesystem", lock_mode="none", retain_until=None, expect=None))
    _archive_case(b, e, "superseded: its 2 references are not checked (unchecked_references)")

    e = b.export(135, history=[("incomplete", None)])
    b.expected.unchecked_references.add(b.reference(e, expect=None))
    _archive_case(b, e, "incomplete: its reference is not checked")

    e = b.export(136, history=[("incomplete", None), ("verified", ago(days=20))])
    b.healthy_reference(e)
    _archive_case(b, e, "incomplete then verified: checked, healthy")

    e = b.export(137, history=[("verified", None), ("failed", ahead(days=1))])
    b.healthy_reference(e)
    _archive_case(b, e, "a 'failed' state after as_of is ignored: checked, healthy")

    ref = b.reference("exp-000138", digest=_digest("exp-000138"), archived_at=ago(days=30),
                      retain_until=ahead(days=2600), expect=None)
    b.check(ref, ago(days=1), lock_mode="compliance")
    b.expected.orphans.add(ref)
    b.case("archives", ref, "orphan_reference: no export record at all")

    b.check("ref-000139-x", ago(days=1), lock_mode="compliance")
    b.check("ref-000139-x", ago(hours=20), present=False)
    b.expected.unmatched_custody_checks += 2
    b.case("custody_checks", "ref-000139-x", "2 unmatched custody checks: reference in no archive record")



def _plant_combined_finding_cases(b: _SampleBuilder) -> None:
    """exp-000140..147: several findings on one reference, and quarantined duplicates."""
    ago, ahead = b.ago, b.ahead
    e = b.export(140)
    ref = b.reference(e, expect=["object_missing", "not_immutable"])
    b.check(ref, ago(days=2), digest=e.digest)
    b.check(ref, ago(hours=8), present=False, lock_mode="none")
    _archive_case(b, e, "object_missing + not_immutable: a 'missing' check still contributes observed values")

    e = b.export(142)
    ref = b.reference(e, provider="filesystem", lock_mode="none", retain_until=ago(days=5),
                      expect=["not_immutable", "retention_expired", "retention_short"])
    b.check(ref, ago(days=1), digest=e.digest)
    _archive_case(b, e, "retention checks apply whatever the lock mode: none + expired + short")

    e = b.export(143)
    ref = b.reference(e, provider="azure_immutable_blob", lock_mode="governance", retain_until=None,
                      expect=["governance_mode", "retention_missing"])
    b.check(ref, ago(days=1), digest=e.digest, lock_mode="governance")
    _archive_case(b, e, "governance_mode + retention_missing: two warnings, still intact")

    e = b.export(144)
    ref = b.reference(e, provider="filesystem", lock_mode="none", retain_until=None)
    b.check(ref, ago(days=1), digest=e.digest, legal_hold=True)
    _archive_case(b, e, "healthy: lock none, but an observed legal hold")

    e = b.export(145)
    b.healthy_reference(e, "a")
    b.reference(e, "b", provider="filesystem", lock_mode="none", archived_at=ahead(days=1), expect=None)
    _archive_case(b, e, "healthy: its second (non-immutable) reference is archived after as_of")

    e = b.export(146)
    ref = b.reference(e)
    b.fresh_checks(ref, at=ago(days=2))
    for present in (True, False):
        b.check(ref, ago(days=1), present=present, reasons=["conflicting_duplicate"])
    _archive_case(b, e, "healthy: two conflicting checks at the same checked_at are quarantined")

    e = b.export(147)
    for days in (2600, 2700):  # same reference_id, different retain_until: both quarantined
        b.reference(e, retain_until=e.generated_at + timedelta(days=days), expect=None,
                    reasons=["conflicting_duplicate"])
    b.expected.findings[(e.export_id, None)] = frozenset({"missing_reference"})
    _archive_case(b, e, "missing_reference: its only reference is a conflicting duplicate (quarantined)")



def _plant_archive_uri_credential_cases(b: _SampleBuilder) -> None:
    """exp-000150..156: credentials and private hosts in archive URIs, otherwise healthy."""
    # docs/security.md#what-is-never-stored-or-printed on archive URIs: credentials and private hosts; otherwise healthy.
    credential_uris = [
        (150, "minio_object_lock",
         f"https://archiver:{ARCHIVE_PASSWORD}@files.evidence.example.com/worm/exp-000150.tar.zst",
         "user:password@ in archive_uri; provider not in the usual list"),
        (151, "azure_immutable_blob",
         azure_sas_url("https://evidencearchive.blob.core.windows.net/worm/exp-000151.tar.zst", AZURE_ARCHIVE_SIG),
         "Azure SAS sig= in archive_uri"),
        (152, "aws_s3_object_lock",
         presigned_s3_url("https://evidence-archive-prod.s3.amazonaws.com/exports/exp-000152/bundle.tar.zst",
                       AMZ_ARCHIVE_SIGNATURE),
         "S3 presigned archive_uri"),
        (153, "gcs_bucket_lock",
         "https://storage.googleapis.com/evidence-lock-prod/exports/exp-000153.tar.zst"
         "?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=archiver%40evidence.iam.gserviceaccount.com"
         f"%2F20261119%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Expires=900&X-Goog-Signature={GOOG_SIGNATURE}",
         "GCS signed archive_uri"),
        (154, "filesystem", "sftp://nas01.vault.internal/worm/exp-000154.tar.zst",
         "private host (.internal) in archive_uri"),
        (155, "filesystem", "https://192.168.50.12/worm/exp-000155.tar.zst", "private address in archive_uri"),
        (156, "aws_s3_object_lock",
         f"https://archive.evidence.example.com/objects/exp-000156.tar.zst?token={ARCHIVE_TOKEN}",
         "token= query in archive_uri"),
    ]
    for number, provider, uri, covers in credential_uris:
        e = b.export(number)
        b.healthy_reference(e, provider=provider, uri=uri)
        _archive_case(b, e, f"healthy; {covers}")


# ---------------------------------------------------------------------------------------------
# docs/inputs.md#bad-input-and-quarantine: records that break the contract (exp-00095x..), each with the reasons it earns.
# ---------------------------------------------------------------------------------------------


def _plant_quarantine_cases(b: _SampleBuilder) -> None:
    """Every quarantine case, one log after the other."""
    _plant_export_quarantine_cases(b)
    _plant_delivery_quarantine_cases(b)
    _plant_archive_quarantine_cases(b)
    _plant_custody_check_quarantine_cases(b)


def _day_before_and_naive_text(b: _SampleBuilder) -> tuple[datetime, str]:
    """as_of - 2 days, and that instant written without an offset (a naive timestamp)."""
    day_before = b.ago(days=2)
    return day_before, _iso(day_before).removesuffix("Z")


def _plant_export_quarantine_cases(b: _SampleBuilder) -> None:
    """exports.jsonl: exp-000951..970, and a delivery of an export whose only record is quarantined."""
    ago = b.ago
    day_before, naive = _day_before_and_naive_text(b)

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
          f'"note": "re-upload with {LEAKED_KEY_ID} via https://hooks.grc-vendor.example/v1/evidence?token='
          f'{WEBHOOK_TOKEN}", "export_digest": "sha256:', ["malformed_json"])
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


def _plant_delivery_quarantine_cases(b: _SampleBuilder) -> None:
    """deliveries.csv: exp-000971..982, one broken attempt each."""
    ago = b.ago
    day_before, naive = _day_before_and_naive_text(b)

    def bad_attempt(number: int, reasons: list[str], covers: str, **changes: Any) -> None:
        export_id = f"exp-{number:06d}"
        record = b.attempt(export_id, "grc-webhook", ago(hours=2), "failed", status=503, reasons=reasons)
        record.update(changes)
        b.case("deliveries", record["attempt_id"] or export_id, f"quarantine {'+'.join(reasons)}: {covers}")

    bad_attempt(971, ["wrong_type"], 'http_status "abc"', http_status="abc")
    bad_attempt(972, ["wrong_type"], 'retry_after_seconds "12.5"', retry_after_seconds="12.5")
    bad_attempt(973, ["out_of_range"], "http_status 700; endpoint with token= in the raw text", http_status=700,
                endpoint=f"https://hooks.grc-vendor.example/v1/evidence?token={WEBHOOK_TOKEN}")
    bad_attempt(974, ["out_of_range"], "retry_after_seconds 40000000", http_status=429, retry_after_seconds=40_000_000)
    bad_attempt(975, ["out_of_range"], "http_status 99", http_status=99)
    bad_attempt(976, ["unknown_enum_value"], "outcome success", outcome="success")
    bad_attempt(977, ["unknown_enum_value"], "connector_visibility internal", connector_visibility="internal")
    bad_attempt(978, ["missing_required_field"], "attempt_id empty", attempt_id="")
    bad_attempt(979, ["missing_required_field"], "connector_kind blank after trimming", connector_kind="   ")
    bad_attempt(980, ["naive_timestamp"], "attempted_at without offset", attempted_at=naive)
    bad_attempt(981, ["invalid_timestamp"], "space instead of T", attempted_at=_iso(day_before).replace("T", " "))
    bad_attempt(982, ["invalid_timestamp"], "lower-case z", attempted_at=_iso(day_before).replace("Z", "z"))


def _plant_archive_quarantine_cases(b: _SampleBuilder) -> None:
    """archives.parquet: exp-000983..988, one broken reference each (native types, so no type
    or timestamp text faults here)."""
    ago = b.ago

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


def _plant_custody_check_quarantine_cases(b: _SampleBuilder) -> None:
    """custody_checks.jsonl.gz: broken checks of ref-000101-a."""
    # They all point at exp-000101's healthy reference, later than its fresh checks, so
    # accepting one of them by mistake shows up as a finding.
    ref = "ref-000101-a"
    at = b.ago(hours=3)

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


def _plant_filler_exports(b: _SampleBuilder, first: int, count: int) -> None:
    """Exports first..first+count-1: healthy, delivered (some after failures), checked daily."""
    rng = b.rng
    for number in range(first, first + count):
        age_days = rng.randint(3, 300) + rng.randint(0, 23) / 24
        generated_at = b.ago(days=age_days)
        n_states = rng.choice((1, 1, 2, 2, 3))
        history = [("incomplete", generated_at + timedelta(minutes=30 * (k + 1))) for k in range(n_states - 1)]
        history.append(("verified", generated_at + timedelta(hours=2 + n_states)))
        required = generated_at + timedelta(days=3650) if rng.random() < 0.1 else None
        extra = {"request_headers": f"Authorization: Bearer {BEARER_TOKEN}"} if number % 20 == 0 else None
        export = b.export(number, age_days=age_days, history=history, required_retain_until=required, extra=extra)
        if number % 20 == 0:
            b.case("exports", export.export_id, "extra field request_headers with Authorization: Bearer <token>")
        if number == first:
            b.duplicate_last("exports")
            b.case("exports", export.export_id, "exact duplicate: the same line twice")
        _plant_filler_deliveries(b, export, first_attempt_after=timedelta(hours=n_states + 3))
        _plant_filler_references(b, export, number - first)


def _plant_filler_deliveries(b: _SampleBuilder, export: _Export, first_attempt_after: timedelta) -> None:
    """1-3 destinations, each ending delivered; a failure first makes it recovered."""
    rng = b.rng
    for destination in sorted(rng.sample(_FILLER_DESTINATIONS, rng.randint(1, 3))):
        at = export.generated_at + first_attempt_after + timedelta(minutes=rng.randint(5, 120))
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


def _plant_filler_references(b: _SampleBuilder, export: _Export, position: int) -> None:
    """1-2 references, compliance-locked past the required retention, checked daily.
    `position` is the export's place among the filler (0 = first)."""
    rng = b.rng
    number = int(export.export_id[4:])
    for suffix in "ab"[: rng.choice((1, 1, 1, 2))]:
        provider = rng.choice(PROVIDERS[:3])
        retain_until = export.required_retain_until + timedelta(days=rng.randint(1, 365))
        ref = b.reference(export, suffix, provider=provider, retain_until=retain_until,
                          legal_hold=rng.choice((False, False, None)),
                          archived_at=export.generated_at + timedelta(hours=rng.randint(3, 30)))
        if position == 1 and suffix == "a":
            b.duplicate_last("archives")
            b.case("archives", ref, "exact duplicate: the same row twice")
        for day in range(7):  # a week of daily inventory listings, on the hour
            b.check(ref, b.ago(days=day, hours=rng.randint(1, 20)), lock_mode="compliance",
                    retain_until=retain_until, legal_hold=False,
                    extra={"collector": "inventory-v3"} if day else None)
        b.check(ref, b.ago(hours=rng.randint(2, 60), minutes=17), digest=export.digest)  # checksum job
        if position == 2:
            b.duplicate_last("custody_checks")
            b.case("custody_checks", ref, "exact duplicate: the same check twice")
        if number % 25 == 3:
            b.check(ref, b.ago(hours=0.5), extra={"headers": {"Authorization": f"Bearer {BEARER_TOKEN}"}})
            b.case("custody_checks", ref, "extra field holding an Authorization header (nested object)")


# ---------------------------------------------------------------------------------------------
# Assembling and writing the default sample
# ---------------------------------------------------------------------------------------------


def build_sample(seed: int = DEFAULT_SEED, as_of: datetime = DEFAULT_AS_OF) -> _SampleBuilder:
    """Every row of the default sample, with its planted cases and expected outcomes."""
    builder = _SampleBuilder(as_of, random.Random(seed))
    _plant_retry_plan_cases(builder)
    _plant_archive_health_cases(builder)
    _plant_duplicate_spellings(builder)
    _plant_quarantine_cases(builder)
    _plant_filler_exports(builder, first=201, count=100)
    return builder


def _plant_duplicate_spellings(b: _SampleBuilder) -> None:
    """Exact duplicates judged on stored values: extra fields and offset spelling do not count."""
    exports = b.rows["exports"]
    original = next(row for row in exports if isinstance(row.value, dict) and row.value["export_id"] == "exp-000101")
    with_header = dict(original.value, request_headers=f"Authorization: Bearer {BEARER_TOKEN}")
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
            lines.append("")  # a blank line is not a record (docs/inputs.md#fine-print-on-types-and-formats)
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
    """Which documented rule each planted record covers, in the order they were planted."""
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

