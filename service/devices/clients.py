"""The long-lived device-side clients a worker (or the API) makes once from the settings."""

from __future__ import annotations

import logging

from service.devices.host_keys import KnownHosts
from service.devices.runner import SshOptions, SshRunner
from service.inventory.nautobot import NautobotClient
from service.queue.leases import Leases
from service.settings import NautobotSettings, SshSettings

logger = logging.getLogger(__name__)


def make_nautobot_client(settings: NautobotSettings) -> NautobotClient:
    """A Nautobot client owning its HTTP connection pool (close it with ``aclose``)."""
    return NautobotClient(
        settings.url,
        settings.token,
        timeout=settings.timeout,
        page_size=settings.page_size,
        # A plain-HTTP client skips loading the trust store, which costs every process time.
        verify_tls=settings.verify_tls and settings.url.startswith("https://"),
    )


async def load_known_hosts(settings: SshSettings) -> KnownHosts:
    """The host-key policy; a missing file in strict mode refuses every device key.

    A worker must start (its queue may hold other work) even before the file exists, so a
    missing file is a warning here and a ``host_key_rejected`` error per device later.
    """
    try:
        return await KnownHosts.load(settings.known_hosts, accept_new=settings.accept_new)
    except FileNotFoundError:
        logger.warning(
            "known_hosts file %s does not exist; device host keys will be refused",
            settings.known_hosts,
        )
        return KnownHosts(settings.known_hosts, "", accept_new=False)


def make_ssh_runner(
    settings: SshSettings, known_hosts: KnownHosts, leases: Leases, per_device: int
) -> SshRunner:
    """The SSH runner with the configured timeouts, limits (per device and per site across
    every worker, with ``leases``) and addressing."""
    return SshRunner(
        known_hosts,
        SshOptions(
            connect_timeout=settings.connect_timeout,
            command_timeout=settings.command_timeout,
            max_sessions=settings.max_sessions,
            max_sessions_per_site=settings.max_sessions_per_site,
            max_sessions_per_device=per_device,
            port_field=settings.port_field,
            default_port=settings.default_port,
        ),
        leases,
    )
