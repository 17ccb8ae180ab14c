"""Admin (admins only): tokens (a new one is shown once; revoke), credentials (secrets
write-only), and the audit log with filters."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from service.access.audit import list_audit, source_ip
from service.access.credential_records import (
    SECRET_NAMES,
    CredentialIn,
    CredentialOut,
    create_credential,
)
from service.access.ownership import visible_to
from service.access.tokens import issue_token, revoke_token
from service.console.context import StoresDep, Viewer, ViewerDep, acting, require_admin
from service.console.routing import ConsoleRoute
from service.console.schedule_form import validation_errors
from service.db.paging import paginate
from service.db.security_models import ApiToken, Credential, CredentialType, Role
from service.errors import InvalidInput

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 50
Administering = Annotated[Viewer, Depends(acting("settings.tokens:write"))]
CREDENTIAL_TEXT_FIELDS = ("name", "type", "username", "description", "valid_until")


async def _tokens_page(
    request: Request,
    viewer: Viewer,
    stores: StoresDep,
    page: int,
    *,
    created: tuple[ApiToken, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    async with stores.sessions() as session:
        tokens = await paginate(
            session,
            ApiToken,
            where=[],
            order_by=[ApiToken.id.desc()],
            page=page,
            page_size=PAGE_SIZE,
            to_item=lambda row: row,
        )
    return stores.renderer.page(
        request,
        "admin_tokens.html",
        {
            "viewer": viewer,
            "nav": "admin",
            "section": "tokens",
            "tokens": tokens,
            "roles": [role.value for role in Role],
            "created": created,
            "errors": errors or {},
        },
        status_code=422 if errors else 201 if created else 200,
    )


@router.get("/admin")
async def admin_home() -> RedirectResponse:
    return RedirectResponse("/admin/tokens", status_code=303)


@router.get("/admin/tokens")
async def tokens_page(
    request: Request,
    viewer: ViewerDep,
    stores: StoresDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    require_admin(viewer)
    return await _tokens_page(request, viewer, stores, page)


@router.post("/admin/tokens")
async def create_token_form(request: Request, viewer: Administering, stores: StoresDep) -> Response:
    """Create a token and show it on this one answer only (never in a URL)."""
    form = await request.form()
    name = str(form.get("name") or "").strip()
    username = str(form.get("username") or "").strip() or None
    role = str(form.get("role") or "")
    errors = {}
    if not name or len(name) > 255:
        errors["name"] = "a name of 1 to 255 characters"
    if username is not None and len(username) > 255:
        errors["username"] = "at most 255 characters"
    if role not in {r.value for r in Role}:
        errors["role"] = "choose viewer, operator or admin"
    if errors:
        return await _tokens_page(request, viewer, stores, 1, errors=errors)
    created = await issue_token(
        stores.sessions,
        name=name,
        username=username,
        role=Role(role),
        caller=viewer.principal,
        client_ip=source_ip(request),
    )
    return await _tokens_page(request, viewer, stores, 1, created=created)


@router.post("/admin/tokens/{token_id}/revoke")
async def revoke(
    request: Request, token_id: int, viewer: Administering, stores: StoresDep
) -> RedirectResponse:
    async with stores.sessions() as session:
        await revoke_token(session, token_id, caller=viewer.principal, client_ip=source_ip(request))
    return RedirectResponse("/admin/tokens", status_code=303)


async def _credentials_page(
    request: Request,
    viewer: Viewer,
    stores: StoresDep,
    page: int,
    *,
    texts: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    message: str | None = None,
) -> Response:
    async with stores.sessions() as session:
        credentials = await paginate(
            session,
            Credential,
            where=[visible_to(Credential, viewer.principal)],
            order_by=[Credential.name, Credential.id],
            page=page,
            page_size=PAGE_SIZE,
            to_item=CredentialOut.of,
        )
    return stores.renderer.page(
        request,
        "admin_credentials.html",
        {
            "viewer": viewer,
            "nav": "admin",
            "section": "credentials",
            "credentials": credentials,
            "types": [kind.value for kind in CredentialType],
            "secret_names": SECRET_NAMES,
            "texts": texts or {},
            "errors": errors or {},
            "form_error": message,
        },
        status_code=422 if errors or message else 200,
    )


@router.get("/admin/credentials")
async def credentials_page(
    request: Request,
    viewer: ViewerDep,
    stores: StoresDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    require_admin(viewer)
    return await _credentials_page(request, viewer, stores, page)


@router.post("/admin/credentials")
async def create_credential_form(
    request: Request, viewer: Administering, stores: StoresDep
) -> Response:
    """Store a credential; its secrets are sealed at once and never shown again, not even
    on a refused form (the secret fields come back empty)."""
    form = await request.form()
    texts = {name: str(form.get(name) or "").strip() for name in CREDENTIAL_TEXT_FIELDS}
    values: dict[str, Any] = {name: value for name, value in texts.items() if value}
    values["is_global"] = form.get("is_global") == "true"
    values.update({name: form.get(name) or None for name in SECRET_NAMES})
    try:
        body = CredentialIn.model_validate(values)
    except ValidationError as exc:
        return await _credentials_page(
            request, viewer, stores, 1, texts=texts, errors=validation_errors(exc)
        )
    try:
        async with stores.sessions() as session:
            await create_credential(
                session, stores.keys, body, caller=viewer.principal, client_ip=source_ip(request)
            )
    except InvalidInput as exc:
        return await _credentials_page(request, viewer, stores, 1, texts=texts, message=exc.message)
    return RedirectResponse("/admin/credentials", status_code=303)


@router.get("/admin/audit")
async def audit_page(
    request: Request,
    viewer: ViewerDep,
    stores: StoresDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    actor: Annotated[str | None, Query(max_length=255)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    resource_type: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    require_admin(viewer)
    filters = {"actor": actor or "", "action": action or "", "resource_type": resource_type or ""}
    async with stores.sessions() as session:
        events = await list_audit(
            session,
            actor=actor,
            action=action,
            resource_type=resource_type,
            page=page,
            page_size=PAGE_SIZE,
        )
    query = urlencode({key: value for key, value in filters.items() if value})
    return stores.renderer.page(
        request,
        "admin_audit.html",
        {
            "viewer": viewer,
            "nav": "admin",
            "section": "audit",
            "events": events,
            "filters": filters,
            "query": query,
        },
    )
