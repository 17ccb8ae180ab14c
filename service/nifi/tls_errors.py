"""Why a TLS connection to a node failed, in words an operator acts on.

A certificate that does not verify is named by OpenSSL's verify code; a server refusing
*our* certificate is harder: it sends an alert, or — over TLS 1.3, where the handshake
completes before the server looks at the client certificate — just closes the
connection, which the HTTP client reports as a disconnect. :func:`diagnose` then opens
one plain TLS connection and sends a request to see which it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

import aiohttp

from service.nifi.errors import NifiTlsError

UNKNOWN_CA = "unknown_ca"
HOSTNAME_MISMATCH = "hostname_mismatch"
CERTIFICATE_EXPIRED = "certificate_expired"
CERTIFICATE_NOT_YET_VALID = "certificate_not_yet_valid"
CLIENT_CERTIFICATE_REFUSED = "client_certificate_refused"
HANDSHAKE_FAILED = "handshake_failed"

# OpenSSL X509_V_ERR_* codes.
_VERIFY_KINDS: dict[int, str] = {
    2: UNKNOWN_CA,  # unable to get issuer certificate
    7: UNKNOWN_CA,  # certificate signature failure: an issuer of that name, not that key
    18: UNKNOWN_CA,  # self-signed certificate
    19: UNKNOWN_CA,  # self-signed certificate in chain
    20: UNKNOWN_CA,  # unable to get local issuer certificate
    21: UNKNOWN_CA,  # unable to verify the first certificate
    9: CERTIFICATE_NOT_YET_VALID,
    10: CERTIFICATE_EXPIRED,
    62: HOSTNAME_MISMATCH,
    64: HOSTNAME_MISMATCH,  # IP address mismatch
}
# Alerts a server sends when it does not accept the client's certificate.
_CLIENT_CERT_ALERTS = (
    "ALERT_BAD_CERTIFICATE",
    "ALERT_CERTIFICATE_REQUIRED",
    "ALERT_UNKNOWN_CA",
    "ALERT_CERTIFICATE_UNKNOWN",
    "ALERT_CERTIFICATE_EXPIRED",
    "ALERT_CERTIFICATE_REVOKED",
    "ALERT_UNSUPPORTED_CERTIFICATE",
    "ALERT_ACCESS_DENIED",
)
_WHAT: dict[str, str] = {
    UNKNOWN_CA: "the server's certificate is not signed by a CA this instance trusts",
    HOSTNAME_MISMATCH: "the server's certificate is not valid for this host name",
    CERTIFICATE_EXPIRED: "the server's certificate has expired",
    CERTIFICATE_NOT_YET_VALID: "the server's certificate is not valid yet",
    CLIENT_CERTIFICATE_REFUSED: "the server refused the client certificate",
    HANDSHAKE_FAILED: "the TLS handshake failed",
}
# Bytes read after the probe's request; an HTTP status line fits easily.
_PROBE_READ = 64


def tls_error(kind: str, detail: str) -> NifiTlsError:
    """The error of ``kind``, its detail (OpenSSL's words) in parentheses."""
    return NifiTlsError(f"TLS: {_WHAT[kind]} ({detail})", kind=kind)


def from_verify_error(error: ssl.SSLCertVerificationError) -> NifiTlsError:
    """Classify a failed verification of the server's certificate."""
    kind = _VERIFY_KINDS.get(error.verify_code, HANDSHAKE_FAILED)
    return tls_error(kind, error.verify_message or str(error))


def from_ssl_error(error: ssl.SSLError) -> NifiTlsError:
    """Classify an ``SSLError`` (an alert from the server, most often)."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return from_verify_error(error)
    reason = error.reason or ""
    if any(alert in reason for alert in _CLIENT_CERT_ALERTS):
        return tls_error(CLIENT_CERTIFICATE_REFUSED, f"alert {reason}")
    return tls_error(HANDSHAKE_FAILED, reason or str(error))


def from_client_error(exc: aiohttp.ClientSSLError) -> NifiTlsError:
    """Classify aiohttp's TLS error (the ``SSLError`` it wraps)."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        error: BaseException | None = exc.certificate_error
    elif isinstance(exc, aiohttp.ClientConnectorError):
        error = exc.os_error
    else:
        error = exc.__cause__
    return from_ssl_error(error if isinstance(error, ssl.SSLError) else ssl.SSLError(str(exc)))


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    host: str
    port: int
    context: ssl.SSLContext
    has_client_identity: bool
    wait: float  # seconds for the whole probe


async def diagnose(target: ProbeTarget) -> NifiTlsError | None:
    """Open one TLS connection and send a request; the TLS error when the handshake or
    the first read fails in a way only TLS explains, None when the server answers (the
    earlier failure was the network's)."""
    try:
        async with asyncio.timeout(target.wait):
            reader, writer = await asyncio.open_connection(
                target.host, target.port, ssl=target.context
            )
            try:
                writer.write(
                    b"HEAD / HTTP/1.1\r\nHost: " + target.host.encode() + b"\r\n"
                    b"Connection: close\r\n\r\n"
                )
                await writer.drain()
                answer = await reader.read(_PROBE_READ)
            finally:
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
    except ssl.SSLError as exc:
        return from_ssl_error(exc)
    except (ConnectionResetError, BrokenPipeError):
        answer = b""
    except (OSError, TimeoutError):
        return None
    if answer.startswith(b"HTTP/"):
        return None
    # The handshake completed and the server hung up without a word: what a server
    # does (TLS 1.3) when it does not accept the client certificate.
    detail = (
        "the server closed the connection after the handshake"
        if target.has_client_identity
        else "the server closed the connection after the handshake; "
        "no client certificate is configured"
    )
    return tls_error(CLIENT_CERTIFICATE_REFUSED, detail)
