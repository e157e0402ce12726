"""The real-source part of the default sample (docs/real-sources.md): five more verified exports archived
in their own S3 bucket, an S3 Inventory report of that bucket (CSV gzip, with manifest.checksum),
an S3 Batch Operations Compute-checksum completion report, and a Svix list-attempts page.

`write_real_sources(out_dir)` writes, under out_dir: `exports.jsonl`, `archives.jsonl` (give them
with the other logs), `s3/inventory/<bucket>/daily/<ts>/manifest.json` (+ data file),
`s3/batch/job-<id>/manifest.json` (+ results) and `svix/page-0001.json`. The planted sample's
own records are untouched: its expected outcomes do not change. The bytes are the same on
every run (no clock, gzip mtime 0, sorted JSON keys).

What the reports show, evaluated at as_of with the default policy:

| reference | inventory (as_of - 2 h) | checksum job (as_of - 1 h) | alerts |
|---|---|---|---|
| ref-900001 | COMPLIANCE, OFF | SHA-256 equal | none |
| ref-900002 | a delete marker is current; the version is gone | NoSuchVersion | object_missing |
| ref-900003 | GOVERNANCE | failed 500 (inconclusive) | governance_mode |
| ref-900004 | no lock, hold OFF | SHA-256 equal | not_immutable |
| ref-900005 | COMPLIANCE, OFF | another SHA-256 | digest_mismatch |

The Svix page holds two final attempts (exp-900001 failed with a 502, exp-900003 delivered) and
one pending attempt (quarantined: attempt_not_final).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path

from exportaudit.sample.common import DEFAULT_AS_OF

BUCKET = "evidence-archive-s3demo"
EXPORT_IDS = tuple(f"exp-90000{i}" for i in range(1, 6))
INVENTORY_SCHEMA = ("Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass, "
                    "ObjectLockRetainUntilDate, ObjectLockMode, ObjectLockLegalHoldStatus")
REPORT_SCHEMA = "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
EXPECTED_ALERTS = {"ref-900002": {"object_missing"}, "ref-900003": {"governance_mode"},
                   "ref-900004": {"not_immutable"}, "ref-900005": {"digest_mismatch"}}


def _iso(moment: datetime, millis: bool = False) -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{moment.microsecond // 1000:03d}Z" if millis else "Z")


def _sha_hex(export_id: str) -> str:
    return hashlib.sha256(f"export bundle {export_id}".encode()).hexdigest()


def _key(export_id: str) -> str:
    return f"exports/{export_id}/bundle.tar.zst"


def _version(export_id: str) -> str:
    return hashlib.sha256(f"version {export_id}".encode()).hexdigest()[:32]


def _jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()


def _csv_line(fields: list[str]) -> str:
    return ",".join('"' + f.replace('"', '""') + '"' for f in fields)


def _checksum_message(hex_digest: str) -> str:
    message = json.dumps({"checksumAlgorithm": "SHA256", "checksumType": "FULL_OBJECT",
                          "checksum_hex": hex_digest.upper(), "etag": hex_digest[:32]}, separators=(",", ":"))
    return '"' + message.replace('"', '""') + '"'


def real_source_files(as_of: datetime = DEFAULT_AS_OF) -> dict[str, bytes]:
    """Relative path -> bytes of every file of the real-source sample."""
    retain = _iso(as_of + timedelta(days=6 * 365), millis=True)
    exports = [{"export_id": e, "release_record_ref": f"REL-S3DEMO-{e[-1]}", "verification_id": f"ver-{e}",
                "verification_state": "verified", "export_digest": "sha256:" + _sha_hex(e),
                "generated_at": _iso(as_of - timedelta(days=30)), "updated_at": _iso(as_of - timedelta(days=30)),
                "required_retain_until": _iso(as_of + timedelta(days=5 * 365))} for e in EXPORT_IDS]
    archives = [{"reference_id": "ref-" + e[4:], "export_id": e, "archive_provider": "aws_s3_object_lock",
                 "archive_uri": f"s3://{BUCKET}/{_key(e)}?versionId={_version(e)}",
                 "archived_digest": "sha256:" + _sha_hex(e), "lock_mode": "compliance",
                 "retain_until": _iso(as_of + timedelta(days=6 * 365)), "legal_hold": False,
                 "archived_at": _iso(as_of - timedelta(days=29))} for e in EXPORT_IDS]
    modified = _iso(as_of - timedelta(days=29), millis=True)

    def row(e: str, version: str, mode: str = "COMPLIANCE", latest: str = "true", marker: str = "false") -> str:
        size = "" if marker == "true" else "1048576"
        return _csv_line([BUCKET, _key(e), version, latest, marker, size, modified, _sha_hex(e)[:32], "STANDARD",
                          retain if mode else "", mode, "" if marker == "true" else "OFF"])

    e1, e2, e3, e4, e5 = EXPORT_IDS
    inventory_rows = [row(e1, _version(e1)), row(e2, "dm-" + _version(e2)[:29], "", marker="true"),
                      row(e3, _version(e3), "GOVERNANCE"), row(e4, _version(e4), ""), row(e5, _version(e5))]
    inventory_data = gzip.compress(("\n".join(inventory_rows) + "\n").encode(), mtime=0)
    inventory_time = as_of - timedelta(hours=2)
    folder = inventory_time.strftime("%Y-%m-%dT%H-%MZ")
    base = f"s3/inventory/{BUCKET}/daily"
    data_key = f"{base}/data/{hashlib.md5(inventory_data).hexdigest()}.csv.gz"
    manifest = json.dumps({
        "sourceBucket": BUCKET, "destinationBucket": "arn:aws:s3:::evidence-inventory-dest", "version": "2016-11-30",
        "creationTimestamp": str(int(inventory_time.timestamp() * 1000)), "fileFormat": "CSV",
        "fileSchema": INVENTORY_SCHEMA,
        "files": [{"key": data_key.removeprefix("s3/inventory/"), "size": len(inventory_data),
                   "MD5checksum": hashlib.md5(inventory_data).hexdigest()}],
    }, indent=2).encode()

    succeeded = [f"{BUCKET},{_key(e1)},{_version(e1)},succeeded,200,,{_checksum_message(_sha_hex(e1))}",
                 f"{BUCKET},{_key(e4)},{_version(e4)},succeeded,200,,{_checksum_message(_sha_hex(e4))}",
                 f"{BUCKET},{_key(e5)},{_version(e5)},succeeded,200,,{_checksum_message('0' * 64)}"]
    failed = [f'{BUCKET},{_key(e2)},{_version(e2)},failed,200,PermanentFailure,"error details: {{""failureMessage"":'
              f'""Task 2c1d Version not found"",""errorCode"":""NoSuchVersion""}}"',
              f'{BUCKET},{_key(e3)},{_version(e3)},failed,500,InternalError,"error details: {{""failureMessage"":'
              f'""Internal server error, please retry"",""errorCode"":""500""}}"']
    job = "job-5e1f0c2a-demo"
    results = {}
    for status, lines in (("succeeded", succeeded), ("failed", failed)):
        data = ("\n".join(lines) + "\n").encode()
        results[f"s3/batch/{job}/results/{hashlib.sha1(data).hexdigest()}.csv"] = (status, data)
    batch_manifest = json.dumps({
        "Format": "Report_CSV_20180820", "ReportCreationDate": _iso(as_of - timedelta(hours=1), millis=True),
        "Results": [{"TaskExecutionStatus": status, "Bucket": "evidence-batch-reports",
                     "MD5Checksum": hashlib.md5(data).hexdigest(), "Key": key.removeprefix("s3/batch/")}
                    for key, (status, data) in results.items()],
        "ReportSchema": REPORT_SCHEMA}, indent=2).encode()

    def attempt(number: int, export_id: str, status: int, text: str, code: int, at: datetime) -> dict:
        return {"id": f"atmpt_demo{number:023d}", "msgId": f"msg_demo{number:023d}", "endpointId": "ep_grc_demo",
                "url": "https://grc.example.com/svix/hook?token=svix-demo-token", "response": "{}",
                "responseStatusCode": code, "responseDurationMs": 120, "status": status, "statusText": text,
                "triggerType": 0, "timestamp": _iso(at),
                "msg": {"eventId": export_id, "eventType": "export.final", "payload": {}}}

    page = {"data": [attempt(1, e1, 2, "fail", 502, as_of - timedelta(minutes=30)),
                     attempt(2, e3, 0, "success", 200, as_of - timedelta(hours=3)),
                     attempt(3, e5, 1, "pending", 0, as_of - timedelta(minutes=5))],
            "iterator": None, "prevIterator": None, "done": True}
    files = {"exports.jsonl": _jsonl(exports), "archives.jsonl": _jsonl(archives),
             data_key: inventory_data, f"{base}/{folder}/manifest.json": manifest,
             f"{base}/{folder}/manifest.checksum": (hashlib.md5(manifest).hexdigest() + "\n").encode(),
             f"s3/batch/{job}/manifest.json": batch_manifest,
             "svix/page-0001.json": json.dumps(page, indent=2, sort_keys=True).encode()}
    files.update({key: data for key, (_, data) in results.items()})
    return files


def write_real_sources(out_dir: str | Path, as_of: datetime = DEFAULT_AS_OF) -> dict[str, Path]:
    """Write the real-source sample under out_dir; return option name -> path to give it."""
    out = Path(out_dir)
    for relative, data in real_source_files(as_of).items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return {"exports": out / "exports.jsonl", "archives": out / "archives.jsonl", "s3_inventory": out / "s3/inventory",
            "s3_batch_report": out / "s3/batch", "svix_attempts": out / "svix"}
