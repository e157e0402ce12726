"""JSON Lines decoding (exportaudit.readers): the decoded shape of lines whose structure
takes different paths through the decoder (extra keys or not, duplicated keys, non-objects,
escapes, big integers, nested values, line endings, blank lines, invalid UTF-8)."""

from __future__ import annotations

import polars as pl
import pytest

from exportaudit import readers
from exportaudit.contract import LOGS


def decode(tmp_path, log: str, content: bytes) -> pl.DataFrame:
    """Every batch of a JSON Lines file, raw_text included."""
    path = tmp_path / f"{log}.jsonl"
    path.write_bytes(content)
    batches = list(readers.decode_file(readers.load_file(log, path), LOGS[log]).batches())
    return pl.concat(batches)


def record(frame: pl.DataFrame, source_row: int) -> dict:
    rows = frame.filter(pl.col("source_row") == source_row).to_dicts()
    assert len(rows) == 1, f"source_row {source_row}: {len(rows)} records"
    return rows[0]


def lines(*texts: str) -> bytes:
    return ("\n".join(texts) + "\n").encode()


def test_the_decoded_shape_is_the_same_as_other_readers(tmp_path):
    frame = decode(tmp_path, "custody_checks", lines('{"reference_id": "r"}'))
    expected = ["source_row", "extra_fields", "raw_text", "record_error", "invalid_utf8"]
    for name in LOGS["custody_checks"].field_names:
        expected += [name, f"{name}__type_ok"]
    assert frame.columns == expected
    assert frame.schema["source_row"] == pl.Int64
    assert frame.schema["invalid_utf8"] == pl.Boolean
    assert frame.schema["object_present__type_ok"] == pl.Boolean


def test_extra_fields_only_for_keys_beyond_the_contract(tmp_path):
    frame = decode(tmp_path, "custody_checks", lines(
        '{"reference_id":"r1","object_present":true}',
        '{"zeta": 1.50, "reference_id": "r2", "alpha": {"b": [1, 2], "n": null}, "note": null}',
        '{"reference_id":"r3","extra":"caf\\u00e9 \\"q\\""}',
        '{}',
    ))
    assert record(frame, 1)["extra_fields"] is None
    # key order of the line, compact, numbers and strings as DuckDB writes them, nulls kept
    assert record(frame, 2)["extra_fields"] == '{"zeta":1.5,"alpha":{"b":[1,2],"n":null},"note":null}'
    assert record(frame, 2)["reference_id"] == "r2"
    assert record(frame, 3)["extra_fields"] == '{"extra":"café \\"q\\""}'
    assert record(frame, 4)["extra_fields"] is None
    assert record(frame, 4)["record_error"] is None


def test_duplicated_keys(tmp_path):
    frame = decode(tmp_path, "custody_checks", lines(
        '{"reference_id":"first","reference_id":"second"}',
        '{"reference_id":"r","x":1,"x":2}',
        '{"source":"a","source":"b","y":true}',
    ))
    assert record(frame, 1)["reference_id"] == "first"  # the first occurrence counts
    assert record(frame, 1)["extra_fields"] is None  # a contract key twice is no extra field
    assert record(frame, 2)["extra_fields"] == '{"x":1,"x":2}'
    assert record(frame, 3)["source"] == "a"
    assert record(frame, 3)["extra_fields"] == '{"y":true}'


@pytest.mark.parametrize("line", [
    '[1, {"reference_id": "r"}]', "3", '"text"', "null", "true", "not json",
    '{"reference_id": "r"} trailing', '{"reference_id": "r"}{}', '\x0c{"reference_id": "r"}',  # \f: not JSON whitespace
])
def test_a_line_that_is_not_a_json_object_is_malformed(tmp_path, line):
    row = record(decode(tmp_path, "custody_checks", lines(line)), 1)
    assert row["record_error"] == "malformed_json"
    assert row["raw_text"] == line
    assert row["extra_fields"] is None
    assert row["reference_id"] is None and row["reference_id__type_ok"] is True
    assert row["object_present"] is None and row["object_present__type_ok"] is True


def test_whitespace_around_an_object(tmp_path):
    row = record(decode(tmp_path, "custody_checks", lines(' \t{"reference_id" : "r"}  ')), 1)
    assert row["record_error"] is None
    assert row["reference_id"] == "r"


def test_integers_of_any_size_are_integers(tmp_path):
    values = ["503", "-1", "123456789012345678901234567890", "-99999999999999999999", "0", "-0",
              "1.0", "1e2", "2.5", '"503"', "true", "null"]
    frame = decode(tmp_path, "deliveries", lines(*('{"http_status": ' + value + "}" for value in values)))
    texts = frame["http_status"].to_list()
    type_ok = frame["http_status__type_ok"].to_list()
    assert texts == ["503", "-1", "123456789012345678901234567890", "-99999999999999999999", "0", "0",
                     "1.0", "100.0", "2.5", "503", "true", None]
    assert type_ok == [True, True, True, True, True, True, False, False, False, False, False, True]


