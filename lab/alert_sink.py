"""Receivers of alerts: a webhook receiver that checks signatures and an SMTP sink.

``POST /hooks/<name>`` records a webhook call (headers, JSON body, and whether its
``X-Opsjobs-Signature`` matches the secret known for ``<name>``, checked here independently
of opsjobs' own code); ``GET /received`` lists every webhook call and mail received. The
SMTP sink (aiosmtpd, in this event loop) accepts any mail and records it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lab.http_server import LoopbackServer

# Seconds a signed call may be older than the receiver's clock (replay window).
SIGNATURE_TOLERANCE_S = 300


@dataclass
class ReceivedWebhook:
    name: str
    received_at: str
    headers: dict[str, str]
    body: Any
    signature_ok: bool | None


@dataclass
class ReceivedMail:
    received_at: str
    mail_from: str
    rcpt_to: list[str]
    subject: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)


def signature_matches(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does: HMAC-SHA256 over "<timestamp>.<raw body>", constant-time compare,
    and a timestamp within the tolerance."""
    try:
        age = abs(datetime.now(UTC).timestamp() - int(timestamp))
    except ValueError:
        return False
    expected = (
        "sha256="
        + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    )
    return age <= SIGNATURE_TOLERANCE_S and hmac.compare_digest(expected, header)


class _MailHandler:
    def __init__(self, sink: AlertSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else b""
        mail = message_from_bytes(raw, policy=policy.default)
        body = mail.get_body(preferencelist=("plain",))
        self._sink.mails.append(
            ReceivedMail(
                received_at=datetime.now(UTC).isoformat(),
                mail_from=envelope.mail_from or "",
                rcpt_to=list(envelope.rcpt_tos),
                subject=str(mail["Subject"] or ""),
                text=body.get_content() if body is not None else "",
                headers={key: str(value) for key, value in mail.items()},
            )
        )
        self._sink.mail_arrived.set()
        return "250 Message accepted for delivery"


class AlertSink:
    """The webhook receiver and the SMTP sink, on loopback ports (0: free ones)."""

    def __init__(self, *, host: str = "127.0.0.1", http_port: int = 0, smtp_port: int = 0) -> None:
        self.host = host
        self.smtp_port = smtp_port
        self.secrets: dict[str, str] = {}
        self.webhooks: list[ReceivedWebhook] = []
        self.mails: list[ReceivedMail] = []
        self.webhook_arrived = asyncio.Event()
        self.mail_arrived = asyncio.Event()
        # Answer webhooks with this status instead of 200 (a receiver that refuses).
        self.answer_status = 200
        app = Starlette(
            routes=[
                Route("/hooks/{name}", self._hook, methods=["POST"]),
                Route("/received", self._received, methods=["GET"]),
            ]
        )
        self.http = LoopbackServer(app, host=host, port=http_port)
        self._smtp: asyncio.Server | None = None

    def hook_url(self, name: str) -> str:
        return f"http://{self.host}:{self.http.port}/hooks/{name}"

    async def start(self) -> None:
        await self.http.start()
        loop = asyncio.get_running_loop()
        handler = _MailHandler(self)
        self._smtp = await loop.create_server(
            lambda: SMTP(handler, hostname="opsjobs-lab", loop=loop), self.host, self.smtp_port
        )
        self.smtp_port = self._smtp.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self.http.stop()
        if self._smtp is not None:
            self._smtp.close()
            await self._smtp.wait_closed()
            self._smtp = None

    async def __aenter__(self) -> AlertSink:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def _hook(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        raw = await request.body()
        secret = self.secrets.get(name)
        signature_ok = None
        if secret is not None:
            signature_ok = signature_matches(
                secret,
                request.headers.get("x-opsjobs-timestamp", ""),
                raw,
                request.headers.get("x-opsjobs-signature", ""),
            )
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        if self.answer_status >= 300:
            return JSONResponse({"ok": False}, status_code=self.answer_status)
        self.webhooks.append(
            ReceivedWebhook(
                name=name,
                received_at=datetime.now(UTC).isoformat(),
                headers=dict(request.headers),
                body=body,
                signature_ok=signature_ok,
            )
        )
        self.webhook_arrived.set()
        if signature_ok is False:
            return JSONResponse({"ok": False, "error": "bad signature"}, status_code=401)
        return JSONResponse({"ok": True, "received": len(self.webhooks)})

    async def _received(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "webhooks": [asdict(hook) for hook in self.webhooks],
                "mails": [asdict(mail) for mail in self.mails],
            }
        )
