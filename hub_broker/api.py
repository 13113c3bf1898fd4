"""The hub service's HTTP routes (FastAPI): a thin layer over ``hub_broker.service``, run by ``hub serve``.

Each route authenticates, hands over to :class:`~hub_broker.service.HubService` and turns its
:class:`~omop.errors.RequestRefused` into ``{"detail": "one line"}`` with the refusal's status. Blocking
work (the store, the broker) runs in the thread pool. The OpenAPI schema is at ``/openapi.json``.

Nothing here logs a request's headers or body: uvicorn's access log names the method, path and status
only, so a token never reaches a log.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub_broker.accounts import Researcher
from hub_broker.service import HubService, SubmitBody
from hub_broker.settings import HubSettings
from hub_broker.store import HubStore
from omop.errors import OmopFedError
from omop.errors import RequestRefused as Refusal

API_VERSION = "v1"


def _service(request: Request) -> HubService:
    service: HubService = request.app.state.service
    return service


def _researcher(request: Request, authorization: Annotated[str | None, Header()] = None) -> Researcher:
    return _service(request).authenticate(authorization)


Service = Annotated[HubService, Depends(_service)]
Caller = Annotated[Researcher, Depends(_researcher)]
router = APIRouter()


@router.get("/healthz", tags=["service"])
def healthz(service: Service) -> dict[str, Any]:
    """Whether the service and its store answer (no authentication)."""
    return service.health()


@router.post(
    f"/{API_VERSION}/queries",
    status_code=202,
    tags=["queries"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": SubmitBody.model_json_schema()}},
        }
    },
    responses={400: {}, 401: {}, 403: {}, 413: {}, 503: {}},
)
async def submit_query(request: Request, service: Service, who: Caller) -> dict[str, Any]:
    """Pre-check, record and publish a query for one of your projects; poll ``GET /v1/queries/{id}``."""
    service.check_size(request.headers.get("content-length"))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > service.max_body_bytes:
            raise service.too_large()
        chunks.append(chunk)
    body = service.parse_submission(b"".join(chunks))
    return await run_in_threadpool(service.submit, who, body)


@router.get(f"/{API_VERSION}/queries/{{query_id}}", tags=["queries"], responses={401: {}, 404: {}})
def get_query(query_id: str, service: Service, who: Caller) -> dict[str, Any]:
    """The report of one of your queries: the object ``omopfed hub submit --json`` prints."""
    return service.report(who, query_id)


@router.get(f"/{API_VERSION}/queries", tags=["queries"], responses={400: {}, 401: {}})
def list_queries(service: Service, who: Caller, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """Your queries, newest first (an administrator's: every query); ``limit`` at most 500."""
    return service.list_queries(who, limit, offset)


async def _refusal(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refusal)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = str(first.get("msg", "invalid request"))
    return JSONResponse({"detail": f"invalid request: {where}: {message}"}, status_code=400)


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse({"detail": " ".join(str(exc.detail).split())}, status_code=exc.status_code)


async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=503)


def create_app(service: HubService) -> FastAPI:
    """The app over ``service`` (its settings and store), every refusal as ``{"detail": "one line"}``."""
    app = FastAPI(
        title="omop-federation hub",
        version="1",
        description="Submit cohort questions to the federation and read their pooled, disclosure-controlled "
        "results. Authenticate with `Authorization: Bearer <token>` (`omopfed hub user add`).",
        exception_handlers={
            Refusal: _refusal,
            RequestValidationError: _invalid,
            StarletteHTTPException: _http,
            OmopFedError: _unavailable,
        },
    )
    app.state.service = service
    app.include_router(router)
    return app


def app_for(settings: HubSettings) -> FastAPI:
    """The app over the hub store and keys that ``settings`` name."""
    return create_app(HubService(settings, HubStore(settings.hub_store_url)))


def serve(settings: HubSettings, *, host: str, port: int, log_level: str = "info") -> None:
    """Run the service in the foreground until interrupted (``omopfed hub serve``)."""
    import uvicorn

    from omop.keys import load_hub_private

    load_hub_private(settings.hub_keys_dir)  # fail at start-up, in one line, not at the first submission
    uvicorn.run(
        app_for(settings), host=host, port=port, log_level=log_level, server_header=False, access_log=True
    )
