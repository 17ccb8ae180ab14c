"""Keystores and truststores of NiFi instances, read from a file or from their stored
content (formats: :mod:`service.access.keystores`), handed to ``ssl``.

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

from cryptography.hazmat.primitives import serialization

from service.access.keystores import STORED, KeystoreError, certificates, identity_pem
from service.nifi.endpoints import TlsStore


def _read(store: TlsStore) -> tuple[bytes, str]:
    """The store's bytes and how to name it in an error."""
    if store.content is not None:
        return store.content, STORED
    assert store.path is not None
    try:
        return Path(store.path).read_bytes(), store.path
    except OSError as exc:
        raise KeystoreError(f"cannot read {store.path}: {exc.strerror or exc}") from None


def trusted_certificates_pem(store: TlsStore) -> str:
    """Every certificate of a truststore, as PEM text for ``cadata``."""
    data, name = _read(store)
    return "".join(
        cert.public_bytes(serialization.Encoding.PEM).decode()
        for cert in certificates(data, store.password, name)
    )


def load_identity(context: ssl.SSLContext, store: TlsStore) -> None:
    """Load the client certificate and key of ``store`` into ``context``."""
    data, name = _read(store)
    chain, key = identity_pem(data, store.password, name)
    with tempfile.TemporaryDirectory(prefix="opsjobs-tls-") as directory:
        cert_path = os.path.join(directory, "cert.pem")
        key_path = os.path.join(directory, "key.pem")
        for path, content in ((cert_path, chain), (key_path, key)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(content)
        context.load_cert_chain(certfile=cert_path, keyfile=key_path)
