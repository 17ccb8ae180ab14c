"""API tokens: random, shown once, stored only as SHA-256, looked up on every request.

The API (bearer header) and the console (a session holding the token's digest) both find
their caller here, so revoking a token ends its console sessions on their next request.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.audit import record_audit
from service.access.principals import Principal
from service.db.engine import DriverStatement, SessionFactory, single_statement
from service.db.security_models import ApiToken, Role
from service.errors import NotFound

TOKEN_PREFIX = "ojt_"
# last_used_at is refreshed at most this often, so reads stay reads.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_token(
    sessions: SessionFactory, *, name: str, username: str, role: Role, created_by: str | None
) -> tuple[ApiToken, str]:
    """Store a new token; returns the row and the token itself (shown once)."""
    token = new_token()
    row = ApiToken(
        name=name,
        username=username,
        role=role.value,
        token_hash=hash_token(token),
        prefix=token[: len(TOKEN_PREFIX) + 6],
        created_by=created_by,
    )
    async with sessions.begin() as session:
        session.add(row)
    return row, token


async def issue_token(
    sessions: SessionFactory,
    *,
    name: str,
    username: str | None,
    role: Role,
    caller: Principal,
    client_ip: str | None,
) -> tuple[ApiToken, str]:
    """An admin creates a token for someone (``username``, else ``name``), audited."""
    row, token = await create_token(
        sessions, name=name, username=username or name, role=role, created_by=caller.username
    )
    async with sessions.begin() as session:
        record_audit(
            session,
            actor=caller.username,
            action="create",
            resource_type="token",
            resource_id=row.id,
            client_ip=client_ip,
            details={"role": role.value, "username": row.username},
        )
    return row, token


async def revoke_token(
    session: AsyncSession, token_id: int, *, caller: Principal, client_ip: str | None
) -> ApiToken:
    """Revoke a token (it stops working at once) and audit it; revoking twice is harmless."""
    row = await session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"token {token_id} does not exist")
    await session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    record_audit(
        session,
        actor=caller.username,
        action="revoke",
        resource_type="token",
        resource_id=token_id,
        client_ip=client_ip,
    )
    await session.commit()
    await session.refresh(row)
    return row


# One autocommit SELECT per request, on the driver connection (every request pays it);
# last_used_at is written only when it is stale.
_TOKEN_LOOKUP = DriverStatement(
    select(
        ApiToken.id,
        ApiToken.username,
        ApiToken.role,
        (
            ApiToken.last_used_at.is_(None)
            | (ApiToken.last_used_at < func.now() - LAST_USED_RESOLUTION)
        ).label("stale"),
    ).where(ApiToken.token_hash == bindparam("digest"), ApiToken.revoked_at.is_(None))
)
_TOUCH_TOKEN = (
    update(ApiToken).where(ApiToken.id == bindparam("token_id")).values(last_used_at=func.now())
)


async def principal_for_digest(sessions: SessionFactory, digest: str) -> Principal | None:
    """The caller behind a token's digest; None when it is unknown or revoked."""
    row = await _TOKEN_LOOKUP.fetchrow(sessions, digest=digest)
    if row is None:
        return None
    if row["stale"]:
        async with single_statement(sessions) as conn:
            await conn.execute(_TOUCH_TOKEN, {"token_id": row["id"]})
    return Principal(username=row["username"], role=Role(row["role"]), token_id=row["id"])
