"""The archive-side benchmark keeps working (at a tiny size; no timing is asserted)."""

import json

from benchmarks import archive


def test_archive_benchmark_runs_at_a_tiny_size(prefect_env, tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", prefect_env["PREFECT_API_URL"])  # the child night reports there
    data, results = tmp_path / "data", tmp_path / "results"
    assert archive.main(["--rows", "2000", "--data", str(data), "--results", str(results)]) == 0

    result = json.loads((results / "archive.json").read_text())["entries"][0]["result"]
    assert result["rows_by_log"]["archives"] == result["rows_by_log"]["custody_checks"] == 1000
    assert sum(result["rows_quarantined"].values()) == 0  # every generated record is valid (docs/inputs.md)
    assert {"ingest", "rules", "warehouse writes"} <= set(result["stage_peak_rss_mib"])
    assert result["peak_rss_mib"] > 0 and len(result["load_average"]) == 2
    assert "| 2,000 |" in (results / "archive.md").read_text()
    assert sorted(p.name for p in data.iterdir()) == ["archive-2000"]  # the night's working directory is gone
