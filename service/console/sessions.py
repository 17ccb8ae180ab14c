"""Console sessions: a pasted API token becomes a server-side session held in Redis.

The browser holds only a random session id in an HttpOnly cookie; Redis holds the token's
SHA-256 (what the database already stores) and the session's CSRF token. Each request
looks the digest up like a bearer token, so a revoked token ends its sessions at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from service.keyspace import keyspace_of

COOKIE = "opsjobs_session"
# Pre-session CSRF for the sign-in form itself (double submit: cookie and form field).
SIGN_IN_COOKIE = "opsjobs_sign_in"
CSRF_FIELD = "csrf_token"
# A session lasts this long after its last request (sliding).
IDLE_SECONDS = 12 * 3600


@dataclass(frozen=True)
class ConsoleSession:
    token_digest: str
    csrf: str


def _key(redis: Redis, session_id: str) -> str:
    # Only a hash of the cookie value is stored, so a Redis dump holds no usable cookie.
    digest = hashlib.sha256(session_id.encode()).hexdigest()
    return keyspace_of(redis).console_session(digest)


async def open_session(redis: Redis, token_digest: str) -> str:
    """Store a new session for the token; returns the id for the cookie."""
    session_id = secrets.token_urlsafe(32)
    payload = json.dumps({"digest": token_digest, "csrf": secrets.token_urlsafe(32)})
    await redis.set(_key(redis, session_id), payload, ex=IDLE_SECONDS)
    return session_id


async def load_session(redis: Redis, session_id: str) -> ConsoleSession | None:
    """The session behind a cookie value, its idle time restarted; None when unknown."""
    raw = cast(bytes | str | None, await redis.getex(_key(redis, session_id), ex=IDLE_SECONDS))
    if raw is None:
        return None
    data = json.loads(raw)
    return ConsoleSession(token_digest=data["digest"], csrf=data["csrf"])


async def close_session(redis: Redis, session_id: str) -> None:
    await redis.delete(_key(redis, session_id))


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted CSRF token with the expected one."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