def test_booleans_and_strings_by_json_type(tmp_path):
    frame = decode(tmp_path, "custody_checks", lines(
        '{"object_present": true, "source": "s3_inventory"}',
        '{"object_present": false, "source": ""}',
        '{"object_present": "true", "source": 12}',
        '{"object_present": 1, "source": true}',
        '{"object_present": null}',
    ))
    assert frame["object_present"].to_list() == ["true", "false", "true", "1", None]
    assert frame["object_present__type_ok"].to_list() == [True, True, False, False, True]
    assert frame["source"].to_list() == ["s3_inventory", "", "12", "true", None]
    assert frame["source__type_ok"].to_list() == [True, True, False, False, True]


def test_nested_values_keep_their_json_text(tmp_path):
    frame = decode(tmp_path, "custody_checks", lines(
        '{"source": {"b": [1, "x"], "a": null}}',
        '{"source": [ ]}',
        '{"object_present": {"v": true}}',
    ))
    assert frame["source"].to_list() == ['{"b":[1,"x"],"a":null}', "[]", None]
    assert frame["source__type_ok"].to_list() == [False, False, True]
    assert record(frame, 3)["object_present"] == '{"v":true}'
    assert record(frame, 3)["object_present__type_ok"] is False


def test_escaped_strings_are_unescaped(tmp_path):
    frame = decode(tmp_path, "custody_checks", lines(
        '{"source": "caf\\u00e9", "reference_id": "a\\"b"}',
        '{"source": "back\\\\slash\\/", "reference_id": "tab\\there"}',
        '{"source": "\\ud83d\\ude00", "reference_id": "plain", "other": "\\n"}',
        '{"source": "\\"", "reference_id": "\\"quoted\\""}',
    ))
    assert frame["source"].to_list() == ["café", "back\\slash/", "\U0001F600", '"']
    assert frame["reference_id"].to_list() == ['a"b', "tab\there", "plain", '"quoted"']
    assert frame["source__type_ok"].all() and frame["reference_id__type_ok"].all()


def test_line_endings_blank_lines_and_row_numbers(tmp_path):
    content = (b'{"reference_id": "a"}\r\n'
               b"\r\n"
               b"   \t \r\n"
               b'{"reference_id": "b"}\n'
               b"\n"
               b'{"reference_id": "c"}\r\r\n'
               b'{"reference_id": "d"}')  # no line break at the end
    frame = decode(tmp_path, "custody_checks", content)
    assert frame["source_row"].to_list() == [1, 4, 6, 7]
    assert frame["reference_id"].to_list() == ["a", "b", "c", "d"]
    assert frame["raw_text"].to_list() == ['{"reference_id": "a"}', '{"reference_id": "b"}',
                                           '{"reference_id": "c"}\r', '{"reference_id": "d"}']
    assert frame["record_error"].null_count() == 4


def test_a_byte_order_mark_starts_only_the_file(tmp_path):
    bom = b"\xef\xbb\xbf"
    frame = decode(tmp_path, "custody_checks", bom + b'{"reference_id": "a"}\n' + bom + b'{"reference_id": "b"}\n')
    assert frame["record_error"].to_list() == [None, "malformed_json"]
    assert frame["reference_id"].to_list() == ["a", None]


def test_invalid_utf8_bytes(tmp_path):
    frame = decode(tmp_path, "custody_checks",
                   b'{"reference_id": "ok"}\n{"reference_id": "bad\xff\xfe"}\n{"reference_id": "cut\xc3"}\n')
    assert frame["invalid_utf8"].to_list() == [False, True, True]
    assert frame["reference_id"].to_list() == ["ok", "bad\ufffd\ufffd", "cut\ufffd"]
    assert frame["raw_text"].to_list()[1] == '{"reference_id": "bad\ufffd\ufffd"}'
    assert frame["record_error"].null_count() == 3


def test_small_chunks_decode_the_same(tmp_path, monkeypatch):
    content = lines(*(f'{{"reference_id": "r{i}", "x{i % 3}": {i}, "source": "s\\u00e9{i}"}}' for i in range(30)),
                    "[]", "", '{"reference_id": "last"}')
    whole = decode(tmp_path, "custody_checks", content)
    monkeypatch.setattr(readers, "JSONL_CHUNK_BYTES", 64)
    chunked = decode(tmp_path, "custody_checks", content)
    assert chunked.equals(whole)
    assert whole.height == 32
    assert record(whole, 4)["extra_fields"] == '{"x0":3}'
    assert record(whole, 4)["source"] == "sé3"


def test_raw_texts_of_json_lines_are_read_again_in_the_order_asked(tmp_path):
    path = tmp_path / "custody_checks.jsonl"
    path.write_bytes(b'{"reference_id": "a"}\r\n\n[1]\n{"reference_id": "bad\xff"}\n')
    source = readers.decode_file(readers.load_file("custody_checks", path), LOGS["custody_checks"])
    raw = source.raw_texts(pl.Series([4, 1, 2, 3]))
    assert raw.to_list() == ['{"reference_id": "bad\ufffd"}', '{"reference_id": "a"}', None, "[1]"]
