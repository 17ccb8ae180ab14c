"""A NiFi REST simulator on loopback, for tests, benchmarks and ``make run``.

One server on one port serves any number of simulated instances, each under its own
path prefix: instance ``a`` has the API root ``http://127.0.0.1:PORT/i/a/nifi-api``.
An instance can also get a dedicated server (plain, TLS, or TLS demanding a client
certificate) whose stop makes connections to it be refused. An OIDC provider
(Keycloak-like paths, client-credentials grant) lives on the shared server.

Instances added with :meth:`NifiLab.add_cluster` form a :class:`~lab.nifi_cluster.LabCluster`:
they answer ``/flow/cluster/summary`` and ``/controller/cluster``, merge their queues
(and per-node snapshots with ``nodewise=true``) over the connected members, and a member
that is not connected answers from its own share only.

Everything is mutable at runtime: queue depths and counters through the instance's
:class:`~lab.nifi_topology.LabFlow`, latency, injected failures, node states, bulletins and
token expiry through :class:`LabInstance` and :class:`NifiLab`, and over HTTP through the
lab's control endpoints (``/lab/nodes``, see :mod:`lab.nifi_control`).

Usage::

    async with NifiLab() as lab:
        node = lab.add_instance("a", users={"admin": "secret"})
        node.flow.add_connection("q", flow_files=1234, bytes=5 * 1024**2)
        ...  # NifiEndpoint(name="a", url=node.url, auth=..., ...)
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from lab.http_server import DEFAULT_KEEP_ALIVE_SECONDS, LoopbackServer, ServerTls
from lab.nifi_app import build_app
from lab.nifi_cluster import LabCluster
from lab.nifi_instance import DEFAULT_VERSION, FailureMode, LabInstance, NodeState
from lab.nifi_oidc import OidcClient
from lab.nifi_topology import LabFlow

__all__ = [
    "FailureMode",
    "LabCluster",
    "LabFlow",
    "LabInstance",
    "NifiLab",
    "NodeState",
    "ServerTls",
]

OIDC_REALM = "lab"
_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True, slots=True)
class LabToken:
    instance: str | None  # the instance that issued it; None for provider tokens
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    return f"{header}.{payload}.{_b64(secrets.token_bytes(32))}"


class NifiLab:
    """The simulator. ``async with NifiLab() as lab`` starts and stops it."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token_lifetime: float = 12 * 3600.0,
        oidc_token_lifetime: float = 300.0,
        keep_alive: float = DEFAULT_KEEP_ALIVE_SECONDS,
    ) -> None:
        """``keep_alive``: seconds the servers keep an idle connection open (a test
        counting a client's connections sets it longer than it looks)."""
        self.instances: dict[str, LabInstance] = {}
        self.clusters: dict[str, LabCluster] = {}
        self.token_lifetime = token_lifetime
        self.oidc_token_lifetime = oidc_token_lifetime
        self.oidc_clients: dict[str, OidcClient] = {}
        self.oidc_token_count = 0
        self.oidc_discovery_count = 0
        self.oidc_token_path = "token"
        self._token_endpoint_moves = 0
        self.closing = asyncio.Event()
        self._tokens: dict[str, LabToken] = {}
        self._keep_alive = keep_alive
        self._server = LoopbackServer(build_app(self), host=host, port=port, keep_alive=keep_alive)
        self._dedicated: dict[str, LoopbackServer] = {}

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> int:
        """Start the shared server; returns its port."""
        self.closing.clear()
        port = await self._server.start()
        for instance in self.instances.values():
            if instance.name not in self._dedicated:
                instance.served_at = self._shared_url(instance.name)
        return port

    async def stop(self) -> None:
        """Stop every server; requests left hanging are answered 503."""
        self.closing.set()
        for server in self._dedicated.values():
            await server.stop()
        await self._server.stop()

    async def __aenter__(self) -> NifiLab:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def base_url(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    def _shared_url(self, name: str) -> str:
        return f"{self.base_url}/i/{name}/nifi-api"

    # -- topology ----------------------------------------------------------------------

    def add_instance(
        self,
        name: str,
        *,
        flow: LabFlow | None = None,
        users: dict[str, str] | None = None,
        oidc: bool = False,
        anonymous: bool | None = None,
        latency: float = 0.0,
        version: str = DEFAULT_VERSION,
    ) -> LabInstance:
        """Add an instance serving ``flow`` (an empty canvas by default).

        ``users`` enables ``POST /access/token``; ``oidc`` accepts provider tokens;
        ``anonymous`` (default: neither of those) lets requests without credentials in.
        """
        if not _NAME_RE.match(name):
            raise ValueError(f"lab instance names are [A-Za-z0-9._-]+, got {name!r}")
        if name in self.instances:
            raise ValueError(f"lab instance {name!r} exists")
        users = dict(users or {})
        instance = LabInstance(
            name=name,
            flow=flow or LabFlow(),
            users=users,
            oidc=oidc,
            anonymous=(not users and not oidc) if anonymous is None else anonymous,
            latency=latency,
            version=version,
        )
        if self._server.running:
            instance.served_at = self._shared_url(name)
        self.instances[name] = instance
        return instance

    def add_cluster(
        self,
        name: str,
        *,
        members: int = 3,
        flow: LabFlow | None = None,
        users: dict[str, str] | None = None,
        oidc: bool = False,
        anonymous: bool | None = None,
        latency: float = 0.0,
    ) -> list[LabInstance]:
        """Add a cluster of ``members`` instances ``{name}-1`` … sharing one flow, all
        connected; the cluster is ``lab.clusters[name]``."""
        if name in self.clusters:
            raise ValueError(f"lab cluster {name!r} exists")
        shared = flow or LabFlow()
        nodes = [
            self.add_instance(
                f"{name}-{index}",
                flow=shared,
                users=users,
                oidc=oidc,
                anonymous=anonymous,
                latency=latency,
            )
            for index in range(1, members + 1)
        ]
        self.clusters[name] = LabCluster(name, shared, nodes)
        return nodes

    def instance(self, name: str) -> LabInstance | None:
        """The instance called ``name``, if any."""
        return self.instances.get(name)

    # -- dedicated servers -------------------------------------------------------------

    async def serve_dedicated(self, name: str, *, tls: ServerTls | None = None) -> str:
        """Serve instance ``name`` on a port of its own (``/nifi-api`` at the root);
        with ``tls.require_client_cert`` every request that completes the handshake
        counts as authenticated. Returns the new API root, also in ``instance.url``."""
        instance = self.instances[name]
        if name in self._dedicated:
            raise ValueError(f"lab instance {name!r} already has a dedicated server")
        trusted = bool(tls and tls.require_client_cert)
        server = LoopbackServer(
            build_app(self, instance=name, client_cert_trusted=trusted),
            host=self._server.host,
            tls=tls,
            keep_alive=self._keep_alive,
        )
        port = await server.start()
        self._dedicated[name] = server
        instance.served_at = f"{server.scheme}://{server.host}:{port}/nifi-api"
        return instance.url

    async def stop_dedicated(self, name: str) -> None:
        """Stop the instance's own server: connections to it are refused from now on."""
        await self._dedicated[name].stop(abrupt=True)

    async def restart_dedicated(self, name: str) -> None:
        """Serve the instance's own server again, on the same port."""
        await self._dedicated[name].start()

    # -- tokens ------------------------------------------------------------------------

    def issue_token(
        self,
        instance: str | None,
        subject: str,
        lifetime: float,
        *,
        audience: str | None = None,
        scope: str = "",
    ) -> str:
        """A JWT-shaped token valid ``lifetime`` seconds, issued by ``instance`` (None:
        a provider token, accepted by every instance with OIDC)."""
        now = time.time()
        claims: dict[str, Any] = {
            "sub": subject,
            "iss": f"{self.base_url}/realms/{OIDC_REALM}"
            if instance is None
            else self._shared_url(instance),
            "aud": audience or instance or "nifi",
            "iat": round(now, 3),
            "exp": round(now + lifetime, 3),
            "jti": secrets.token_hex(8),
        }
        if scope:
            claims["scope"] = scope
        token = _jwt(claims)
        self._tokens[token] = LabToken(instance=instance, expires_at=now + lifetime)
        return token

    def token_accepted(self, token: str, instance: LabInstance) -> bool:
        """Whether ``instance`` accepts ``token``: known, unexpired, and its own or a
        provider token on an OIDC instance."""
        grant = self._tokens.get(token)
        if grant is None:
            return False
        if time.time() >= grant.expires_at:
            del self._tokens[token]
            return False
        if grant.instance is None:
            return instance.oidc
        return grant.instance == instance.name

    def expire_tokens(self, instance: str | None = None) -> int:
        """Invalidate the tokens issued by ``instance`` (every token when None);
        returns how many were dropped."""
        doomed = [
            token
            for token, grant in self._tokens.items()
            if instance is None or grant.instance == instance
        ]
        for token in doomed:
            del self._tokens[token]
        return len(doomed)

    # -- OIDC provider -----------------------------------------------------------------

    def add_oidc_client(
        self,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        audience: str | None = None,
    ) -> None:
        """Register a client of the lab's OIDC provider; with ``scope`` or ``audience``
        its token requests must ask for exactly those."""
        self.oidc_clients[client_id] = OidcClient(client_secret, scope, audience)

    def move_oidc_token_endpoint(self) -> str:
        """Serve the token endpoint at a new path (the old one answers 404); the
        discovery document names the new one. Returns the new path."""
        self._token_endpoint_moves += 1
        self.oidc_token_path = f"token-{self._token_endpoint_moves + 1}"
        return self.oidc_token_path

    @property
    def oidc_discovery_url(self) -> str:
        return f"{self.base_url}/realms/{OIDC_REALM}/.well-known/openid-configuration"

    async def wait_closing(self) -> None:
        """Block until the lab stops (used by hanging requests)."""
        await self.closing.wait()
