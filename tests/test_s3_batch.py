"""docs/real-sources.md#s3-batch-operations-checksum-reports: S3 Batch Operations completion reports (Compute checksum)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from exportaudit.readers import UnreadableInput
from exportaudit.sources.s3_batch import batch_reports_frame, check_reports, read_report_rows

SHA_HEX = hashlib.sha256(b"export bundle").hexdigest()
SHA_B64 = base64.b64encode(bytes.fromhex(SHA_HEX)).decode()
REPORT_SCHEMA = "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"

# AWS's documented report examples: a CRC32 success and the failed row with unescaped quotes.
DOC_SUCCEEDED_CRC32 = ('amzn-s3-demo-bucket1,s3-standard-1mb-test-object,,succeeded,200,,"{""checksum_base64"":'
                       '""bS9TOQ\\u003d\\u003d"",""etag"":""3c3c1813042989094598e4b57ecbdc82"",""checksumAlgorithm"":'
                       '""CRC32"",""checksumType"":""FULL_OBJECT"",""checksum_hex"":""6D2F5339""}"')
DOC_FAILED_404 = ('evidence-bucket,gone.tar,,failed,200,PermanentFailure,"error details: {""failureMessage"":'
                  '"Task 6b3ae0c5 Key not found", ""errorCode"": "404"}"')


def sha_message(checksum_hex: str | None = SHA_HEX.upper(), checksum_base64: str | None = SHA_B64,
                algorithm: str = "SHA256", checksum_type: str = "FULL_OBJECT") -> str:
    message = {"checksum_base64": checksum_base64, "etag": "3c3c18", "checksumAlgorithm": algorithm,
               "checksumType": checksum_type, "checksum_hex": checksum_hex}
    text = json.dumps({k: v for k, v in message.items() if v is not None}, separators=(",", ":"))
    return '"' + text.replace("=", "\\u003d").replace('"', '""') + '"'


def write_batch(root: Path, results: dict[str, list[str]], *, created: str = "2024-05-01T10:00:00.725Z",
                job: str = "job-0001") -> Path:
    """<prefix>/job-<id>/manifest.json and one CSV per task status under results/ (keys from the root)."""
    entries = []
    for index, (status, lines) in enumerate(results.items()):
        data = ("\n".join(lines) + "\n").encode()
        key = f"reports/{job}/results/{index:040x}.csv"
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
        entries.append({"TaskExecutionStatus": status, "Bucket": "report-bucket",
                        "MD5Checksum": hashlib.md5(data).hexdigest(), "Key": key})
    manifest = root / "reports" / job / "manifest.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"Format": "Report_CSV_20180820", "ReportCreationDate": created,
                                    "Results": entries, "ReportSchema": REPORT_SCHEMA}))
    return manifest


def rows_of(manifest: Path):
    [report] = check_reports([manifest])
    return read_report_rows(report)


def test_succeeded_rows_and_digests(tmp_path):
    manifest = write_batch(tmp_path, {"succeeded": [
        f"evidence-bucket,exports/a+b%2Bc.tar,,succeeded,200,,{sha_message()}",  # hex, upper case
        f"evidence-bucket,b64-only.tar,v1,succeeded,200,,{sha_message(checksum_hex=None)}",
        f"evidence-bucket,short-hex.tar,null,succeeded,200,,{sha_message(checksum_hex='6D2F5339')}",
        f"evidence-bucket,composite.tar,,succeeded,200,,{sha_message(checksum_type='COMPOSITE')}",
        f"evidence-bucket,md5.tar,,succeeded,200,,{sha_message(algorithm='MD5')}",
        DOC_SUCCEEDED_CRC32,
        "evidence-bucket,plain.tar,,succeeded,200,,Successful",
    ]})
    rows = rows_of(manifest)
    assert rows["key"].to_list()[:2] == ["exports/a b+c.tar", "b64-only.tar"]
    assert rows["version_id"].to_list()[:3] == [None, "v1", None]  # "null" is the null version
    assert rows["observed_digest"].to_list() == [f"sha256:{SHA_HEX}", f"sha256:{SHA_HEX}", None, None, None,
                                                 None, None]
    assert rows["checksum_algorithm"][5] == "CRC32"
    assert rows["http_status"].unique().to_list() == ["200"]
    assert rows["error_code"].null_count() == rows.height
    assert rows["not_found"].any() is False
    assert rows["reason_codes"].list.len().sum() == 0
    assert rows["report_time"][0] == datetime(2024, 5, 1, 10, 0, 0, 725000, tzinfo=timezone.utc)


def test_a_json_message_without_csv_quotes_is_read_as_written(tmp_path):
    unquoted = sha_message()[1:-1].replace('""', '"')
    manifest = write_batch(tmp_path, {"succeeded": [f"b,k,,succeeded,200,,{unquoted}", f"b,j,,succeeded,200,,{sha_message()}"]})
    rows = rows_of(manifest)
    assert rows["observed_digest"].to_list() == [f"sha256:{SHA_HEX}"] * 2
    assert rows["result_message"][0] == unquoted and rows["reason_codes"].list.len().sum() == 0


def test_base64_that_is_not_a_sha256_gives_no_digest(tmp_path):
    manifest = write_batch(tmp_path, {"succeeded": [
        f"b,k,,succeeded,200,,{sha_message(checksum_hex=None, checksum_base64='bS9TOQ==')}",
        f"b,k2,,succeeded,200,,{sha_message(checksum_hex='', checksum_base64=SHA_B64)}",  # empty hex: absent
    ]})
    assert rows_of(manifest)["observed_digest"].to_list() == [None, f"sha256:{SHA_HEX}"]


def test_failed_rows_error_codes_in_either_column_order_and_in_the_message(tmp_path):
    manifest = write_batch(tmp_path, {"failed": [
        DOC_FAILED_404,  # unescaped quotes: more than 7 fields, errorCode in the message
        'evidence-bucket,k2,,failed,200,PermanentFailure,"error details: {""failureMessage"":""Key not found"", '
        '""errorCode"": ""NoSuchKey""}"',  # doubled-quote form
        "evidence-bucket,k3,v3,failed,NoSuchVersion,404,",  # error code first, status second
        "evidence-bucket,k4,,failed,404,SomethingElse,",  # 404 in the status column
        'evidence-bucket,k5,,failed,200,PermanentFailure,"error details: {""failureMessage"":'
        '"Internal server error, please retry", ""errorCode"": "500"}"',
        "evidence-bucket,k6,,failed,AccessDenied,403,Access Denied",
        "evidence-bucket,k7,,failed,,,",
        "evidence-bucket,k8,,failed,404,,",
    ]})
    rows = rows_of(manifest)
    assert rows["http_status"].to_list() == ["200", "200", "404", "404", "200", "403", None, "404"]
    assert rows["error_code"].to_list() == ["PermanentFailure", "PermanentFailure", "NoSuchVersion", "SomethingElse",
                                            "PermanentFailure", "AccessDenied", None, None]
    assert rows["message_error_code"].to_list() == ["404", "NoSuchKey", None, None, "500", None, None, None]
    assert rows["not_found"].to_list() == [True, True, True, True, False, False, False, True]
    assert rows["result_message"][0] == ('error details: {"failureMessage":Task 6b3ae0c5 Key not found", '
                                         '""errorCode"": "404"}"')
    assert rows["reason_codes"].list.len().sum() == 0


def test_succeeded_row_with_404_is_not_a_missing_object(tmp_path):
    manifest = write_batch(tmp_path, {"succeeded": ["b,k,,succeeded,404,NoSuchKey,x"]})
    assert rows_of(manifest)["not_found"].to_list() == [False]


def test_rows_with_fewer_than_seven_fields_are_quarantined(tmp_path):
    manifest = write_batch(tmp_path, {"failed": ["b,k,,failed,200", "", " \t ", "b,k2,,failed,500,InternalError,x"]})
    rows = rows_of(manifest)
    assert rows["reason_codes"].to_list() == [["wrong_column_count"], []]
    assert rows["raw_text"].to_list() == ["b,k,,failed,200", None]
    assert rows["source_row"].to_list() == [1, 4]  # blank lines (empty, or spaces and tabs only) are skipped


def test_integrity_altered_result_byte_and_missing_file(tmp_path):
    manifest = write_batch(tmp_path, {"succeeded": ["b,k,,succeeded,200,,x"], "failed": ["b,j,,failed,404,,"]})
    key = json.loads(manifest.read_text())["Results"][1]["Key"]
    (tmp_path / key).write_text("b,j,,failed,500,,\n")
    with pytest.raises(UnreadableInput) as error:
        check_reports([manifest])
    assert error.value.path == str(manifest) and key in error.value.cause
    (tmp_path / key).unlink()
    with pytest.raises(UnreadableInput, match="not found"):
        check_reports([manifest])


def test_manifest_problems_are_refused(tmp_path):
    manifest = write_batch(tmp_path, {"succeeded": ["b,k,,succeeded,200,,x"]})
    document = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**document, "ReportCreationDate": "2024-05-01 10:00"}))
    with pytest.raises(UnreadableInput, match="ReportCreationDate"):
        check_reports([manifest])
    manifest.write_text("{not json")
    with pytest.raises(UnreadableInput, match="not a JSON object"):
        check_reports([manifest])


def test_directory_search_and_report_frame(tmp_path):
    first = write_batch(tmp_path, {"succeeded": ["b,k,,succeeded,200,,x"]}, job="job-1")
    second = write_batch(tmp_path, {"succeeded": ["b,k,,succeeded,200,,x"]}, job="job-2",
                         created="2024-05-02T00:00:00Z")
    inventory = tmp_path / "inv" / "manifest.json"  # an inventory manifest in the tree is skipped
    inventory.parent.mkdir()
    inventory.write_text(json.dumps({"sourceBucket": "b", "files": []}))
    reports = check_reports([tmp_path])
    assert [r.manifest_path for r in reports] == [first, second]
    frame = batch_reports_frame(reports)
    assert frame["result_files"].to_list() == [1, 1]


def test_empty_result_file_gives_no_rows(tmp_path):
    manifest = write_batch(tmp_path, {"failed": []})
    rows = rows_of(manifest)
    assert rows.height == 0 and rows.columns[0] == "report_id"
