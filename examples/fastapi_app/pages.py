"""Health, metrics, the dashboard, the API's documentation pages and development tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from examples.common import api
from examples.common.dashboard import STATIC, dev_token
from examples.common.headers import REDOC_CSP, redoc_page, redoc_script, swagger_page
from examples.common.models import HealthResponse
from examples.common.observability import metrics_text
from examples.fastapi_app.dependencies import Service, settings

router = APIRouter()


@router.get("/health/live", tags=["health"])
async def live() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/health/ready",
    tags=["health"],
    response_model=HealthResponse,
    responses={503: {"description": "The store is down; see Retry-After", "model": HealthResponse}},
)
async def ready(svc: Service) -> JSONResponse:
    """The store answers: 200 when ok or degraded, 503 when down."""
    status, body, headers = api.health_response(await svc.health())
    return JSONResponse(body, status_code=status, headers=headers)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    if request.app.state.meters is None:
        raise api.HttpProblem(
            404, "not_found", "Not found", "set PAYMENTORCH_OTEL=1 to expose metrics"
        )
    body, content_type = metrics_text()
    return Response(body, media_type=content_type)


@router.get("/dev/token", include_in_schema=False)
async def token(
    request: Request, role: str | None = None, customer: str | None = None
) -> JSONResponse:
    found = settings(request)
    if not found.dev_mode:
        raise api.http_error(404, "Not found")
    return JSONResponse(dev_token(found.jwt_secret, role, customer))


@router.get("/docs", include_in_schema=False)
async def swagger(request: Request) -> HTMLResponse:
    return HTMLResponse(swagger_page(request.app.title))


@router.get("/redoc", include_in_schema=False)
async def redoc(request: Request) -> HTMLResponse:
    return HTMLResponse(
        redoc_page(request.app.title), headers={"Content-Security-Policy": REDOC_CSP}
    )


@router.get("/docs-assets/redoc.standalone.js", include_in_schema=False)
async def redoc_bundle() -> Response:
    return Response(redoc_script(), media_type="text/javascript")


@router.get("/", include_in_schema=False)
async def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html")
