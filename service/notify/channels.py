"""Channel configurations (validated on save) and what each kind of channel is sent.

- ``webhook``: ``{url, secret, headers, verify_tls}``; a POST of the JSON body of
  :func:`webhook_body`, signed: ``X-Opsjobs-Signature: sha256=<hex HMAC-SHA256 of
  "<X-Opsjobs-Timestamp>.<raw body>">`` with the channel's secret (stored encrypted).
- ``slack``: ``{url, verify_tls}``; Slack's incoming-webhook shape (``text`` + ``blocks``),
  which Mattermost's incoming webhooks also take (they show ``text``).
- ``email``: ``{host, port, security: none|starttls|tls, credential_id, from_address, to,
  verify_tls}`` over SMTP; the login comes from a stored username/password credential.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.access.resources import ResourceKind, ResourceRef
from service.db.notify_models import ChannelType

SIGNATURE_HEADER = "X-Opsjobs-Signature"
TIMESTAMP_HEADER = "X-Opsjobs-Timestamp"
EVENT_HEADER = "X-Opsjobs-Event"
DELIVERY_HEADER = "X-Opsjobs-Delivery"
# Headers opsjobs sets itself; a channel's custom headers may not replace them.
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        EVENT_HEADER,
        DELIVERY_HEADER,
        "content-type",
        "content-length",
        "host",
    )
)


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or len(value) > 2048:
        raise ValueError("must be an http:// or https:// URL")
    return value


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    verify_tls: bool = True

    _url = field_validator("url")(_http_url)

    @field_validator("headers")
    @classmethod
    def _plain_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header in value.items():
            if not name or any(c in name + header for c in "\r\n") or ":" in name:
                raise ValueError(f"header {name!r} is not a valid HTTP header")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by opsjobs")
        return value


class SlackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    verify_tls: bool = True

    _url = field_validator("url")(_http_url)


class EmailConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    credential_id: Annotated[int | None, ResourceRef(ResourceKind.CREDENTIAL)] = None
    from_address: str = Field(min_length=3, max_length=255, pattern=r"^[^@\s]+@[^@\s]+$")
    to: list[str] = Field(min_length=1, max_length=100)
    verify_tls: bool = True

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or any(c.isspace() or c in ",;<>" for c in address):
                raise ValueError(f"{address!r} is not an email address")
        return value


CONFIG_MODELS: dict[ChannelType, type[BaseModel]] = {
    ChannelType.WEBHOOK: WebhookConfig,
    ChannelType.SLACK: SlackConfig,
    ChannelType.EMAIL: EmailConfig,
}


@dataclass(frozen=True)
class Message:
    """One event as every channel renders it."""

    event_id: int
    event: str
    severity: str
    title: str
    text: str
    subject: str
    occurred_at: datetime
    since: datetime | None
    link: str | None
    run_id: int | None = None
    schedule_id: int | None = None
    template_id: int | None = None
    job_type: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChannelTarget:
    """A channel ready to send to: its config, and its secrets decrypted just before use."""

    id: int
    name: str
    type: ChannelType
    config: dict[str, Any]
    secret: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def webhook_body(
    message: Message, *, delivery_id: int | None, rule: dict[str, Any] | None
) -> bytes:
    """The documented JSON body of a webhook delivery (compact, UTF-8)."""
    payload = {
        "id": message.event_id,
        "delivery_id": delivery_id,
        "event": message.event,
        "severity": message.severity,
        "title": message.title,
        "text": message.text,
        "subject": message.subject,
        "occurred_at": message.occurred_at.isoformat(),
        "since": message.since.isoformat() if message.since else None,
        "link": message.link,
        "run_id": message.run_id,
        "schedule_id": message.schedule_id,
        "template_id": message.template_id,
        "job_type": message.job_type,
        "rule": rule,
        "details": message.details,
    }
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` under the channel's secret."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def slack_body(message: Message) -> bytes:
    """Slack's incoming-webhook body: ``text`` for notifications (and Mattermost), blocks."""
    link = f"\n<{message.link}|Open in opsjobs>" if message.link else ""
    context = f"{message.event} · {message.severity}"
    if message.since:
        context += f" · since {message.since:%Y-%m-%d %H:%M:%S} UTC"
    payload = {
        "text": f"{message.title}\n{message.text}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{message.title}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": message.text[:2900] + link}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def email_message(message: Message, config: EmailConfig) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = f"[opsjobs {message.severity}] {message.title}"
    mail["From"] = config.from_address
    mail["To"] = ", ".join(config.to)
    mail["X-Opsjobs-Event"] = message.event
    lines = [message.text, "", f"event: {message.event} (id {message.event_id})"]
    if message.since:
        lines.append(f"since: {message.since:%Y-%m-%d %H:%M:%S} UTC")
    mail.set_content("\n".join(lines) + "\n")
    return mail
