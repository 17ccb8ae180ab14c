"""TLS contexts for NiFi and identity-provider connections, built once per distinct setting.

Building a context reads certificate files and stores, so it runs in a thread; instances
that share a CA bundle or truststore share the context. Trust comes from ``ca_bundle``
(PEM file) or a truststore; the client identity from PEM files or a keystore.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

from service.db.nifi_models import AuthMode
from service.nifi.endpoints import NifiEndpoint, TlsStore
from service.nifi.tls_stores import load_identity, trusted_certificates_pem


@dataclass(frozen=True, slots=True)
class TlsSettings:
    verify: bool = True
    ca_bundle: str | None = None
    check_hostname: bool = True
    cert_path: str | None = None
    key_path: str | None = None
    key_password: str | None = field(default=None, repr=False)
    keystore: TlsStore | None = None
    truststore: TlsStore | None = None

    @property
    def has_client_identity(self) -> bool:
        return bool(self.cert_path or self.keystore)

    @classmethod
    def for_instance(cls, endpoint: NifiEndpoint) -> TlsSettings:
        """Settings to reach the instance itself (with its client certificate if any)."""
        uses_cert = endpoint.auth is AuthMode.CLIENT_CERTIFICATE
        return cls(
            verify=endpoint.verify_tls,
            ca_bundle=endpoint.ca_bundle,
            check_hostname=endpoint.check_hostname,
            cert_path=endpoint.client_cert_path if uses_cert else None,
            key_path=endpoint.client_key_path if uses_cert else None,
            key_password=endpoint.client_key_password if uses_cert else None,
            keystore=endpoint.keystore if uses_cert else None,
            truststore=endpoint.truststore,
        )

    @classmethod
    def for_identity_provider(cls, endpoint: NifiEndpoint) -> TlsSettings:
        """Settings to reach the endpoint's OIDC provider."""
        return cls(
            verify=endpoint.verify_tls,
            ca_bundle=endpoint.oidc_ca_bundle or endpoint.ca_bundle,
            check_hostname=endpoint.check_hostname,
            truststore=None if endpoint.oidc_ca_bundle else endpoint.truststore,
        )


def build_ssl_context(settings: TlsSettings) -> ssl.SSLContext:
    """Build a client context from ``settings`` (blocking: reads files)."""
    if settings.verify:
        context = ssl.create_default_context(
            cafile=settings.ca_bundle,
            cadata=trusted_certificates_pem(settings.truststore) if settings.truststore else None,
        )
        context.check_hostname = settings.check_hostname
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings.cert_path:
        # Never None: without a password OpenSSL prompts on the terminal for an encrypted
        # key, which blocks a worker; an empty one makes it fail with an error instead.
        context.load_cert_chain(
            certfile=settings.cert_path,
            keyfile=settings.key_path,
            password=settings.key_password or "",
        )
    elif settings.keystore is not None:
        load_identity(context, settings.keystore)
    return context


class TlsContextCache:
    """One :class:`ssl.SSLContext` per distinct :class:`TlsSettings`."""

    def __init__(self) -> None:
        self._contexts: dict[TlsSettings, ssl.SSLContext] = {}
        self._lock = asyncio.Lock()

    async def get(self, settings: TlsSettings) -> ssl.SSLContext:
        """The context for ``settings``, built in a thread on first use. Raises
        ``OSError`` (``ssl.SSLError``, ``KeystoreError``…) when it cannot be."""
        context = self._contexts.get(settings)
        if context is not None:
            return context
        async with self._lock:
            context = self._contexts.get(settings)
            if context is None:
                context = await asyncio.to_thread(build_ssl_context, settings)
                self._contexts[settings] = context
            return context
