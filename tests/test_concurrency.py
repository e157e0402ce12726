"""docs/outputs.md#warehouse / docs/outputs.md#http-api: a nightly run while the API answers requests — both succeed."""

from __future__ import annotations

import json
import threading
import urllib.request

from exportaudit.api import RETRY_PLAN_PATH
from exportaudit.cli import main
from tests.conftest import delivery_record, run_argv, write_jsonl
from tests.test_api import AS_OF, build_logs


def _argv(tmp_path, logs):
    return run_argv(tmp_path / "w.duckdb", tmp_path / "out", logs, AS_OF)


def test_nightly_run_while_the_api_answers(prefect_server, tmp_path, logs_dir, live_api):
    logs = build_logs(logs_dir)
    assert main(_argv(tmp_path, logs)) == 0
    base = live_api(tmp_path / "w.duckdb")
    statuses, stop = [], threading.Event()

    def ask():
        request = urllib.request.Request(base + RETRY_PLAN_PATH, data=json.dumps({"as_of": AS_OF}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        for _ in range(200):  # bounded
            if stop.is_set():
                break
            with urllib.request.urlopen(request, timeout=60) as response:
                statuses.append(response.status)

    asker = threading.Thread(target=ask)
    asker.start()
    try:
        logs["deliveries"].append(str(write_jsonl(logs_dir / "more.jsonl", [delivery_record(attempt_id="late")])))
        assert main(_argv(tmp_path, logs)) == 0
    finally:
        stop.set()
        asker.join(timeout=120)
    assert statuses and set(statuses) == {200}
    with urllib.request.urlopen(base + "/runs", timeout=60) as response:
        assert len(json.loads(response.read())["runs"]) == 2
