"""docs/outputs.md#http-api: the Evidence Console in a real browser (Debian's Chromium driven by Playwright)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from exportaudit.cli import main
from tests.conftest import run_argv
from tests.test_api import AS_OF, build_logs

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def test_console_tiles_and_both_controls(prefect_server, tmp_path, logs_dir, live_api):
    if not Path(CHROMIUM).is_file():  # never a skip: the suite is incomplete without this test
        pytest.fail("the browser test needs Debian's Chromium, and there is none: run `make test` as root "
                    "(it installs it) or `sudo apt-get install chromium`", pytrace=False)
    from playwright.sync_api import expect, sync_playwright

    assert main(run_argv(tmp_path / "w.duckdb", tmp_path / "out", build_logs(logs_dir), AS_OF)) == 0
    base = live_api(tmp_path / "w.duckdb")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(base + "/console")
            expect(page.locator("#tile-retry-plan-count")).to_have_text("1")
            expect(page.locator("#tile-retryable-deliveries")).to_have_text("2")
            expect(page.locator("#tile-archive-health-report-count")).to_have_text("1")
            expect(page.locator("#tile-archive-health-alert-count")).not_to_have_text("–")

            page.fill("#as-of", AS_OF)
            page.get_by_role("button", name="Plan Auditor Retry").click()
            plan_rows = page.locator("#plan-table tbody tr")
            expect(plan_rows).to_have_count(2)
            expect(plan_rows.nth(0).locator("td").nth(0)).to_have_text("retry")
            expect(plan_rows.nth(0).locator("td").nth(1)).to_have_text("eligible")
            expect(plan_rows.nth(0).locator("td").nth(3)).to_have_text("exp-1")

            page.get_by_role("button", name="Archive Health").click()
            alert_rows = page.locator("#alerts-table tbody tr")
            expect(alert_rows.first).to_be_visible()
            texts = alert_rows.all_inner_texts()
            assert any("governance_mode" in t and "ref-2" in t for t in texts)
            assert any("digest_mismatch" in t and t.startswith("critical") for t in texts)
            expect(page.locator("#status")).to_contain_text("Archive health:")

            page.fill("#as-of", "not a time")
            page.get_by_role("button", name="Plan Auditor Retry").click()
            expect(page.locator("#status")).to_contain_text("as_of")
            page.screenshot(path=str(tmp_path / "console.png"), full_page=True)
        finally:
            browser.close()


def test_console_retry_executions_and_alert_acknowledgements(prefect_server, tmp_path, live_api):
    """docs/executions-and-acknowledgements.md#metrics-warehouse-report-and-api: the two follow-up controls
    and their tiles, after two nights (tests/test_slice_run.py's data)."""
    if not Path(CHROMIUM).is_file():
        pytest.fail("the browser test needs Debian's Chromium, and there is none: run `make test` as root "
                    "(it installs it) or `sudo apt-get install chromium`", pytrace=False)
    from playwright.sync_api import expect, sync_playwright

    from tests.test_slice_run import M, STALE_ALERT, T1, T2, two_nights

    (tmp_path / "logs").mkdir()
    nights = two_nights(tmp_path / "w", tmp_path / "logs")
    base = live_api(nights["db"])

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(base + "/console")
            expect(page.locator("#tile-nonconforming-retry-executions")).to_have_text("6")
            expect(page.locator("#tile-retries-not-executed")).to_have_text("1")
            expect(page.locator("#tile-unacknowledged-critical-alerts")).to_have_text("2")
            expect(page.locator("#tile-overdue-alerts")).to_have_text("1")

            page.fill("#as-of", T2)
            page.get_by_role("button", name="Retry Executions").click()
            executions = page.locator("#executions-table tbody tr")
            expect(executions).to_have_count(7)
            expect(executions.nth(0).locator("td").nth(0)).to_have_text("before_next_attempt")
            expect(executions.nth(1).locator("td").nth(0)).to_have_text("conforming")
            expect(executions.nth(5).locator("td").nth(0)).to_have_text("attempt_mismatch")
            expect(page.locator("#not-executed-table tbody tr")).to_have_count(1)
            expect(page.locator("#not-executed-table tbody tr td").nth(0)).to_have_text("exp-4")
            expect(page.locator("#status")).to_contain_text("Retry executions: 7 executions, 1 not executed")

            page.get_by_role("button", name="Alert Acknowledgements").click()
            acks = page.locator("#acks-table tbody tr")
            expect(acks).to_have_count(4)
            texts = acks.all_inner_texts()
            assert any(t.startswith("expired") and "true" in t and M in t for t in texts), texts
            expect(page.locator("#stale-acks-table tbody tr td").nth(1)).to_have_text(STALE_ALERT)
            expect(page.locator("#status")).to_contain_text("Alert acknowledgements: 4 alerts, 1 overdue, 1 stale")

            page.fill("#as-of", T1)  # the first night replayed: nothing executed yet, nothing acknowledged
            page.get_by_role("button", name="Retry Executions").click()
            expect(page.locator("#status")).to_contain_text("Retry executions: 0 executions, 0 not executed")
            expect(page.locator("#executions-table tbody tr")).to_have_count(0)
            page.get_by_role("button", name="Alert Acknowledgements").click()
            expect(page.locator("#status")).to_contain_text("Alert acknowledgements: 3 alerts, 0 overdue, 0 stale")
            page.screenshot(path=str(tmp_path / "console-follow-ups.png"), full_page=True)
        finally:
            browser.close()
