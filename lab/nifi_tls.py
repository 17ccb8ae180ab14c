"""A throwaway certificate authority for the lab: server and client certificates on
loopback, so TLS and mutual TLS are exercised for real.

Everything here is blocking (key generation, file writes): call it from a thread in
async code.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=2)


@dataclass(frozen=True, slots=True)
class LabPki:
    """Paths of the PEM files :func:`generate_pki` wrote."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_key_password: str | None = field(default=None, repr=False)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, password: str | None) -> None:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    ca_key: ec.EllipticCurvePrivateKey,
    usage: x509.ObjectIdentifier,
    alt_names: list[x509.GeneralName],
    *,
    expired: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    # An expired certificate ended a day ago; a valid one started five minutes ago.
    start = now - (datetime.timedelta(days=3) if expired else datetime.timedelta(minutes=5))
    end = now - datetime.timedelta(days=1) if expired else now + _VALIDITY
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def generate_pki(
    directory: Path,
    *,
    client_key_password: str | None = None,
    hostnames: tuple[str, ...] = ("localhost",),
    addresses: tuple[str, ...] = ("127.0.0.1",),
    client_name: str = "opsjobs",
    ca_common_name: str = "opsjobs lab CA",
    server_expired: bool = False,
) -> LabPki:
    """Write a CA, a server certificate for ``hostnames``/``addresses`` (expired on
    request) and a client certificate (key optionally encrypted) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = _key()
    ca_name = _name(ca_common_name)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in hostnames]
    alt_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
    server_key = _key()
    server_cert = _issue(
        hostnames[0] if hostnames else addresses[0],
        server_key,
        ca_name,
        ca_key,
        ExtendedKeyUsageOID.SERVER_AUTH,
        alt_names,
        expired=server_expired,
    )
    client_key = _key()
    client_cert = _issue(
        client_name, client_key, ca_name, ca_key, ExtendedKeyUsageOID.CLIENT_AUTH, []
    )
    pki = LabPki(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
        client_key_password=client_key_password,
    )
    _write_cert(pki.ca_cert, ca_cert)
    _write_cert(pki.server_cert, server_cert)
    _write_key(pki.server_key, server_key, None)
    _write_cert(pki.client_cert, client_cert)
    _write_key(pki.client_key, client_key, client_key_password)
    return pki


@dataclass(frozen=True, slots=True)
class LabStores:
    """PKCS#12 files made from a :class:`LabPki`: the client's keystore (key,
    certificate, CA) and a truststore holding the CA certificate."""

    keystore: Path
    truststore: Path
    password: str = field(repr=False)


def write_pkcs12(pki: LabPki, directory: Path, password: str) -> LabStores:
    """Write ``keystore.p12`` and ``truststore.p12`` (both under ``password``), as
    NiFi's toolkit makes them."""
    directory.mkdir(parents=True, exist_ok=True)
    key_password = pki.client_key_password.encode() if pki.client_key_password else None
    key = serialization.load_pem_private_key(pki.client_key.read_bytes(), key_password)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError("the lab client key is an EC key")
    client = x509.load_pem_x509_certificate(pki.client_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    encryption = serialization.BestAvailableEncryption(password.encode())
    stores = LabStores(directory / "keystore.p12", directory / "truststore.p12", password)
    stores.keystore.write_bytes(
        pkcs12.serialize_key_and_certificates(b"opsjobs", key, client, [ca], encryption)
    )
    stores.truststore.write_bytes(
        pkcs12.serialize_key_and_certificates(b"ca", None, None, [ca], encryption)
    )
    return stores
