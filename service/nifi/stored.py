"""NiFi clusters and instances as stored, and their conversion into client endpoints.

Rows are read into plain frozen values that carry credential ids only; secrets are
decrypted by :func:`build_cluster` / :func:`build_endpoint` just before a call
(invariant 7), once per credential and call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from service.access.credentials import DecryptedCredential, load_credential
from service.access.keystores import KeystoreError, keystore_bytes
from service.db.engine import SessionFactory
from service.db.nifi_models import AuthMode, NifiClusterRow, NifiInstanceRow
from service.db.security_models import CredentialType
from service.errors import InvalidInput, TargetResolutionError
from service.nifi.endpoints import ClusterMember, NifiCluster, NifiEndpoint, TlsStore
from service.secrets import KeyStore

# Modes whose secret comes from a stored credential, and the credential types they take.
# (A keystore's or truststore's password comes with it, from a tls_keystore credential.)
CREDENTIAL_TYPES: dict[AuthMode, tuple[CredentialType, ...]] = {
    AuthMode.USERNAME_PASSWORD: (CredentialType.USERNAME_PASSWORD,),
    # username = OIDC client id, password = client secret
    AuthMode.OIDC_CLIENT_CREDENTIALS: (CredentialType.USERNAME_PASSWORD,),
    # password = the private key's passphrase (optional)
    AuthMode.CLIENT_CERTIFICATE: (CredentialType.USERNAME_PASSWORD, CredentialType.TOKEN),
    AuthMode.NONE: (),
}
# Cluster ids are PostgreSQL integers; anything else cannot name a cluster.
MAX_ID = 2**31 - 1
CREDENTIAL_REQUIRED = frozenset({AuthMode.USERNAME_PASSWORD, AuthMode.OIDC_CLIENT_CREDENTIALS})


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """An instance row without its secrets."""

    id: int
    name: str
    url: str
    auth_mode: AuthMode
    credential_id: int | None
    client_cert_path: str | None
    client_key_path: str | None
    oidc_discovery_url: str | None
    oidc_scope: str | None
    oidc_audience: str | None
    verify_tls: bool
    ca_bundle: str | None
    keystore_path: str | None
    keystore_credential_id: int | None
    truststore_path: str | None
    truststore_credential_id: int | None
    check_hostname: bool
    proxy_url: str | None
    connect_timeout: float
    read_timeout: float
    is_primary: bool

    @classmethod
    def of(cls, row: NifiInstanceRow) -> StoredInstance:
        """The stored values of ``row``."""
        values = {name: getattr(row, name) for name in _COLUMNS}
        return cls(auth_mode=AuthMode(row.auth_mode), **values)


_COLUMNS = tuple(name for name in StoredInstance.__dataclass_fields__ if name != "auth_mode")


@dataclass(frozen=True, slots=True)
class StoredCluster:
    id: int
    name: str
    members: tuple[StoredInstance, ...]


async def load_clusters(
    sessions: SessionFactory, cluster_ids: Sequence[int] | None
) -> tuple[list[StoredCluster], list[int]]:
    """The clusters named by ``cluster_ids`` in that order (every cluster by name when
    None), each with its members primary first; and the ids that do not exist."""
    async with sessions() as session:
        query = select(NifiClusterRow).order_by(NifiClusterRow.name, NifiClusterRow.id)
        if cluster_ids is not None:
            query = query.where(NifiClusterRow.id.in_(cluster_ids))
        clusters = list(await session.scalars(query))
        members = list(
            await session.scalars(
                select(NifiInstanceRow)
                .where(NifiInstanceRow.cluster_id.in_([row.id for row in clusters]))
                .order_by(NifiInstanceRow.is_primary.desc(), NifiInstanceRow.name)
            )
        )
    by_cluster: dict[int, list[StoredInstance]] = {row.id: [] for row in clusters}
    for member in members:
        assert member.cluster_id is not None
        by_cluster[member.cluster_id].append(StoredInstance.of(member))
    found = {
        row.id: StoredCluster(id=row.id, name=row.name, members=tuple(by_cluster[row.id]))
        for row in clusters
    }
    if cluster_ids is None:
        return list(found.values()), []
    missing = [cluster_id for cluster_id in cluster_ids if cluster_id not in found]
    ordered = [
        found[cluster_id] for cluster_id in dict.fromkeys(cluster_ids) if cluster_id in found
    ]
    return ordered, missing


async def resolve_clusters(
    sessions: SessionFactory, cluster_ids: Sequence[str] | None
) -> list[StoredCluster]:
    """The clusters a NiFi job names (every cluster when None).

    An unknown id fails the run (invariant 9): a check that silently skipped a cluster
    would report green for something it never looked at."""
    ids: list[int] | None = None
    unknown: list[str] = []
    if cluster_ids is not None:
        ids = []
        for value in cluster_ids:
            try:
                number = int(value)
            except ValueError:
                number = 0
            if 0 < number <= MAX_ID:
                ids.append(number)
            else:
                unknown.append(value)
    clusters, missing = await load_clusters(sessions, ids)
    unknown.extend(str(cluster_id) for cluster_id in missing)
    if unknown:
        raise TargetResolutionError(
            f"unknown NiFi cluster id(s): {', '.join(unknown)}",
            details={"unknown_cluster_ids": unknown},
        )
    return clusters


def tls_store(path: str | None, credential: DecryptedCredential | None) -> TlsStore | None:
    """A keystore or truststore: the credential's stored store, else the file at
    ``path`` opened with the credential's password (None when neither is set)."""
    password = credential.password if credential is not None else None
    if credential is not None and credential.keystore is not None:
        return TlsStore(content=keystore_bytes(credential.keystore), password=password)
    if path:
        return TlsStore(path=path, password=password)
    return None


