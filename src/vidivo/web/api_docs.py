"""`/docs`: the interactive API reference (Swagger UI), served entirely from this origin.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script; the app's
Content-Security-Policy forbids both, and a machine without internet cannot reach the CDN.
Here Swagger UI's files come from the `fastapi-swagger` package and a small module of ours
starts it, so the page needs nothing beyond what the strict policy allows."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

API_DOCS_PATH = "/docs"
SWAGGER_ASSETS_PATH = "/docs/assets"
SWAGGER_ASSETS_DIR = Path(str(files("fastapi_swagger.resources")))

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


@router.get(API_DOCS_PATH, response_class=HTMLResponse)
async def api_reference(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "api_docs.html",
        {"assets": SWAGGER_ASSETS_PATH, "openapi_url": request.app.openapi_url},
    )


def swagger_assets() -> StaticFiles:
    return StaticFiles(directory=SWAGGER_ASSETS_DIR)
