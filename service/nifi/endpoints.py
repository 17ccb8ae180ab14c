"""How to reach a NiFi instance and which instances form a cluster.

Plain values only: secrets arrive already decrypted by the caller (the worker decrypts
them just before use) and are kept out of ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.db.nifi_models import AuthMode

API_SUFFIX = "/nifi-api"
# Stored URLs may point at the UI (``…/nifi``) or already at the API; both are accepted.
_STRIPPED_SUFFIXES = (API_SUFFIX, "/nifi")


def normalize_api_url(url: str) -> str:
    """Return the NiFi API root for ``url``: trailing ``/``, ``/nifi`` or ``/nifi-api``
    removed once, then ``/nifi-api`` appended (``https://h:8443/nifi`` →
    ``https://h:8443/nifi-api``)."""
    base = url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"NiFi URL must start with http:// or https://: {url!r}")
    for suffix in _STRIPPED_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base + API_SUFFIX


@dataclass(frozen=True, slots=True)
class TlsStore:
    """A keystore or truststore: a file or its content (PKCS#12, or PEM text), with the
    password that opens it (PKCS#12) or its private key (PEM)."""

    path: str | None = None
    content: bytes | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.content is None):
            raise ValueError("a TLS store is either a file or stored content")


@dataclass(frozen=True, slots=True)
class NifiEndpoint:
    """One NiFi instance (a cluster node) and how to authenticate against it.

    ``url`` is normalised to the API root on construction. Required fields per mode:
    ``username_password`` → username, password; ``client_certificate`` →
    client_cert_path (and client_key_path unless the key is in the certificate file) or
    a ``keystore``; ``oidc_client_credentials`` → oidc_discovery_url, oidc_client_id,
    oidc_client_secret (``oidc_scope``/``oidc_audience`` are sent when set).
    ``ca_bundle`` or ``truststore`` verifies the instance, and the identity provider
    unless ``oidc_ca_bundle`` is given. ``proxy_url`` routes requests through an HTTP
    proxy except to hosts the ``NO_PROXY`` environment variable names.
    """

    name: str
    url: str
    auth: AuthMode = AuthMode.NONE
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_cert_path: str | None = None
    client_key_path: str | None = None
    client_key_password: str | None = field(default=None, repr=False)
    oidc_discovery_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    oidc_ca_bundle: str | None = None
    oidc_scope: str | None = None
    oidc_audience: str | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None
    keystore: TlsStore | None = None
    truststore: TlsStore | None = None
    check_hostname: bool = True
    proxy_url: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", normalize_api_url(self.url))
        object.__setattr__(self, "auth", AuthMode(self.auth))
        if not self.name:
            raise ValueError("a NiFi endpoint needs a name")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("NiFi timeouts must be positive")
        missing = [name for name in _REQUIRED[self.auth] if not getattr(self, name)]
        if self.auth is AuthMode.CLIENT_CERTIFICATE and not (
            self.client_cert_path or self.keystore
        ):
            missing.append("client_cert_path or keystore")
        if missing:
            raise ValueError(
                f"NiFi endpoint {self.name!r} with auth {self.auth.value} needs "
                + ", ".join(missing)
            )

    @property
    def is_tls(self) -> bool:
        return self.url.startswith("https://")


_REQUIRED: dict[AuthMode, tuple[str, ...]] = {
    AuthMode.USERNAME_PASSWORD: ("username", "password"),
    AuthMode.CLIENT_CERTIFICATE: (),
    AuthMode.OIDC_CLIENT_CREDENTIALS: (
        "oidc_discovery_url",
        "oidc_client_id",
        "oidc_client_secret",
    ),
    AuthMode.NONE: (),
}


@dataclass(frozen=True, slots=True)
class ClusterMember:
    endpoint: NifiEndpoint
    is_primary: bool = False


@dataclass(frozen=True, slots=True)
class NifiCluster:
    """A NiFi cluster: its members, exactly one of them primary.

    NiFi's status snapshots are cluster-wide, so one answering member is enough; the
    primary is asked first.
    """

    id: str
    name: str
    members: tuple[ClusterMember, ...]

    def __post_init__(self) -> None:
        primaries = sum(1 for member in self.members if member.is_primary)
        if primaries != 1:
            raise ValueError(
                f"NiFi cluster {self.id!r} needs exactly one primary member, has {primaries}"
            )
        names = [member.endpoint.name for member in self.members]
        if len(set(names)) != len(names):
            raise ValueError(f"NiFi cluster {self.id!r} lists a member twice")

    @property
    def primary(self) -> NifiEndpoint:
        return next(member.endpoint for member in self.members if member.is_primary)

    def in_failover_order(self) -> tuple[NifiEndpoint, ...]:
        """The primary first, then the other members in their configured order."""
        others = tuple(m.endpoint for m in self.members if not m.is_primary)
        return (self.primary, *others)