@dataclass(frozen=True, slots=True)
class InstanceSecrets:
    """The decrypted credentials an instance refers to."""

    auth: DecryptedCredential | None = None
    keystore: DecryptedCredential | None = None
    truststore: DecryptedCredential | None = None


def endpoint_of(instance: StoredInstance, secrets: InstanceSecrets) -> NifiEndpoint:
    """The client endpoint of ``instance`` with the decrypted ``secrets``.

    Raises :class:`InvalidInput` when the instance lacks what its auth mode needs."""
    credential = secrets.auth
    username = password = key_password = client_id = client_secret = None
    if credential is not None:
        if instance.auth_mode is AuthMode.USERNAME_PASSWORD:
            username, password = credential.username, credential.password
        elif instance.auth_mode is AuthMode.OIDC_CLIENT_CREDENTIALS:
            client_id, client_secret = credential.username, credential.password
        elif instance.auth_mode is AuthMode.CLIENT_CERTIFICATE:
            key_password = credential.password or credential.token
    try:
        return NifiEndpoint(
            name=instance.name,
            url=instance.url,
            auth=instance.auth_mode,
            username=username,
            password=password,
            client_cert_path=instance.client_cert_path,
            client_key_path=instance.client_key_path,
            client_key_password=key_password,
            oidc_discovery_url=instance.oidc_discovery_url,
            oidc_client_id=client_id,
            oidc_client_secret=client_secret,
            oidc_scope=instance.oidc_scope,
            oidc_audience=instance.oidc_audience,
            verify_tls=instance.verify_tls,
            ca_bundle=instance.ca_bundle,
            keystore=tls_store(instance.keystore_path, secrets.keystore),
            truststore=tls_store(instance.truststore_path, secrets.truststore),
            check_hostname=instance.check_hostname,
            proxy_url=instance.proxy_url,
            connect_timeout=instance.connect_timeout,
            read_timeout=instance.read_timeout,
        )
    except (ValueError, KeystoreError) as exc:
        raise InvalidInput(str(exc)) from None


class CredentialCache:
    """Decrypts each credential once for the duration of one call."""

    def __init__(self, sessions: SessionFactory, keys: KeyStore) -> None:
        self._sessions = sessions
        self._keys = keys
        self._loaded: dict[int, DecryptedCredential] = {}

    async def get(self, credential_id: int | None) -> DecryptedCredential | None:
        """The decrypted credential (None for None); NotFound when gone or inactive."""
        if credential_id is None:
            return None
        credential = self._loaded.get(credential_id)
        if credential is None:
            credential = await load_credential(self._sessions, self._keys, credential_id)
            self._loaded[credential_id] = credential
        return credential


async def build_endpoint(instance: StoredInstance, credentials: CredentialCache) -> NifiEndpoint:
    """Decrypt the instance's credentials and make its endpoint."""
    secrets = InstanceSecrets(
        auth=await credentials.get(instance.credential_id),
        keystore=await credentials.get(instance.keystore_credential_id),
        truststore=await credentials.get(instance.truststore_credential_id),
    )
    return endpoint_of(instance, secrets)


async def build_cluster(cluster: StoredCluster, credentials: CredentialCache) -> NifiCluster:
    """Decrypt the members' credentials and make the client's cluster value.

    Raises :class:`InvalidInput` for a cluster without members or a member lacking what
    its auth mode needs, :class:`~service.errors.NotFound` for a missing credential."""
    if not cluster.members:
        raise InvalidInput(f"NiFi cluster {cluster.name!r} has no instances")
    members = [
        ClusterMember(await build_endpoint(member, credentials), is_primary=member.is_primary)
        for member in cluster.members
    ]
    try:
        return NifiCluster(id=str(cluster.id), name=cluster.name, members=tuple(members))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
