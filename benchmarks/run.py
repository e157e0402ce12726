"""Benchmark runner (`make bench`, `python -m benchmarks.run --exports 10000 100000 --formats parquet jsonl`).

For each size and format: generate the input with the sample generator (cached under
benchmarks/data/), run one whole night in a child process, and record per-stage wall
seconds, rows per second, the child's peak RSS (from the OS, via wait4: the largest of the
child and its descendants) and the peak of the whole process tree's summed RSS (the night and
Prefect's temporary API server beside it, sampled every 0.1 s). Results go to
benchmarks/results/results.json and results.md. Benchmarks are not tests: nothing here
asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict:
    memory_kib = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")), 0)
    return {"cores": os.cpu_count(), "memory_gib": round(memory_kib / 1024 ** 2, 1), "python": platform.python_version(),
            "platform": platform.platform()}


def dataset(exports: int, fmt: str) -> Path:
    folder = DATA / f"{fmt}-{exports}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "exportaudit.sample", "--out", str(folder), "--scale", str(exports),
                        "--format", fmt], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        (folder / ".complete").write_text(f"{time.monotonic() - started:.1f}\n")
    return folder


def tree_rss_mib(root: int) -> float:
    """Summed RSS of a process and all its descendants now (MiB), from /proc."""
    children: dict[int, list[int]] = {}
    rss_pages: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            rss_pages[int(entry.name)] = int((entry / "statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # after "(comm)": state, then ppid
        children.setdefault(parent, []).append(int(entry.name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss_pages.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


class TreePeak:
    """Samples tree_rss_mib(pid) every `interval` seconds in a thread until stop(); .peak_mib."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.pid, self.interval, self.peak_mib = pid, interval, 0.0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while True:
            self.peak_mib = max(self.peak_mib, tree_rss_mib(self.pid))
            if self._stopped.wait(self.interval):
                return

    def stop(self) -> float:
        self._stopped.set()
        self._thread.join()
        return round(self.peak_mib, 1)


def child_night(folder: Path, api_requests: int, work_root: Path = DATA, inspect=None) -> dict:
    """One whole night on a fresh warehouse in a child process (`benchmarks.night`), measured from
    outside: process wall, peak RSS (wait4), load average. inspect(warehouse path) -> dict, when
    given, adds figures read from the night's warehouse before its working directory is removed."""
    # The previous night's gigabytes (warehouse, run directory, removed staging) are flushed first, so
    # this night's own fsyncs do not wait behind them: each night is measured from a quiet disk.
    os.sync()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=work_root) as work:
        out = Path(work) / "result.json"
        started, launched_at = time.monotonic(), time.time()
        child = subprocess.Popen([sys.executable, "-m", "benchmarks.night", "--data", str(folder),
                                  "--work", str(Path(work) / "night"), "--json", str(out),
                                  "--api-requests", str(api_requests)], cwd=ROOT)
        tree = TreePeak(child.pid)
        _, status, usage = os.wait4(child.pid, 0)
        tree_peak_mib = tree.stop()
        wall = time.monotonic() - started
        if status != 0:
            raise SystemExit(f"benchmark night failed on {folder} (status {status})")
        result = json.loads(out.read_text())
        if inspect is not None:
            result.update(inspect(Path(work) / "night" / "w.duckdb"))
    result["process_wall_seconds"] = round(wall, 3)
    # The whole `exportaudit run`: from the child's launch (interpreter, imports, Prefect's temporary
    # API) to the end of the flow; the process wall adds the API probe and the interpreter's exit.
    if "flow_finished_at" in result:
        result["run_wall_seconds"] = round(result.pop("flow_finished_at") - launched_at, 3)
    # The machine's 1-minute load average around the night: on 2 cores, other work running at the
    # same time (a load above ~2) slows every stage; compare figures taken at similar loads.
    result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    result["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)  # Linux: KiB
    result["tree_peak_rss_mib"] = tree_peak_mib  # the night and the temporary API server together
    return result


def night(folder: Path, api_requests: int) -> dict:
    result = child_night(folder, api_requests)
    rows = result["rows_read"]
    result["rows_per_second"] = {stage: round(rows / seconds) if seconds else None
                                 for stage, seconds in result["stage_seconds"].items()}
    result["microseconds_per_row"] = round(sum(result["stage_seconds"].values()) / rows * 1e6, 3) if rows else None
    return result


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"  # "?": measured before the figure was recorded


def markdown(entries: list[dict], info: dict) -> str:
    stages = ["read inputs", "ingest", "load accepted records", "rules", "validation", "evidence documents",
              "artifacts and report",
              "warehouse writes"]
    lines = [f"# Benchmark results\n\nMachine: {info['cores']} cores, {info['memory_gib']} GiB, Python "
             f"{info['python']}. Wall seconds per stage of one night (fresh warehouse); rows = rows read.\n",
             "| exports | format | rows | " + " | ".join(stages) + " | stages total | run wall | process wall | "
             "µs/row | peak RSS MiB | process tree peak RSS MiB | ingest peak RSS MiB | load avg | API plan s | "
             "API health s |",
             "|" + "---|" * (len(stages) + 13)]
    for e in entries:
        r = e["result"]
        seconds = [f"{r['stage_seconds'].get(s, 0):.2f}" for s in stages]
        lines.append(f"| {e['exports']:,} | {e['format']} | {r['rows_read']:,} | " + " | ".join(seconds)
                     + f" | {sum(r['stage_seconds'].values()):.2f} | {_seconds(r.get('run_wall_seconds'))} | "
                       f"{r['process_wall_seconds']:.2f} | "
                       f"{r['microseconds_per_row']} | {r['peak_rss_mib']:,} | {r.get('tree_peak_rss_mib', '?')} | "
                       f"{r.get('stage_peak_rss_mib', {}).get('ingest', '')} | "
                       f"{'–'.join(str(x) for x in r.get('load_average', [])) or '?'} | "
                       f"{r['api_latency_seconds']['delivery_retry_plan']} | "
                       f"{r['api_latency_seconds']['archive_reference_health']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exports", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--formats", nargs="+", default=["parquet", "jsonl"], choices=["parquet", "jsonl"])
    parser.add_argument("--results", default=str(RESULTS / "results.json"))
    args = parser.parse_args(argv)

    DATA.mkdir(parents=True, exist_ok=True)
    results_path = Path(args.results)
    info = machine()
    previous = json.loads(results_path.read_text())["entries"] if results_path.exists() else []
    entries = {(e["exports"], e["format"]): e for e in previous}
    for exports in args.exports:
        for fmt in args.formats:
            result = night(dataset(exports, fmt), api_requests=5 if exports <= 100_000 else 1)
            entries[(exports, fmt)] = {"exports": exports, "format": fmt, "result": result}
            print(f"{exports:>9,} {fmt:<8} {result['rows_read']:>11,} rows  stages {sum(result['stage_seconds'].values()):7.2f} s  "
                  f"wall {result['process_wall_seconds']:7.2f} s  peak {result['peak_rss_mib']:>8,} MiB", flush=True)
    ordered = [entries[key] for key in sorted(entries)]
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps({"machine": info, "entries": ordered}, indent=2) + "\n")
    results_path.with_suffix(".md").write_text(markdown(ordered, info))


if __name__ == "__main__":
    main()
