"""Keystores and truststores as NiFi deployments keep them: PKCS#12 (``.p12``/``.pfx``,
NiFi's native format) or PEM, read from a file or from their stored content.

Blocking (file reads, key decryption): called from :func:`~service.nifi.tls.build_ssl_context`,
which runs in a thread. Python's ``ssl`` loads a client certificate only from a file,
so :func:`load_identity` writes the decrypted key and chain to a private temporary
directory, loads them and deletes them before returning.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from service.nifi.endpoints import TlsStore

PEM_MARKER = b"-----BEGIN "


class TlsStoreError(OSError):
    """A store that cannot be read: missing file, wrong password, no certificate.

    An ``OSError`` like the ``ssl`` module's own errors for PEM files, so callers treat
    every local TLS set-up problem alike."""


def _read(store: TlsStore) -> bytes:
    if store.content is not None:
        return store.content
    assert store.path is not None
    try:
        return Path(store.path).read_bytes()
    except OSError as exc:
        raise TlsStoreError(f"cannot read {store.path}: {exc.strerror or exc}") from None


def _name(store: TlsStore) -> str:
    return store.path or "the stored keystore"


def _password(store: TlsStore) -> bytes | None:
    return store.password.encode() if store.password else None


def _pkcs12(store: TlsStore, data: bytes) -> pkcs12.PKCS12KeyAndCertificates:
    try:
        return pkcs12.load_pkcs12(data, _password(store))
    except ValueError:
        raise TlsStoreError(
            f"{_name(store)} is neither PEM nor a PKCS#12 store this password opens"
        ) from None


def _pem_certificates(store: TlsStore, data: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TlsStoreError(f"{_name(store)} holds no PEM certificate") from None


def trusted_certificates_pem(store: TlsStore) -> str:
    """Every certificate of a truststore, as PEM text for ``cadata``."""
    data = _read(store)
    if PEM_MARKER in data:
        certificates = _pem_certificates(store, data)
    else:
        bundle = _pkcs12(store, data)
        certificates = [item.certificate for item in bundle.additional_certs]
        if bundle.cert is not None:
            certificates.insert(0, bundle.cert.certificate)
    if not certificates:
        raise TlsStoreError(f"{_name(store)} holds no certificate")
    return "".join(cert.public_bytes(serialization.Encoding.PEM).decode() for cert in certificates)


def _identity_pem(store: TlsStore) -> tuple[bytes, bytes]:
    """(certificate chain, unencrypted private key), both PEM."""
    data = _read(store)
    if PEM_MARKER in data:
        chain = _pem_certificates(store, data)
        try:
            key = serialization.load_pem_private_key(data, _password(store))
        except (ValueError, TypeError):
            raise TlsStoreError(
                f"{_name(store)} holds no private key this password opens"
            ) from None
    else:
        bundle = _pkcs12(store, data)
        if bundle.key is None or bundle.cert is None:
            raise TlsStoreError(f"{_name(store)} holds no private key with its certificate")
        key = bundle.key
        chain = [bundle.cert.certificate, *(c.certificate for c in bundle.additional_certs)]
    certificates = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificates, key_pem


def load_identity(context: ssl.SSLContext, store: TlsStore) -> None:
    """Load the client certificate and key of ``store`` into ``context``."""
    certificates, key = _identity_pem(store)
    with tempfile.TemporaryDirectory(prefix="opsjobs-tls-") as directory:
        cert_path = os.path.join(directory, "cert.pem")
        key_path = os.path.join(directory, "key.pem")
        for path, content in ((cert_path, certificates), (key_path, key)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(content)
        context.load_cert_chain(certfile=cert_path, keyfile=key_path)


def check_store(store: TlsStore, *, needs_key: bool) -> None:
    """Raise :class:`TlsStoreError` unless ``store`` opens (and, with ``needs_key``,
    holds a private key with its certificate)."""
    if needs_key:
        _identity_pem(store)
    else:
        trusted_certificates_pem(store)
