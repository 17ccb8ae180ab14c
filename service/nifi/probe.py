"""One-call connection test of a NiFi instance: reachability, version, authentication.

Used by ``POST /api/nifi/instances/{id}/test``. It runs in the API process with a
client pool of its own, closed when the probe ends, and tries once: an operator
testing a node wants the answer now, not after the retries a job would make.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from service.db.nifi_models import AuthMode
from service.nifi.endpoints import NifiEndpoint
from service.nifi.errors import (
    NifiAuthError,
    NifiNodeNotReady,
    NifiRequestError,
    NifiTlsSetupError,
    NifiUnavailable,
)
from service.nifi.pool import NifiClientPool
from service.nifi.resources import RetryPolicy

PROBE_RETRY = RetryPolicy(attempts=1)
HTTP_CONFLICT = 409


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """``reachable``/``authenticated`` are None when the probe could not tell."""

    auth_mode: AuthMode
    reachable: bool | None
    authenticated: bool | None
    version: str | None = None
    title: str | None = None
    error: str | None = None
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.reachable and self.authenticated and self.version)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reachable": self.reachable,
            "version": self.version,
            "title": self.title,
            "auth": {"mode": self.auth_mode.value, "ok": self.authenticated},
            "error": self.error,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }


def not_probed(auth_mode: AuthMode, error: str) -> ProbeReport:
    """The report when the instance could not even be configured (missing credential…)."""
    return ProbeReport(auth_mode=auth_mode, reachable=None, authenticated=None, error=error)


async def probe_instance(endpoint: NifiEndpoint) -> ProbeReport:
    """``GET /flow/about`` once, logging in first when the auth mode needs a token."""
    started = time.perf_counter()

    def report(**values: Any) -> ProbeReport:
        elapsed = (time.perf_counter() - started) * 1000
        return ProbeReport(auth_mode=endpoint.auth, elapsed_ms=elapsed, **values)

    async with NifiClientPool(retry=PROBE_RETRY) as pool:
        try:
            about = await pool.get(endpoint).about()
        except NifiAuthError as exc:
            return report(reachable=True, authenticated=False, error=exc.message)
        except NifiNodeNotReady as exc:
            # A 409 is the node itself, its flow still loading; a 503 is as often a proxy
            # in front of a node that is down.
            reachable = exc.status_code == HTTP_CONFLICT
            return report(reachable=reachable, authenticated=None, error=exc.message)
        except NifiUnavailable as exc:
            return report(reachable=False, authenticated=None, error=exc.message)
        except NifiRequestError as exc:
            # NiFi answered past authentication, but not with the about document: most
            # often a URL that is not a NiFi API root.
            return report(reachable=True, authenticated=None, error=exc.message)
        except NifiTlsSetupError as exc:
            # Local set-up: certificate, key or store missing, unreadable or wrong.
            return report(reachable=None, authenticated=False, error=exc.message)
    return report(reachable=True, authenticated=True, version=about.version, title=about.title)
