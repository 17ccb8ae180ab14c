"""``install_console(app)``: the console's pages and assets on the API's application.

The pages share the API's lifespan (engine, Redis pool, key store); the console adds only
its renderer and its static files, served by opsjobs itself.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from service.console.pages import admin, backups, health, runs, schedules, signing, templates
from service.console.rendering import STATIC_DIR, Renderer


def install_console(app: FastAPI) -> FastAPI:
    """Mount the console at ``/`` (its assets at ``/assets``) beside the API's routes."""
    app.state.console_renderer = Renderer()
    app.mount("/assets", StaticFiles(directory=STATIC_DIR), name="console-assets")
    for pages in (signing, runs, templates, schedules, health, backups, admin):
        app.include_router(pages.router)
    return app
