"""Sign in by pasting an API token once; sign out ends the session."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from service.access.tokens import hash_token, principal_for_digest
from service.console.context import StoresDep, Viewer, acting
from service.console.routing import ConsoleRoute
from service.console.sessions import (
    COOKIE,
    CSRF_FIELD,
    IDLE_SECONDS,
    SIGN_IN_COOKIE,
    close_session,
    open_session,
    same_secret,
)
from service.errors import Forbidden

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

MAX_TOKEN_LENGTH = 200


def _safe_next(raw: str | None) -> str:
    """Only a path on this site: never another host (``//evil``) or a scheme."""
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return "/runs"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/runs", status_code=303)


@router.get("/sign-in")
async def sign_in_page(request: Request, stores: StoresDep, next: str | None = None) -> Response:
    return _sign_in_form(request, stores, next_path=_safe_next(next), error=None)


def _sign_in_form(
    request: Request, stores: StoresDep, *, next_path: str, error: str | None
) -> Response:
    form_secret = secrets.token_urlsafe(24)
    response = stores.renderer.page(
        request,
        "sign_in.html",
        {"viewer": None, "next": next_path, "form_secret": form_secret, "error": error},
        status_code=401 if error else 200,
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        form_secret,
        max_age=900,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/sign-in",
    )
    return response


@router.post("/sign-in")
async def sign_in(
    request: Request,
    stores: StoresDep,
    token: Annotated[str, Form(max_length=MAX_TOKEN_LENGTH)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/runs",
    csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
) -> Response:
    """Check the token, then keep only its digest in a new server-side session."""
    if not same_secret(csrf_token, request.cookies.get(SIGN_IN_COOKIE, "")):
        raise Forbidden("the sign-in form expired or did not come from this site; reload it")
    digest = hash_token(token.strip())
    principal = await principal_for_digest(stores.sessions, digest) if token.strip() else None
    if principal is None:
        return _sign_in_form(
            request,
            stores,
            next_path=_safe_next(next),
            error="This token is not valid (unknown or revoked).",
        )
    session_id = await open_session(stores.redis, digest)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=IDLE_SECONDS,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    return response


@router.post("/sign-out")
async def sign_out(
    stores: StoresDep, viewer: Annotated[Viewer, Depends(acting(None))]
) -> RedirectResponse:
    await close_session(stores.redis, viewer.session_id)
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
