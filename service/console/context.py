"""Who is looking at a console page, and the stores a page reads through.

Every page depends on :func:`current_viewer` (a signed-in session, else a redirect to the
sign-in page); every changing form depends on :func:`acting`, which refuses with 403 a
POST whose CSRF token is missing or wrong, or whose role lacks the permission, before
anything is read or changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, cast

from arq.connections import ArqRedis
from fastapi import Depends, Request

from service.access.principals import ALL_PERMISSIONS, Principal
from service.access.tokens import principal_for_digest
from service.console.rendering import Renderer
from service.console.sessions import COOKIE, CSRF_FIELD, close_session, load_session, same_secret
from service.db.engine import SessionFactory
from service.errors import Forbidden
from service.scheduling.windows import WindowCache
from service.secrets import KeyStore
from service.settings import Settings


class SignInRequired(Exception):
    """No valid console session: the page answers with a redirect to the sign-in page."""


@dataclass(frozen=True)
class Stores:
    """What the API's lifespan made once, borrowed by a console request."""

    settings: Settings
    sessions: SessionFactory
    redis: ArqRedis
    keys: KeyStore
    renderer: Renderer
    windows: WindowCache


async def get_stores(request: Request) -> Stores:
    state = request.state
    return Stores(
        settings=cast(Settings, state.settings),
        sessions=cast(SessionFactory, state.sessions),
        redis=cast(ArqRedis, state.redis),
        keys=cast(KeyStore, state.keys),
        renderer=cast(Renderer, request.app.state.console_renderer),
        windows=cast(WindowCache, state.windows),
    )


StoresDep = Annotated[Stores, Depends(get_stores)]


@dataclass(frozen=True)
class Viewer:
    """The signed-in person: their principal and their session's CSRF token."""

    principal: Principal
    csrf: str
    session_id: str

    @property
    def username(self) -> str:
        return self.principal.username

    def can(self, permission: str) -> bool:
        return self.principal.can(permission)


async def current_viewer(request: Request, stores: StoresDep) -> Viewer:
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        raise SignInRequired
    session = await load_session(stores.redis, session_id)
    if session is None:
        raise SignInRequired
    principal = await principal_for_digest(stores.sessions, session.token_digest)
    if principal is None:  # the token was revoked: its sessions end with it
        await close_session(stores.redis, session_id)
        raise SignInRequired
    return Viewer(principal=principal, csrf=session.csrf, session_id=session_id)


ViewerDep = Annotated[Viewer, Depends(current_viewer)]


def acting(permission: str | None) -> Callable[..., Awaitable[Viewer]]:
    """A dependency for a changing form: valid CSRF token first, then the permission."""
    if permission is not None and permission not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    async def check(request: Request, viewer: ViewerDep) -> Viewer:
        form = await request.form()
        token = form.get(CSRF_FIELD)
        if not same_secret(token if isinstance(token, str) else None, viewer.csrf):
            raise Forbidden("the form's CSRF token is missing or wrong; reload the page")
        if permission is not None:
            viewer.principal.check(permission)
        return viewer

    return check


def require_admin(viewer: Viewer) -> None:
    if not viewer.principal.is_admin:
        raise Forbidden("the admin pages are for admins")
