"""Crash safety: the night is SIGKILLed at each crash point; afterwards the warehouse
opens and holds the previous run or the new one completely, latest is one whole run, the ledger
chain verifies (`exportaudit verify --all` exits 0: a run directory left by a run killed before
its COMMIT is `unrecorded`, docs/ledger.md#crashes-and-unrecorded-directories), and the next run
succeeds with the right results and a chain that still verifies."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from exportaudit.cli import main
from exportaudit.faults import CRASH_POINTS
from tests.conftest import archive_record, delivery_record, export_record, query, run_argv, write_jsonl

AS_OF = "2026-11-20T06:00:00Z"
FILES = ["alert-acknowledgements.json", "archive-health.json", "attestation.intoto.json", "ledger.json",
         "metrics.json", "metrics.prom", "report.html", "report.md", "retry-executions.json", "retry-plan.json"]


def verify_all(db: Path, out: Path, capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["verify", "--db", str(db), "--out", str(out), "--all"])
    return code, capsys.readouterr().out.splitlines()


def night_one_logs(folder: Path) -> dict[str, list[str]]:
    return {"exports": [str(write_jsonl(folder / "e1.jsonl", [export_record(), export_record(export_id="exp-2")]))],
            "deliveries": [str(write_jsonl(folder / "d1.jsonl", [delivery_record()]))],
            "archives": [str(write_jsonl(folder / "a1.jsonl", [archive_record()]))]}


def night_two_logs(folder: Path) -> dict[str, list[str]]:
    logs = night_one_logs(folder)
    logs["deliveries"].append(str(write_jsonl(folder / "d2.jsonl", [
        delivery_record(attempt_id=f"n{i}", export_id="exp-2", destination=f"dest-{i}", http_status=429)
        for i in range(20)])))
    logs["archives"].append(str(write_jsonl(folder / "a2.jsonl", [archive_record(reference_id="ref-2",
                                                                                 export_id="exp-2")])))
    return logs


def argv(db: Path, out: Path, logs: dict) -> list[str]:
    return run_argv(db, out, logs, AS_OF)


def run_in_subprocess(args: list[str], env: dict, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**env, **({"EXPORTAUDIT_CRASH_AT": crash_at} if crash_at else {})}
    return subprocess.run([sys.executable, "-m", "exportaudit.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def after_night_one(prefect_env, tmp_path_factory):
    folder = tmp_path_factory.mktemp("night-one")
    logs_dir = folder / "logs"
    logs_dir.mkdir()
    done = run_in_subprocess(argv(folder / "w.duckdb", folder / "out", night_one_logs(logs_dir)), prefect_env)
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture(scope="module")
def reference_night_two(prefect_server, after_night_one, tmp_path_factory):
    """What a clean second night reports (run in-process, without any crash)."""
    folder = tmp_path_factory.mktemp("reference")
    shutil.copy(after_night_one / "w.duckdb", folder / "w.duckdb")
    assert main(argv(folder / "w.duckdb", folder / "out", night_two_logs(after_night_one / "logs"))) == 0
    return json.loads((folder / "out" / "latest" / "retry-plan.json").read_bytes())


@pytest.mark.parametrize("crash_at", CRASH_POINTS)
def test_killed_night_leaves_a_whole_state_and_the_next_night_succeeds(
        prefect_server, prefect_env, after_night_one, reference_night_two, tmp_path, crash_at, capsys):
    db, out = tmp_path / "w.duckdb", tmp_path / "out"
    shutil.copy(after_night_one / "w.duckdb", db)
    shutil.copytree(after_night_one / "out", out, symlinks=True)
    first_run = (out / "latest").resolve().name
    logs = night_two_logs(after_night_one / "logs")

    killed = run_in_subprocess(argv(db, out, logs), prefect_env, crash_at=crash_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    runs = query(db, "select run_id from runs")  # the warehouse opens
    assert len(runs) in (1, 2)
    assert query(db, "select count(distinct run_id) from retry_plan") == [(len(runs),)]
    assert {r[0] for r in query(db, "select distinct run_id from archive_alerts")} <= {r[0] for r in runs}
    deliveries = query(db, "select count(*) from deliveries")[0][0]
    files = query(db, "select count(*) from ingested_files")[0][0]
    assert (deliveries, files) in ((1, 3), (21, 5))  # night two's ingest is all there or not at all
    latest = (out / "latest").resolve()
    assert sorted(p.name for p in latest.iterdir()) == FILES
    assert latest.name == first_run or (latest.name,) in runs
    assert query(db, "select count(*), max(seq) from ledger") == [(len(runs), len(runs))]  # entry <=> run

    code, lines = verify_all(db, out, capsys)  # the chain verifies; a killed run's directory is only listed
    assert code == 0, lines
    assert all(line.startswith("unrecorded run ") for line in lines)
    recorded = {run_id for (run_id,) in runs}
    assert {line.split()[2].rstrip(":") for line in lines} == {p.name for p in out.iterdir()
                                                               if p.is_dir() and not p.is_symlink()} - recorded

    assert main(argv(db, out, logs)) == 0  # the next night succeeds
    plan = json.loads((out / "latest" / "retry-plan.json").read_bytes())
    assert plan["decisions"] == reference_night_two["decisions"]
    assert plan["evidence_id"] == reference_night_two["evidence_id"]
    assert verify_all(db, out, capsys)[0] == 0
    assert query(db, "select count(*), max(seq) from ledger") == [(len(runs) + 1, len(runs) + 1)]
