"""The benchmark runner keeps working (at a tiny size; no timing is asserted)."""

import json
import os
import subprocess
import sys
import time

from benchmarks.run import machine, markdown
from exportaudit.sample import write_scaled


def test_benchmark_night_runs_at_a_tiny_size(prefect_env, tmp_path):
    data = tmp_path / "data"
    write_scaled(data, 50, fmt="parquet")
    out = tmp_path / "result.json"
    subprocess.run([sys.executable, "-m", "benchmarks.night", "--data", str(data), "--work", str(tmp_path / "work"),
                    "--json", str(out), "--api-requests", "1"], env=prefect_env, check=True, timeout=300)
    result = json.loads(out.read_text())
    assert result["exit_code"] in (0, 3) and result["rows_read"] > 0
    assert {"ingest", "rules", "artifacts and report", "warehouse writes"} <= set(result["stage_seconds"])
    assert result["flow_finished_at"] > 0  # the run wall's end (benchmarks.run: launch -> end of the flow)
    result.update(process_wall_seconds=1.0, run_wall_seconds=0.5, peak_rss_mib=1.0, microseconds_per_row=1.0)
    table = markdown([{"exports": 50, "format": "parquet", "result": result}], machine())
    assert "| 50 | parquet |" in table and "| 0.50 | 1.00 |" in table


def test_the_process_tree_peak_sums_a_process_and_its_descendants():
    """make bench reports the night and Prefect's temporary API server together (benchmarks.run.TreePeak)."""
    from benchmarks.run import TreePeak, tree_rss_mib
    own = tree_rss_mib(os.getpid())
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; block = bytearray(160 * 2**20); "
                               "block[::4096] = b'x' * len(block[::4096]); print('ready', flush=True); time.sleep(30)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        peak = TreePeak(os.getpid(), interval=0.01)
        assert tree_rss_mib(os.getpid()) > own + 150
        assert tree_rss_mib(holder.pid) > 150
        while peak.peak_mib == 0:  # its first sample, taken at once
            time.sleep(0.01)
    finally:
        holder.kill()
        holder.wait()
    assert peak.stop() > own + 150
