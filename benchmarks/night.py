"""One benchmark night, run in its own process so its peak RSS is its own:
`python -m benchmarks.night --data DIR --work DIR --json OUT` runs the nightly flow on
DIR's four logs into a fresh warehouse and writes per-stage wall seconds, rows read and
API request latencies to OUT."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

LOG_NAMES = ("exports", "deliveries", "archives", "custody_checks")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--as-of", default="2026-11-20T06:00:00Z")
    parser.add_argument("--api-requests", type=int, default=5)
    args = parser.parse_args()

    data, work = Path(args.data), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    from exportaudit.prefect_env import configure_prefect, start_temporary_api
    configure_prefect(Path(__file__).resolve().parent / "data" / ".prefect")  # shared: a warm start
    prefect_api = start_temporary_api()  # as `exportaudit run` does: it starts while we import
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    # As `exportaudit run` does: the inputs are checked (hashed) in a thread while the flow is
    # imported and the temporary API starts, and handed to the flow (its "read inputs" stage is then ~0).
    from concurrent.futures import ThreadPoolExecutor

    from exportaudit.ingest import DecodedInputs, read_inputs
    paths = {log: [str(p) for p in sorted(data.glob(f"{log}.*"))] for log in LOG_NAMES}
    started = time.monotonic()

    def checked() -> tuple[DecodedInputs, float]:
        inputs = DecodedInputs(read_inputs(paths))
        return inputs, time.monotonic() - started

    with ThreadPoolExecutor(1) as pool:
        checking = pool.submit(checked)
        from flows.nightly import nightly
        preread, preread_seconds = checking.result()
    if prefect_api:
        prefect_api.wait_ready()
    import_seconds = time.monotonic() - started - preread_seconds  # what the check did not hide
    started = time.monotonic()
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        result = nightly(paths, db=str(work / "w.duckdb"), out=str(work / "reports"), as_of=args.as_of,
                         preread=preread)
    night_seconds = time.monotonic() - started
    flow_finished_at = time.time()  # the parent's launch time to here: the run's own wall (no API probe)

    latencies = api_latencies(work / "w.duckdb", args.as_of, args.api_requests)
    Path(args.json).write_text(json.dumps({
        "exit_code": result.exit_code,
        "rows_read": sum(item["rows_read"] for item in result.inputs),
        "rows_by_log": {item["log"]: item["rows_read"] for item in result.inputs},
        "stage_seconds": result.stage_seconds,
        "stage_peak_rss_mib": result.stage_peak_rss_mib,
        "flow_seconds": round(night_seconds, 3),
        "prefect_overhead_seconds": round(night_seconds - sum(result.stage_seconds.values()), 3),
        "preread_seconds": round(preread_seconds, 3),  # inputs checked before the flow, as the CLI does
        "import_seconds": round(import_seconds, 3),  # then what importing the flow and waiting for the API
        # added (they run at the same time as the check)
        "flow_finished_at": flow_finished_at,
        "api_latency_seconds": latencies,
    }, indent=2))


def api_latencies(db: Path, as_of: str, requests: int) -> dict:
    """Median seconds per endpoint, from sending the request to reading the last byte of the body,
    by an HTTP client over loopback against the API served by uvicorn (as `exportaudit serve` runs it).
    (Through Starlette's TestClient, which buffers the whole ~0.5 GB body in memory, the same requests
    took ~0.7-1.0 s: that client's cost, not the server's.)"""
    import socket
    import threading
    import urllib.parse
    import urllib.request

    import uvicorn

    from exportaudit.api import ARCHIVE_HEALTH_PATH, RETRY_PLAN_PATH, create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(db, token=""), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    base = f"http://127.0.0.1:{port}"

    def seconds(request: urllib.request.Request) -> float:
        started = time.monotonic()
        with urllib.request.urlopen(request, timeout=600) as response:
            assert response.status == 200
            while response.read(1 << 20):
                pass
        return time.monotonic() - started

    plan = urllib.request.Request(base + RETRY_PLAN_PATH, data=json.dumps({"as_of": as_of}).encode(),
                                  headers={"content-type": "application/json"}, method="POST")
    health = urllib.request.Request(base + ARCHIVE_HEALTH_PATH + "?" + urllib.parse.urlencode({"as_of": as_of}))
    try:
        timings = {"delivery_retry_plan": [seconds(plan) for _ in range(requests)],
                   "archive_reference_health": [seconds(health) for _ in range(requests)]}
    finally:
        server.should_exit = True
        thread.join()
    return {name: round(statistics.median(values), 3) for name, values in timings.items()}


if __name__ == "__main__":
    main()
