"""The Evidence Console page (docs/outputs.md#evidence-console, docs/executions-and-acknowledgements.md): plain accessible
HTML and a little JS, no external assets.
Values are inserted with textContent, never as HTML."""

CONSOLE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>exportaudit — Evidence Console</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem;color:#222;max-width:1200px}
.tiles{display:flex;gap:.75rem;flex-wrap:wrap;margin:1rem 0}
.tile{border:1px solid #bbb;border-radius:6px;padding:.6rem .9rem;min-width:11rem}
.tile output{display:block;font-size:1.6rem;font-weight:600}
fieldset{border:1px solid #ccc;margin:1rem 0}label{margin-right:1rem}
button{font:inherit;padding:.35rem .8rem;margin-right:.5rem;cursor:pointer}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #ddd;padding:3px 6px;text-align:left}
th{background:#f3f3f3}[role=status]{color:#555;min-height:1.2em}.error{color:#b00}
</style></head>
<body>
<h1>Evidence Console</h1>
<section aria-label="History totals" class="tiles">
  <div class="tile"><span id="t1">Retry plan count</span><output id="tile-retry-plan-count" aria-labelledby="t1">–</output></div>
  <div class="tile"><span id="t2">Retryable auditor deliveries</span><output id="tile-retryable-deliveries" aria-labelledby="t2">–</output></div>
  <div class="tile"><span id="t3">Archive health report count</span><output id="tile-archive-health-report-count" aria-labelledby="t3">–</output></div>
  <div class="tile"><span id="t4">Archive health alert count</span><output id="tile-archive-health-alert-count" aria-labelledby="t4">–</output></div>
</section>
<section aria-label="Latest run: retry executions and alert acknowledgements" class="tiles">
  <div class="tile"><span id="t5">Nonconforming retry executions</span><output id="tile-nonconforming-retry-executions" aria-labelledby="t5">–</output></div>
  <div class="tile"><span id="t6">Retries not executed</span><output id="tile-retries-not-executed" aria-labelledby="t6">–</output></div>
  <div class="tile"><span id="t7">Unacknowledged critical alerts</span><output id="tile-unacknowledged-critical-alerts" aria-labelledby="t7">–</output></div>
  <div class="tile"><span id="t8">Overdue alerts</span><output id="tile-overdue-alerts" aria-labelledby="t8">–</output></div>
</section>
<fieldset><legend>Evaluate</legend>
  <label>as_of <input id="as-of" name="as_of" placeholder="2026-11-20T06:00:00Z" size="28"></label>
  <label>API token <input id="token" type="password" autocomplete="off" size="16"></label>
  <button id="plan-auditor-retry" type="button">Plan Auditor Retry</button>
  <button id="archive-health" type="button">Archive Health</button>
  <button id="retry-executions" type="button">Retry Executions</button>
  <button id="alert-acknowledgements" type="button">Alert Acknowledgements</button>
</fieldset>
<p id="status" role="status" aria-live="polite"></p>
<h2>Retry plan</h2>
<table id="plan-table" aria-label="Retry plan"><thead><tr><th scope="col">Decision</th><th scope="col">Reason</th>
<th scope="col">Next attempt</th><th scope="col">Export</th><th scope="col">Destination</th></tr></thead><tbody></tbody></table>
<h2>Archive health alerts</h2>
<table id="alerts-table" aria-label="Archive health alerts"><thead><tr><th scope="col">Severity</th><th scope="col">Check</th>
<th scope="col">Export</th><th scope="col">Reference</th></tr></thead><tbody></tbody></table>
<h2>Retry executions</h2>
<table id="executions-table" aria-label="Retry executions"><thead><tr><th scope="col">Verdict</th><th scope="col">Severity</th>
<th scope="col">Execution</th><th scope="col">Export</th><th scope="col">Destination</th><th scope="col">Executed</th>
<th scope="col">Result</th><th scope="col">Plan decision</th></tr></thead><tbody></tbody></table>
<table id="not-executed-table" aria-label="Retries not executed"><thead><tr><th scope="col">Not executed: export</th>
<th scope="col">Destination</th><th scope="col">Next attempt</th><th scope="col">Plan evidence id</th></tr></thead><tbody></tbody></table>
<h2>Alert acknowledgements</h2>
<table id="acks-table" aria-label="Alert acknowledgements"><thead><tr><th scope="col">Status</th><th scope="col">Overdue</th>
<th scope="col">Severity</th><th scope="col">Check</th><th scope="col">Alert</th><th scope="col">Acknowledged by</th>
<th scope="col">First seen</th></tr></thead><tbody></tbody></table>
<table id="stale-acks-table" aria-label="Stale acknowledgements"><thead><tr><th scope="col">Stale acknowledgement</th>
<th scope="col">Alert</th><th scope="col">Acknowledged by</th><th scope="col">Acknowledged</th></tr></thead><tbody></tbody></table>
<script>
const RETRY_PLAN_PATH = "__RETRY_PLAN_PATH__";
const ARCHIVE_HEALTH_PATH = "__ARCHIVE_HEALTH_PATH__";
const RETRY_EXECUTIONS_PATH = "__RETRY_EXECUTIONS_PATH__";
const ALERT_ACKNOWLEDGEMENTS_PATH = "__ALERT_ACKNOWLEDGEMENTS_PATH__";
const $ = (id) => document.getElementById(id);
function headers() {
  const h = {"Content-Type": "application/json"};
  if ($("token").value) h["Authorization"] = "Bearer " + $("token").value;
  return h;
}
function say(text, isError) { $("status").textContent = text; $("status").className = isError ? "error" : ""; }
async function call(url, options) {
  const response = await fetch(url, Object.assign({headers: headers()}, options || {}));
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
  return body;
}
function fill(tableId, rows, keys) {
  const body = document.querySelector("#" + tableId + " tbody");
  body.replaceChildren();
  for (const row of rows) {
    const tr = document.createElement("tr");
    for (const key of keys) {
      const td = document.createElement("td");
      td.textContent = row[key] === null || row[key] === undefined ? "—" : String(row[key]);
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}
async function loadTiles() {
  try {
    const t = await call("/console/tiles");
    $("tile-retry-plan-count").textContent = t.retry_plan_count;
    $("tile-retryable-deliveries").textContent = t.retryable_deliveries;
    $("tile-archive-health-report-count").textContent = t.archive_health_report_count;
    $("tile-archive-health-alert-count").textContent = t.archive_health_alert_count;
    for (const key of ["nonconforming_retry_executions", "retries_not_executed", "unacknowledged_critical_alerts",
                       "overdue_alerts"]) {
      $("tile-" + key.replaceAll("_", "-")).textContent = t[key] === null || t[key] === undefined ? "—" : String(t[key]);
    }
  } catch (e) { say("Tiles: " + e.message, true); }
}
$("plan-auditor-retry").addEventListener("click", async () => {
  say("Planning…");
  try {
    const body = {};
    if ($("as-of").value) body.as_of = $("as-of").value;
    const result = await call(RETRY_PLAN_PATH, {method: "POST", body: JSON.stringify(body)});
    fill("plan-table", result.plan.decisions, ["decision", "reason_code", "next_attempt_at", "export_id", "destination"]);
    say("Retry plan: " + result.plan.decisions.length + " deliveries (evidence " + result.metadata.evidence_id.slice(0, 12) + "…)");
  } catch (e) { say("Plan Auditor Retry failed: " + e.message, true); }
});
$("archive-health").addEventListener("click", async () => {
  say("Checking archives…");
  try {
    const query = $("as-of").value ? "?as_of=" + encodeURIComponent($("as-of").value) : "";
    const result = await call(ARCHIVE_HEALTH_PATH + query);
    fill("alerts-table", result.health.alerts, ["severity", "check", "export_id", "reference_id"]);
    say("Archive health: " + result.health.alerts.length + " alerts (evidence " + result.metadata.evidence_id.slice(0, 12) + "…)");
  } catch (e) { say("Archive Health failed: " + e.message, true); }
});
function asOfQuery() { return $("as-of").value ? "?as_of=" + encodeURIComponent($("as-of").value) : ""; }
$("retry-executions").addEventListener("click", async () => {
  say("Checking retry executions…");
  try {
    const result = await call(RETRY_EXECUTIONS_PATH + asOfQuery());
    const doc = result.executions;
    fill("executions-table", doc.executions, ["verdict", "severity", "execution_id", "export_id", "destination",
                                              "executed_at", "result", "plan_decision"]);
    fill("not-executed-table", doc.not_executed, ["export_id", "destination", "next_attempt_at", "plan_evidence_id"]);
    say("Retry executions: " + doc.executions.length + " executions, " + doc.not_executed.length +
        " not executed (evidence " + result.metadata.evidence_id.slice(0, 12) + "…)");
  } catch (e) { say("Retry Executions failed: " + e.message, true); }
});
$("alert-acknowledgements").addEventListener("click", async () => {
  say("Checking alert acknowledgements…");
  try {
    const result = await call(ALERT_ACKNOWLEDGEMENTS_PATH + asOfQuery());
    const doc = result.acknowledgements;
    fill("acks-table", doc.alerts, ["ack_status", "overdue", "severity", "check", "alert_id", "acknowledged_by",
                                    "first_seen_at"]);
    fill("stale-acks-table", doc.stale_acknowledgements, ["ack_id", "alert_id", "acknowledged_by", "acknowledged_at"]);
    say("Alert acknowledgements: " + doc.alerts.length + " alerts, " + doc.summary.overdue + " overdue, " +
        doc.stale_acknowledgements.length + " stale (evidence " + result.metadata.evidence_id.slice(0, 12) + "…)");
  } catch (e) { say("Alert Acknowledgements failed: " + e.message, true); }
});
loadTiles();
</script>
</body></html>
"""
