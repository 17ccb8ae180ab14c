"""Sending one message to one channel: HTTP for webhooks and Slack, SMTP for email.

A send never raises: it returns what the receiver answered (status code and the start of
its body) or why it could not be reached, for the delivery's attempt record.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiosmtplib
import httpx

from service.access.credentials import load_credential
from service.db.engine import SessionFactory
from service.db.notify_models import ChannelType, NotificationChannel
from service.notify.channels import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ChannelTarget,
    EmailConfig,
    Message,
    email_message,
    signature,
    slack_body,
    webhook_body,
)
from service.secrets import KeyStore

RESPONSE_EXCERPT = 500
USER_AGENT = "opsjobs-notify/1"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    response: str | None = None
    duration_ms: int = 0


async def channel_target(
    sessions: SessionFactory, keys: KeyStore, channel: NotificationChannel
) -> ChannelTarget:
    """The channel with its secrets decrypted (just before a send)."""
    secret = None
    if channel.key_id is not None and channel.ciphertext is not None:
        secret = json.loads(await keys.decrypt(channel.key_id, channel.ciphertext)).get("secret")
    username = password = None
    credential_id = channel.config.get("credential_id")
    if channel.type == ChannelType.EMAIL.value and credential_id is not None:
        credential = await load_credential(sessions, keys, int(credential_id))
        username, password = credential.username, credential.password
    return ChannelTarget(
        id=channel.id,
        name=channel.name,
        type=ChannelType(channel.type),
        config=dict(channel.config),
        secret=secret,
        username=username,
        password=password,
    )


def seal_secret(keys: KeyStore, secret: str) -> tuple[str, bytes]:
    """A webhook secret as (key id, ciphertext), like credentials."""
    return keys.encrypt(json.dumps({"secret": secret}).encode())


class Senders:
    """HTTP clients (TLS verified, and not, per channel setting) for one pass of sends."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        headers = {"User-Agent": USER_AGENT}
        self._verified = httpx.AsyncClient(timeout=timeout, headers=headers, verify=True)
        self._unverified = httpx.AsyncClient(timeout=timeout, headers=headers, verify=False)

    async def __aenter__(self) -> Senders:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._verified.aclose()
        await self._unverified.aclose()

    async def send(
        self,
        target: ChannelTarget,
        message: Message,
        *,
        delivery_id: int | None,
        rule: dict[str, Any] | None,
    ) -> SendResult:
        started = time.perf_counter()
        try:
            if target.type is ChannelType.EMAIL:
                result = await self._email(target, message)
            else:
                result = await self._http(target, message, delivery_id=delivery_id, rule=rule)
        except (httpx.HTTPError, aiosmtplib.SMTPException, OSError, ValueError) as exc:
            result = SendResult(ok=False, error=f"{type(exc).__name__}: {exc}".rstrip(": "))
        elapsed = int((time.perf_counter() - started) * 1000)
        return SendResult(result.ok, result.status_code, result.error, result.response, elapsed)

    async def _http(
        self,
        target: ChannelTarget,
        message: Message,
        *,
        delivery_id: int | None,
        rule: dict[str, Any] | None,
    ) -> SendResult:
        headers = {"Content-Type": "application/json"}
        if target.type is ChannelType.WEBHOOK:
            body = webhook_body(message, delivery_id=delivery_id, rule=rule)
            timestamp = str(int(time.time()))
            headers.update(target.config.get("headers") or {})
            headers[EVENT_HEADER] = message.event
            headers[TIMESTAMP_HEADER] = timestamp
            if delivery_id is not None:
                headers[DELIVERY_HEADER] = str(delivery_id)
            if target.secret:
                headers[SIGNATURE_HEADER] = signature(target.secret, timestamp, body)
        else:
            body = slack_body(message)
        client = self._verified if target.config.get("verify_tls", True) else self._unverified
        response = await client.post(target.config["url"], content=body, headers=headers)
        excerpt = response.text[:RESPONSE_EXCERPT]
        if response.is_success:
            return SendResult(ok=True, status_code=response.status_code, response=excerpt)
        return SendResult(
            ok=False,
            status_code=response.status_code,
            error=f"HTTP {response.status_code}",
            response=excerpt,
        )

    async def _email(self, target: ChannelTarget, message: Message) -> SendResult:
        config = EmailConfig.model_validate(target.config)
        errors, reply = await aiosmtplib.send(
            email_message(message, config),
            hostname=config.host,
            port=config.port,
            username=target.username,
            password=target.password,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            validate_certs=config.verify_tls,
            timeout=self._timeout,
        )
        if errors:
            refused = ", ".join(
                f"{address}: {answer.message}" for address, answer in errors.items()
            )
            return SendResult(ok=False, error=f"refused recipients: {refused}", response=reply)
        return SendResult(ok=True, response=reply[:RESPONSE_EXCERPT])
