"""HTTP API and Evidence Console (docs/outputs.md#http-api): read-only over the warehouse.

Each request opens and closes its own read-only connection (waiting briefly, bounded,
while a nightly run holds the file), so a nightly run is never locked out for long.
A request for the as_of and policy of a recorded run, on the same dataset and without
generated_by, gets that run's stored document (exportaudit/answers.py); any other is computed.
"""

from __future__ import annotations

import hmac
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.openapi.docs import get_swagger_ui_html
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictInt, WithJsonSchema

from exportaudit import answers, evaluation, history, warehouse
from exportaudit.console import CONSOLE_HTML
from exportaudit.metrics import latest_follow_up_metrics, prometheus_text, recorded_run_metrics
from exportaudit.policy import Policy, PolicyError
from exportaudit.redact import redact_str
from transforms.timestamps import parse_instant

BASE = "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/audit-delivery"
RETRY_PLAN_PATH = f"{BASE}/final-reporting-auditor-export/delivery-retry-plan"
ARCHIVE_HEALTH_PATH = f"{BASE}/final-reporting-archive-reference-health"
# docs/executions-and-acknowledgements.md#metrics-warehouse-report-and-api
RETRY_EXECUTIONS_PATH = f"{BASE}/final-reporting-auditor-export/retry-worker-executions"
ALERT_ACKNOWLEDGEMENTS_PATH = f"{BASE}/final-reporting-archive-health-alert-acknowledgements"
READ_WAIT_SECONDS = float(os.environ.get("EXPORTAUDIT_API_LOCK_WAIT", "30"))


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None):
        self.status, self.message, self.field = status, message, field


def _json_number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    return value


# A number as JSON gave it: 15 stays an int and 15.0 a float, as in a policy file (the value is part of
# the document, so of its evidence_id); a string or a boolean is refused, not converted.
Number = Annotated[int | float, PlainValidator(_json_number), WithJsonSchema({"type": "number"})]


class RetryPolicyOverrides(BaseModel):
    """Retry policy keys of docs/retry-plan.md#decision-rules to override for this request (others keep the server's policy)."""
    model_config = ConfigDict(extra="forbid")
    max_attempts: StrictInt | None = Field(None, description="Failed attempts after which a delivery is suppressed (>= 1).")
    base_delay_minutes: Number | None = Field(None, description="Backoff after the first failed attempt, minutes (>= 0).")
    backoff_multiplier: Number | None = Field(None, description="Factor per further failed attempt (>= 1).")
    max_delay_minutes: Number | None = Field(None, description="Cap on the backoff, minutes (>= 0).")
    max_delivery_age_days: Number | None = Field(None, description="Age after which a delivery expires, days (>= 0).")


class RetryPlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    as_of: str | None = Field(None, description="ISO-8601 instant with offset to evaluate at; default now (UTC).")
    retry_policy: RetryPolicyOverrides | None = Field(None, description="Policy overrides for this request.")
    generated_by: str | None = Field(None, description="Who asked; recorded in the document, not in its evidence_id. "
                                     "When given, the answer is always computed (never a stored run's document).")


class EvidenceResponse(BaseModel):
    metadata: dict[str, Any] = Field(description="metadata_kind, evidence_id, as_of and the summary counts.")


class RetryPlanResponse(EvidenceResponse):
    plan: dict[str, Any] = Field(description="The retry-plan evidence document of docs/outputs.md#evidence-documents.")


class ArchiveHealthResponse(EvidenceResponse):
    health: dict[str, Any] = Field(description="The archive-health evidence document of docs/outputs.md#evidence-documents.")


class RetryExecutionsResponse(EvidenceResponse):
    executions: dict[str, Any] = Field(description="The retry-executions evidence document of "
                                                   "docs/executions-and-acknowledgements.md#retry-executionsjson.")


class AlertAcknowledgementsResponse(EvidenceResponse):
    acknowledgements: dict[str, Any] = Field(description="The alert-acknowledgements evidence document of "
                                                         "docs/executions-and-acknowledgements.md#alert-acknowledgementsjson.")


