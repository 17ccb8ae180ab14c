"""``/api/tokens`` (admins): create (the token is shown once), list, revoke."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from service.access.audit import source_ip
from service.access.tokens import issue_token, revoke_token
from service.api.auth import TokensReader, TokensWriter
from service.api.deps import SessionDep, SessionsDep
from service.api.pagination import PageQuery, PageSizeQuery
from service.db.paging import Page, paginate
from service.db.security_models import ApiToken, Role

router = APIRouter(prefix="/api/tokens", tags=["tokens"])


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    role: Role
    username: str | None = Field(default=None, min_length=1, max_length=255)


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    username: str
    role: Role
    prefix: str
    created_by: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class CreatedTokenOut(TokenOut):
    token: str = Field(description="The token itself; it is never shown again.")


@router.post("", status_code=201, response_model=CreatedTokenOut)
async def create(
    body: TokenIn, caller: TokensWriter, request: Request, sessions: SessionsDep
) -> CreatedTokenOut:
    row, token = await issue_token(
        sessions,
        name=body.name,
        username=body.username,
        role=body.role,
        caller=caller,
        client_ip=source_ip(request),
    )
    return CreatedTokenOut(**TokenOut.model_validate(row).model_dump(), token=token)


@router.get("", response_model=Page[TokenOut])
async def list_tokens(
    caller: TokensReader, session: SessionDep, page: PageQuery = 1, page_size: PageSizeQuery = 50
) -> Page[TokenOut]:
    return await paginate(
        session,
        ApiToken,
        where=[],
        order_by=[ApiToken.id.desc()],
        page=page,
        page_size=page_size,
        to_item=TokenOut.model_validate,
    )


@router.post("/{token_id}/revoke", response_model=TokenOut)
async def revoke(
    token_id: int, caller: TokensWriter, request: Request, session: SessionDep
) -> TokenOut:
    """Revoke a token; it stops working at once. Revoking twice is harmless."""
    row = await revoke_token(session, token_id, caller=caller, client_ip=source_ip(request))
    return TokenOut.model_validate(row)
