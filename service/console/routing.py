"""The console's route class: errors become pages, a missing session a sign-in redirect.

The API's handlers answer JSON; a person at a browser gets the same status with a page
saying what went wrong, and never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from service.console.context import SignInRequired
from service.console.rendering import Renderer
from service.errors import OpsjobsError, http_status


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    renderer: Renderer = request.app.state.console_renderer
    return renderer.page(
        request,
        "error.html",
        {"viewer": None, "title": title, "message": message, "status": status},
        status_code=status,
    )


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return sign_in_redirect(request)
            except RequestValidationError as exc:
                fields = ", ".join(
                    ".".join(str(part) for part in error.get("loc", ())) for error in exc.errors()
                )
                return error_page(request, 422, "Invalid request", f"Check: {fields}")
            except OpsjobsError as exc:
                status = http_status(exc)
                return error_page(request, status, _TITLES.get(status, "Error"), exc.message)

        return handle


_TITLES = {
    401: "Sign-in needed",
    403: "Not allowed",
    404: "Not found",
    409: "Not possible now",
    422: "Invalid input",
    503: "Unavailable",
}