def _as_of(text: str | None) -> datetime:
    if text is None:
        return datetime.now(timezone.utc)
    try:
        return parse_instant(text)
    except ValueError:
        raise ApiError(422, "as_of must be an ISO-8601 timestamp with an offset or Z", "as_of") from None


def _evidence_response(name: str, document: answers.Document) -> Response:
    """A stored document streams (decompressed piecewise, after its connection closed); a computed one is
    sent whole. Either way the bytes are `answers.response_bytes(name, document)`."""
    if isinstance(document, history.StoredDocument):
        length, chunks = answers.response_stream(name, document)
        return StreamingResponse(chunks, media_type="application/json", headers={"content-length": str(length)})
    return Response(answers.response_bytes(name, document), media_type="application/json")


def create_app(db_path: str | Path, policy: Policy | None = None, token: str | None = None) -> FastAPI:
    db_path = Path(db_path)
    base_policy = policy or Policy()
    token = (token if token is not None else os.environ.get("EXPORTAUDIT_API_TOKEN")) or None  # "" means off
    # The OpenAPI document and its page are routes of their own below, behind the token like every
    # request but /healthz.
    app = FastAPI(title="exportaudit", version="1", description="Read-only answers over the exportaudit warehouse.",
                  openapi_url=None, docs_url=None, redoc_url=None)

    @contextmanager
    def read_only():
        if not db_path.exists():
            raise ApiError(503, "the warehouse does not exist yet: run `exportaudit run` first")
        try:
            con = warehouse.connect(db_path, read_only=True, timeout_seconds=READ_WAIT_SECONDS)
        except warehouse.WarehouseBusy:
            raise ApiError(503, "the warehouse is busy (a nightly run holds it); try again shortly") from None
        try:
            yield con
        finally:
            con.close()

    def authorised(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise ApiError(401, "missing or wrong bearer token", "Authorization")

    auth = [Depends(authorised)]

    @app.exception_handler(ApiError)
    async def api_error(_, error: ApiError):
        body = {"error": redact_str(error.message)}
        if error.field:
            body["field"] = error.field
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse(body, status_code=error.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_, error: RequestValidationError):
        first = error.errors()[0] if error.errors() else {}
        location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query")]
        field = ".".join(location) or "body"
        return JSONResponse({"error": f"{field}: {first.get('msg', 'invalid')}", "field": field}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(_, error: Exception):  # never a stack trace in a response
        return JSONResponse({"error": f"internal error ({type(error).__name__})"}, status_code=500)

    @app.post(RETRY_PLAN_PATH, dependencies=auth, response_model=RetryPlanResponse,
              summary="Plan auditor retry: the delivery retry plan at as_of")
    def delivery_retry_plan(request: RetryPlanRequest | None = None) -> Response:
        request = request or RetryPlanRequest()
        as_of = _as_of(request.as_of)
        overrides = request.retry_policy.model_dump(exclude_none=True) if request.retry_policy else {}
        try:
            policy = base_policy.replace(**overrides)
        except PolicyError as error:
            key = next((k for k in overrides if repr(k) in str(error)), None)
            raise ApiError(422, str(error), f"retry_policy.{key}" if key else "retry_policy") from None
        with read_only() as con:
            document = answers.answer(con, evaluation.RETRY_PLAN, as_of, policy, request.generated_by or None)
        return _evidence_response("plan", document)

    @app.get(ARCHIVE_HEALTH_PATH, dependencies=auth, response_model=ArchiveHealthResponse,
             summary="Archive health: the archive reference health report at as_of")
    def archive_reference_health(
        as_of: Annotated[str | None, Query(description="ISO-8601 instant with offset; default now (UTC).")] = None,
        accept_governance_mode: Annotated[bool | None, Query(description="Accept governance-mode locks.")] = None,
        max_check_age_days: Annotated[int | float | None, Query(
            ge=0, description="Maximum custody check age, days (\"7\" is the int 7, as in a policy file).")] = None,
    ) -> Response:
        instant = _as_of(as_of)
        overrides = {k: v for k, v in {"accept_governance_mode": accept_governance_mode,
                                       "max_check_age_days": max_check_age_days}.items() if v is not None}
        try:
            policy = base_policy.replace(**overrides)
        except PolicyError as error:
            raise ApiError(422, str(error), "max_check_age_days") from None
        with read_only() as con:
            document = answers.answer(con, evaluation.ARCHIVE_HEALTH, instant, policy)
        return _evidence_response("health", document)

    def follow_up_answer(con, answer: str, instant: datetime) -> answers.Document:
        present = {row[0] for row in con.execute("select table_name from duckdb_tables()").fetchall()}
        if not {"retry_executions", "alert_acknowledgements"} <= present:  # read-only: cannot add them itself
            raise ApiError(503, "the warehouse predates retry executions and alert acknowledgements: the next "
                                "`exportaudit run` (or `exportaudit ingest`) adds their tables")
        return answers.answer(con, answer, instant, base_policy)

    @app.get(RETRY_EXECUTIONS_PATH, dependencies=auth, response_model=RetryExecutionsResponse,
             summary="Retry executions: the retry worker's executions checked against the retry plans at as_of")
    def retry_worker_executions(
        as_of: Annotated[str | None, Query(description="ISO-8601 instant with offset; default now (UTC).")] = None,
    ) -> Response:
        instant = _as_of(as_of)
        with read_only() as con:
            document = follow_up_answer(con, evaluation.RETRY_EXECUTIONS, instant)
        return _evidence_response("executions", document)

    @app.get(ALERT_ACKNOWLEDGEMENTS_PATH, dependencies=auth, response_model=AlertAcknowledgementsResponse,
             summary="Alert acknowledgements: the acknowledgement status of the archive health alerts at as_of")
    def archive_health_alert_acknowledgements(
        as_of: Annotated[str | None, Query(description="ISO-8601 instant with offset; default now (UTC).")] = None,
    ) -> Response:
        instant = _as_of(as_of)
        with read_only() as con:
            document = follow_up_answer(con, evaluation.ALERT_ACKNOWLEDGEMENTS, instant)
        return _evidence_response("acknowledgements", document)

    @app.get("/runs", dependencies=auth, summary="History of nightly runs, newest first")
    def runs() -> dict:
        with read_only() as con:
            return {"runs": history.runs(con), "totals": history.history_totals(con).tiles()}

    @app.get("/metrics", dependencies=auth, response_class=PlainTextResponse, summary="Prometheus metrics")
    def metrics() -> PlainTextResponse:
        with read_only() as con:
            latest, totals = history.latest_run(con), history.history_totals(con)
        text = prometheus_text(recorded_run_metrics(latest), totals.metrics())
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    @app.get("/openapi.json", dependencies=auth, include_in_schema=False)
    def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", dependencies=auth, include_in_schema=False)
    def openapi_page() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="exportaudit API")

    @app.get("/healthz", summary="Liveness")
    def healthz() -> dict:
        return {"status": "ok", "warehouse": db_path.exists()}

    @app.get("/console/tiles", dependencies=auth, summary="History totals shown on the console tiles")
    def tiles() -> dict:
        with read_only() as con:
            # + the latest run's follow-up metrics (docs/executions-and-acknowledgements.md): a per-night state,
            # not summed over history (an alert unacknowledged for a week is one alert, not seven)
            return {**history.history_totals(con).tiles(), **latest_follow_up_metrics(history.latest_run(con))}

    @app.get("/console", dependencies=auth, response_class=HTMLResponse, summary="Evidence Console")
    def console() -> HTMLResponse:
        return HTMLResponse(CONSOLE_HTML.replace("__RETRY_PLAN_PATH__", RETRY_PLAN_PATH)
                            .replace("__ARCHIVE_HEALTH_PATH__", ARCHIVE_HEALTH_PATH)
                            .replace("__RETRY_EXECUTIONS_PATH__", RETRY_EXECUTIONS_PATH)
                            .replace("__ALERT_ACKNOWLEDGEMENTS_PATH__", ALERT_ACKNOWLEDGEMENTS_PATH))

    return app


def serve(db_path: str, host: str, port: int, policy: Policy) -> None:
    import uvicorn

    uvicorn.run(create_app(db_path, policy), host=host, port=port, log_level="warning")
