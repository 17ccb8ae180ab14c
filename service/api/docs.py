"""``/docs`` (Swagger UI) and ``/redoc`` served offline.

Their scripts and styles come from the ``fastapi-offline`` package, served here under
``/api/docs-assets``. ReDoc's bundle shows its maker's logo from a CDN in the sidebar's
footer: the bundle is served with that address replaced by an empty image, which the
footer then hides, and a Content-Security-Policy keeps the pages from loading anything
from another host.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

ASSETS_URL = "/api/docs-assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
REDOC_BUNDLE = "redoc-offline.js"
_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
# The pages' own inline start-up scripts need 'unsafe-inline'; ReDoc runs a blob: worker.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'"
)


def _offline(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_POLICY
    return page


def install_offline_docs(app: FastAPI) -> None:
    """Serve the docs pages and their assets; ``app`` was made without its CDN docs."""
    # Read once, when the app is made (before it serves), and kept in memory (~1 MB).
    redoc_bundle = (ASSETS_DIR / "redoc.standalone.js").read_text().replace(_CDN_LOGO, "data:,")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(f"{ASSETS_URL}/{REDOC_BUNDLE}", include_in_schema=False)
    async def redoc_script() -> Response:
        return Response(redoc_bundle, media_type="text/javascript")

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _offline(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _offline(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{ASSETS_URL}/{REDOC_BUNDLE}",
                redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )
