"""``/api/notifications/channels``: where alerts go (webhook, slack, email), and a test send.

Private channels (``is_global: false``) belong to their owner; a webhook's ``secret`` is
write-only and stored encrypted, answers say ``has_secret``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.audit import record_audit
from service.access.ownership import authorize, get_visible, require_owner, visible_to
from service.access.principals import Principal
from service.access.resources import resource_uses
from service.api.auth import NotificationsReader, NotificationsWriter
from service.api.deps import KeysDep, SessionDep, SessionsDep, SettingsDep
from service.api.pagination import PageQuery, PageSizeQuery
from service.db.notify_models import ChannelType, NotificationChannel
from service.db.paging import Page, paginate
from service.db.patching import flush_or_conflict, refuse_nulls
from service.db.security_models import Credential, CredentialType
from service.errors import Conflict, InvalidInput
from service.notify.channels import CONFIG_MODELS, Message
from service.notify.senders import Senders, channel_target, seal_secret
from service.secrets import KeyStore

router = APIRouter(prefix="/api/notifications/channels", tags=["notifications"])

Name = Annotated[str, Field(min_length=1, max_length=255)]
Secret = Annotated[str, Field(min_length=16, max_length=1024)]


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    type: ChannelType
    is_global: bool = False
    config: dict[str, Any]


class ChannelUpdate(BaseModel):
    """Fields left out keep their value; ``config`` is replaced whole (a webhook keeps its
    secret unless the new config names one)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    is_global: bool | None = None
    config: dict[str, Any] | None = None


class ChannelOut(BaseModel):
    id: int
    name: str
    type: str
    is_global: bool
    owner: str | None
    config: dict[str, Any]
    has_secret: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: NotificationChannel) -> ChannelOut:
        return cls(
            id=row.id,
            name=row.name,
            type=row.type,
            is_global=row.is_global,
            owner=row.owner,
            config=row.config,
            has_secret=row.ciphertext is not None,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class TestResultOut(BaseModel):
    ok: bool
    status_code: int | None
    error: str | None
    response: str | None
    duration_ms: int


def _name_taken(name: str) -> Conflict:
    return Conflict(f"a notification channel named {name!r} already exists in this scope")


async def _checked_config(
    session: AsyncSession, caller: Principal, kind: ChannelType, config: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """The stored config (without the secret) and the secret; errors name the field."""
    values = dict(config)
    secret = values.pop("secret", None) if kind is ChannelType.WEBHOOK else None
    try:
        model = CONFIG_MODELS[kind].model_validate(values)
        if secret is not None:
            secret = _secret(secret)
    except ValidationError as exc:
        raise InvalidInput(
            f"invalid {kind.value} channel config",
            details=[
                {"loc": ["body", "config", *error["loc"]], "msg": error["msg"]}
                for error in exc.errors()
            ],
        ) from None
    await authorize(session, caller, resource_uses(model, ("body", "config")))
    stored = model.model_dump()
    credential_id = stored.get("credential_id")
    if credential_id is not None:
        credential = await session.get(Credential, credential_id)
        if credential is None or credential.type != CredentialType.USERNAME_PASSWORD.value:
            raise InvalidInput(
                f"credential {credential_id} is not a username_password credential",
                details=[
                    {"loc": ["body", "config", "credential_id"], "msg": "not username_password"}
                ],
            )
    return stored, secret


def _secret(value: object) -> str:
    class _Secret(BaseModel):
        secret: Secret

    return _Secret.model_validate({"secret": value}).secret


def _seal(keys: KeyStore, row: NotificationChannel, secret: str) -> None:
    row.key_id, row.ciphertext = seal_secret(keys, secret)


@router.get("", response_model=Page[ChannelOut])
async def list_channels(
    caller: NotificationsReader,
    session: SessionDep,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 50,
) -> Page[ChannelOut]:
    return await paginate(
        session,
        NotificationChannel,
        where=[visible_to(NotificationChannel, caller)],
        order_by=[NotificationChannel.name, NotificationChannel.id],
        page=page,
        page_size=page_size,
        to_item=ChannelOut.of,
    )


@router.post("", status_code=201, response_model=ChannelOut)
async def create_channel(
    body: ChannelIn,
    caller: NotificationsWriter,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
) -> ChannelOut:
    config, secret = await _checked_config(session, caller, body.type, body.config)
    if body.type is ChannelType.WEBHOOK and secret is None:
        raise InvalidInput(
            "a webhook channel needs a secret to sign its calls",
            details=[{"loc": ["body", "config", "secret"], "msg": "required"}],
        )
    row = NotificationChannel(
        name=body.name,
        type=body.type.value,
        is_global=body.is_global,
        owner=caller.username,
        config=config,
    )
    if secret is not None:
        _seal(keys, row, secret)
    session.add(row)
    await flush_or_conflict(session, _name_taken(body.name))
    _audit(session, caller, "create", row, request)
    await session.commit()
    await session.refresh(row)
    return ChannelOut.of(row)


@router.get("/{channel_id}", response_model=ChannelOut)
async def get_channel(
    channel_id: int, caller: NotificationsReader, session: SessionDep
) -> ChannelOut:
    return ChannelOut.of(await _visible(session, channel_id, caller))


@router.patch("/{channel_id}", response_model=ChannelOut)
async def update_channel(
    channel_id: int,
    body: ChannelUpdate,
    caller: NotificationsWriter,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
) -> ChannelOut:
    row = await _visible(session, channel_id, caller, for_update=True)
    require_owner(caller, row, label="notification channel")
    changes = body.model_dump(exclude_unset=True)
    refuse_nulls(NotificationChannel, changes)
    if "config" in changes:
        config, secret = await _checked_config(
            session, caller, ChannelType(row.type), changes.pop("config")
        )
        row.config = config
        if secret is not None:
            _seal(keys, row, secret)
    for name, value in changes.items():
        setattr(row, name, value)
    await flush_or_conflict(session, _name_taken(row.name))
    _audit(session, caller, "update", row, request, fields=sorted(body.model_fields_set))
    await session.commit()
    await session.refresh(row)
    return ChannelOut.of(row)


@router.delete("/{channel_id}", status_code=204)
async def delete_channel(
    channel_id: int, caller: NotificationsWriter, request: Request, session: SessionDep
) -> Response:
    """Delete a channel; rules naming it skip it, its delivery records stay."""
    row = await _visible(session, channel_id, caller, for_update=True)
    require_owner(caller, row, label="notification channel")
    _audit(session, caller, "delete", row, request)
    await session.delete(row)
    await session.commit()
    return Response(status_code=204)


@router.post("/{channel_id}/test", response_model=TestResultOut)
async def test_channel(
    channel_id: int,
    caller: NotificationsWriter,
    request: Request,
    settings: SettingsDep,
    sessions: SessionsDep,
    keys: KeysDep,
) -> TestResultOut:
    """Send a test message now and answer with what the receiver said (200 either way)."""
    async with sessions.begin() as session:
        row = await _visible(session, channel_id, caller)
        _audit(session, caller, "test", row, request)
    target = await channel_target(sessions, keys, row)
    message = Message(
        event_id=0,
        event="test",
        severity="info",
        title=f"Test message for channel {row.name}",
        text=f"{caller.username} tested the notification channel {row.name} (id {row.id}).",
        subject=f"channel:{row.id}",
        occurred_at=datetime.now(UTC),
        since=None,
        link=settings.api.public_url,
    )
    async with Senders(settings.notify.timeout) as senders:
        result = await senders.send(target, message, delivery_id=None, rule=None)
    return TestResultOut(
        ok=result.ok,
        status_code=result.status_code,
        error=result.error,
        response=result.response,
        duration_ms=result.duration_ms,
    )


async def _visible(
    session: AsyncSession, channel_id: int, caller: Principal, *, for_update: bool = False
) -> NotificationChannel:
    return await get_visible(
        session,
        NotificationChannel,
        channel_id,
        caller,
        label="notification channel",
        for_update=for_update,
    )


def _audit(
    session: AsyncSession,
    caller: Principal,
    action: str,
    row: NotificationChannel,
    request: Request,
    *,
    fields: list[str] | None = None,
) -> None:
    details: dict[str, Any] = {"name": row.name, "type": row.type}
    if fields is not None:
        details["fields"] = fields
    record_audit(
        session,
        actor=caller.username,
        action=action,
        resource_type="notification_channel",
        resource_id=row.id,
        request=request,
        details=details,
    )
