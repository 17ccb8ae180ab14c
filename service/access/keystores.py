"""What a keystore or truststore holds: PKCS#12 (``.p12``/``.pfx``, NiFi's native
format) or PEM, opened with its password.

A ``tls_keystore`` credential stores one (``keystore``: PEM text, or base64 of a PKCS#12
file); it is opened when the credential is saved, so a wrong password is refused then.
Reading stores from files and handing them to ``ssl`` is the NiFi client's
(:mod:`service.nifi.tls_stores`).
"""

from __future__ import annotations

import base64
import binascii

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

PEM_MARKER = b"-----BEGIN "
STORED = "the stored keystore"


class KeystoreError(OSError):
    """A store that cannot be opened: not a store, wrong password, no certificate.

    An ``OSError`` like the ``ssl`` module's own errors for PEM files, so callers treat
    every local TLS set-up problem alike."""


def keystore_bytes(text: str) -> bytes:
    """A stored keystore's bytes: PEM text as it is, anything else base64 (PKCS#12)."""
    if PEM_MARKER.decode() in text:
        return text.encode()
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise KeystoreError("a keystore is PEM text or base64 of a PKCS#12 file") from None


def _password(password: str | None) -> bytes | None:
    return password.encode() if password else None


def _pkcs12(data: bytes, password: str | None, name: str) -> pkcs12.PKCS12KeyAndCertificates:
    try:
        return pkcs12.load_pkcs12(data, _password(password))
    except ValueError:
        raise KeystoreError(
            f"{name} is neither PEM nor a PKCS#12 store this password opens"
        ) from None


def _pem_certificates(data: bytes, name: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise KeystoreError(f"{name} holds no PEM certificate") from None


def certificates(data: bytes, password: str | None, name: str = STORED) -> list[x509.Certificate]:
    """Every certificate of a store (its own first, then the chain or trusted ones)."""
    if PEM_MARKER in data:
        found = _pem_certificates(data, name)
    else:
        bundle = _pkcs12(data, password, name)
        found = [item.certificate for item in bundle.additional_certs]
        if bundle.cert is not None:
            found.insert(0, bundle.cert.certificate)
    if not found:
        raise KeystoreError(f"{name} holds no certificate")
    return found


def identity_pem(data: bytes, password: str | None, name: str = STORED) -> tuple[bytes, bytes]:
    """A keystore's certificate chain and its private key (unencrypted), both PEM."""
    if PEM_MARKER in data:
        chain = _pem_certificates(data, name)
        try:
            key = serialization.load_pem_private_key(data, _password(password))
        except (ValueError, TypeError):
            raise KeystoreError(f"{name} holds no private key this password opens") from None
    else:
        bundle = _pkcs12(data, password, name)
        if bundle.key is None or bundle.cert is None:
            raise KeystoreError(f"{name} holds no private key with its certificate")
        key = bundle.key
        chain = [bundle.cert.certificate, *(c.certificate for c in bundle.additional_certs)]
    pem_chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem_chain, key_pem


def check_keystore(text: str, password: str | None) -> None:
    """Raise :class:`KeystoreError` unless ``text`` is a store ``password`` opens and
    that holds at least one certificate."""
    certificates(keystore_bytes(text), password)
