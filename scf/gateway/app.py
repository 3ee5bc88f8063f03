"""The HTTP face of the fleet (FastAPI): the spec's REST endpoints, each a thin call through `FleetClient`.

HTTP and AMQP callers get the same JSON bodies; only the status line is added, from the error's code
and category (`scf.gateway.errors`). `/docs` serves the OpenAPI document, `/asyncapi.json` the AMQP one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import structlog
from fastapi import Body, Depends, FastAPI, Header, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from scf._version import __version__
from scf.connectors.registry import is_available, operation_catalog
from scf.fleet.access import AccessControl
from scf.fleet.access_store import AccessStore, ApiKeyStore
from scf.fleet.audit import record as audit_record
from scf.fleet.client import FleetClient
from scf.fleet.crypto import load_secret_box
from scf.fleet.quotas import RateLimiter
from scf.fleet.rpc import CALLER
from scf.fleet.settings import Settings
from scf.fleet.state import StateStore
from scf.gateway import admin, docs_pages, resilience
from scf.gateway.auth import Authenticator, GuardedRoute, add_openid_connect
from scf.gateway.bodies import BodyGuard, ByteBudget
from scf.gateway.catalog import ConnectorType, ValidationReport, connector_types, validate_config
from scf.gateway.contract import single_valued_query, tighten
from scf.gateway.http_metrics import RequestMetrics
from scf.gateway.refusals import failure, install_error_handlers
from scf.schemas.asyncapi import build_asyncapi
from scf.schemas.connection import SERVICE_NAME_PATTERN, ServiceConnection
from scf.schemas.control import (
    Acknowledged,
    ConnectorCreated,
    ConnectorList,
    ConnectorMetrics,
    ConnectorState,
    ConnectorStatus,
    FailedReply,
    FleetMetrics,
)
from scf.schemas.errors import ConfigurationError, ErrorCode, PermanentError
from scf.schemas.operation import (
    OPERATION_ID_PATTERN,
    ConnectionTestResult,
    OperationRequest,
    OperationResult,
)

log = structlog.get_logger(__name__)

ClientFactory = Callable[[], Awaitable[FleetClient]]
#: Path parameters carry the patterns the fleet enforces, so the document refuses what the server refuses.
ServiceName = Annotated[str, Path(pattern=SERVICE_NAME_PATTERN, max_length=128)]
OperationId = Annotated[str, Path(pattern=OPERATION_ID_PATTERN, max_length=128)]
FAILED = {
    "model": FailedReply,
    "description": "a typed error: category, code, message, retryable, retry_after",
}
MAX_AUDITED_PATH = 256
ERRORS: dict[int | str, dict[str, Any]] = {
    code: FAILED for code in (400, 401, 403, 404, 409, 413, 422, 429, 503, 504)
}


def create_app(settings: Settings | None = None, client_factory: ClientFactory | None = None) -> FastAPI:
    settings = settings or Settings()

    async def connect() -> FleetClient:
        return await FleetClient.connect(settings.amqp_url, timeout=settings.scf_default_timeout)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.fleet = await (client_factory or connect)()
        state = _open_access(app, settings)
        try:
            yield
        finally:
            await app.state.fleet.close()
            await app.state.auth.close()
            await state.close()

    app = FastAPI(
        title="Service Connector Factory",
        version=__version__,
        description="One uniform, resilient way to reach data services. Each call goes through the fleet.",
        lifespan=lifespan,
        docs_url=None,  # served from this process by docs_pages (no CDN)
        redoc_url=None,
        dependencies=[Depends(single_valued_query)],
    )
    # before any route: every JSON body is parsed strictly, and every route has an access decision
    app.router.route_class = GuardedRoute
    app.add_middleware(
        BodyGuard,
        max_bytes=settings.scf_max_request_bytes,
        budget=ByteBudget(settings.scf_max_body_memory),
        read_timeout=settings.scf_body_read_timeout,
    )
    install_error_handlers(app)
    _install_audit(app)
    _connector_routes(app)
    _operation_routes(app)
    _control_routes(app)
    _fleet_routes(app, settings)
    resilience.install(app, ERRORS)
    admin.install(app, ERRORS)
    _install_openapi(app, settings)
    docs_pages.install(app)
    app.add_middleware(RequestMetrics)  # added last: outermost, so every answer is counted
    return app


def _open_access(app: FastAPI, settings: Settings) -> StateStore:
    """The Redis state (API keys, admin-API principals) and who may call: opened by the lifespan."""
    secret = settings.scf_secret_key.get_secret_value() if settings.scf_secret_key else None
    state = StateStore.from_settings(settings, load_secret_box(secret, settings.scf_data_dir))
    app.state.keys = ApiKeyStore(state)
    app.state.access_store = AccessStore(state)
    access = AccessControl(settings, policies=app.state.access_store)
    app.state.auth = Authenticator(
        settings, access, app.state.keys, app.state.access_store, limiter=RateLimiter(state)
    )
    return state


def _install_openapi(app: FastAPI, settings: Settings) -> None:
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = tighten(add_openid_connect(plain(), settings))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def fleet(request: Request) -> FleetClient:
    client: FleetClient = request.app.state.fleet
    return client


def _install_audit(app: FastAPI) -> None:
    @app.middleware("http")
    async def audit(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        caller = f"http:{request.client.host if request.client else 'unknown'}"
        started = time.perf_counter()
        token = CALLER.set(caller)
        try:
            response = await call_next(request)
        finally:
            CALLER.reset(token)
        if not request.url.path.startswith(("/healthz", "/readyz", "/metrics/prometheus")):
            what = f"{request.method} {request.url.path[:MAX_AUDITED_PATH]}"  # a path may be 64 KiB long
            principal = getattr(request.state, "principal", None)  # set by the route's access guard
            user = None if principal is None else f"{principal.via}:{principal.name}"
            audit_record(user=user, caller=caller, what=what, started=started, outcome=response.status_code)
        return response


def _connector_routes(app: FastAPI) -> None:
    """The connector registry: create, list, read, update and delete connectors."""

    @app.post(
        "/connectors", status_code=201, response_model=ConnectorCreated, responses=ERRORS, tags=["connectors"]
    )
    async def create_connector(body: ServiceConnection, request: Request) -> ConnectorCreated:
        return (await fleet(request).create_connector(body)).created

    @app.get("/connectors", response_model=ConnectorList, tags=["connectors"])
    async def list_connectors(request: Request, service_type: str | None = None) -> ConnectorList:
        connectors = await fleet(request).list_connectors(service_type)
        return ConnectorList(connectors=connectors, total=len(connectors))

    @app.get(
        "/connectors/{service_name}", response_model=ConnectorState, responses=ERRORS, tags=["connectors"]
    )
    async def get_connector(service_name: ServiceName, request: Request) -> ConnectorState:
        return await fleet(request).get_connector(service_name)

    @app.put(
        "/connectors/{service_name}", response_model=ConnectorCreated, responses=ERRORS, tags=["connectors"]
    )
    async def update_connector(
        service_name: ServiceName, body: Annotated[dict[str, Any], Body()], request: Request
    ) -> ConnectorCreated:
        # The path names the connector; a service_name in the body (the create body's shape) must agree.
        if body.get("service_name", service_name) != service_name:
            raise PermanentError(
                "the body's service_name must match the path", code=ErrorCode.INVALID_REQUEST
            )
        try:
            connection = ServiceConnection.model_validate({**body, "service_name": service_name})
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            ) from None
        return await fleet(request).update_connector(connection)

    @app.delete(
        "/connectors/{service_name}", response_model=Acknowledged, responses=ERRORS, tags=["connectors"]
    )
    async def delete_connector(service_name: ServiceName, request: Request) -> Acknowledged:
        return await fleet(request).delete_connector(service_name)


def _operation_routes(app: FastAPI) -> None:
    """Run an operation on a connector (`POST /connectors/{service_name}/execute`)."""

    @app.post(
        "/connectors/{service_name}/execute",
        response_model=OperationResult,
        responses={
            code: {"model": OperationResult} for code in (400, 401, 403, 404, 409, 413, 422, 429, 503, 504)
        },
        tags=["operations"],
    )
    async def execute(
        service_name: ServiceName,
        body: OperationRequest,
        request: Request,
        idempotency_key: Annotated[str | None, Header(max_length=256)] = None,
    ) -> Any:
        if body.service_name not in (None, service_name):
            raise PermanentError(
                "connection_id must match the path's service name", code=ErrorCode.INVALID_REQUEST
            )
        if idempotency_key is not None and body.idempotency_key not in (None, idempotency_key):
            raise PermanentError("Idempotency-Key header and body disagree", code=ErrorCode.INVALID_REQUEST)
        if idempotency_key is not None:
            body = body.model_copy(update={"idempotency_key": idempotency_key})
        result = await fleet(request).execute_operation(service_name, body)
        if result.error is not None:
            return failure(result.error, result.model_dump(mode="json"))
        return result


def _control_routes(app: FastAPI) -> None:
    """Test, pause or resume a connector, and read its status and metrics."""

    @app.post(
        "/connectors/{service_name}/test",
        response_model=ConnectionTestResult,
        responses=ERRORS,
        tags=["connectors"],
    )
    async def test_connector(service_name: ServiceName, request: Request) -> ConnectionTestResult:
        return await fleet(request).test_connection(service_name)

    @app.post(
        "/connectors/{service_name}/pause", response_model=Acknowledged, responses=ERRORS, tags=["connectors"]
    )
    async def pause(service_name: ServiceName, request: Request) -> Acknowledged:
        return await fleet(request).pause_connector(service_name)

    @app.post(
        "/connectors/{service_name}/resume",
        response_model=Acknowledged,
        responses=ERRORS,
        tags=["connectors"],
    )
    async def resume(service_name: ServiceName, request: Request) -> Acknowledged:
        return await fleet(request).resume_connector(service_name)

    @app.get(
        "/connectors/{service_name}/status",
        response_model=ConnectorStatus,
        responses=ERRORS,
        tags=["monitoring"],
    )
    async def status(service_name: ServiceName, request: Request) -> ConnectorStatus:
        return await fleet(request).connector_status(service_name)

    @app.get(
        "/connectors/{service_name}/metrics",
        response_model=ConnectorMetrics,
        responses=ERRORS,
        tags=["monitoring"],
    )
    async def connector_metrics(service_name: ServiceName, request: Request) -> ConnectorMetrics:
        return await fleet(request).get_metrics(service_name)


#: What `/asyncapi.json` names as the broker: a placeholder, never the real host, port or user.
PUBLIC_BROKER_URL = "amqp://rabbitmq.example/"


def _fleet_routes(app: FastAPI, settings: Settings) -> None:
    @app.get(
        "/operations/{operation_id}", response_model=OperationResult, responses=ERRORS, tags=["operations"]
    )
    async def stored_result(operation_id: OperationId, request: Request) -> OperationResult:
        return await fleet(request).get_result(operation_id)

    @app.get("/connector-types", response_model=list[ConnectorType], tags=["connectors"])
    async def types() -> list[ConnectorType]:
        return connector_types()

    @app.post(
        "/connector-types/{service_type}/validate",
        response_model=ValidationReport,
        responses=ERRORS,
        tags=["connectors"],
    )
    async def validate(service_type: str, body: dict[str, Any]) -> ValidationReport:
        if not is_available(service_type):
            raise ConfigurationError(f"no connector type {service_type!r}", code=ErrorCode.NOT_FOUND)
        return validate_config(service_type, body)

    @app.get("/metrics", response_model=FleetMetrics, tags=["monitoring"])
    async def fleet_metrics(request: Request) -> FleetMetrics:
        return await fleet(request).fleet_metrics()

    @app.get(
        "/metrics/prometheus",
        tags=["monitoring"],
        response_class=PlainTextResponse,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
    )
    async def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/asyncapi.json", tags=["docs"])
    async def asyncapi() -> dict[str, Any]:
        return build_asyncapi(server_url=PUBLIC_BROKER_URL, operations=operation_catalog())

    @app.get("/healthz", tags=["monitoring"])
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", tags=["monitoring"])
    async def readyz(request: Request) -> JSONResponse:
        ready = fleet(request).rpc.connected
        return JSONResponse({"status": "ready" if ready else "not ready"}, status_code=200 if ready else 503)
