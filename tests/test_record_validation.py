"""transforms.record_validation: free codes are trimmed and lowercased (an empty code is null)."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from exportaudit.contract import CODE, LOGS
from transforms.record_validation import TRIMMED_CHARACTERS, normalised_text

DELIVERIES = LOGS["deliveries"]
CODES = [f.name for f in DELIVERIES.fields if f.kind == CODE]
code_texts = st.one_of(st.none(), st.text(alphabet=st.sampled_from("ab_-AZ \t\r\n\u00c9\u00e9\u212a\u0130\u00df1"),
                                          max_size=6))


def _decoded(columns: dict[str, list]) -> pl.DataFrame:
    height = len(next(iter(columns.values())))
    return pl.DataFrame({
        **{f.name: pl.Series(columns.get(f.name, [None] * height), dtype=pl.Utf8) for f in DELIVERIES.fields},
        **{f"{f.name}__type_ok": [True] * height for f in DELIVERIES.fields}})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(code_texts, code_texts), min_size=1, max_size=8))
def test_codes_are_trimmed_lowercased_and_empty_means_null(rows):
    decoded = _decoded({CODES[0]: [a for a, _ in rows], CODES[1]: [b for _, b in rows]})
    normalised = normalised_text(decoded, DELIVERIES)
    for name in CODES:
        expected = decoded[name].str.strip_chars(TRIMMED_CHARACTERS).str.to_lowercase()
        expected = pl.select(pl.when(expected == "").then(None).otherwise(expected)).to_series()
        assert normalised[name].to_list() == expected.to_list()


def test_examples():
    decoded = _decoded({"connector_kind": [" Webhook ", "\u00c9CHEC", "\t", "s3", ""],
                        "error_code": ["timeout", "timeout", "timeout", "timeout", "timeout"]})
    normalised = normalised_text(decoded, DELIVERIES)
    assert normalised["connector_kind"].to_list() == ["webhook", "\u00e9chec", None, "s3", None]
    assert normalised["error_code"].to_list() == ["timeout"] * 5
