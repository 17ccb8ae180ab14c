"""Long-lived resources of a worker, made once in ``on_startup`` and handed to executors."""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis

from service.db.engine import SessionFactory
from service.devices.runner import SshRunner
from service.devices.targeting import DeviceResolver
from service.gitstore.locks import RepositoryLocks
from service.inventory.nautobot import NautobotClient
from service.keyspace import KeySpace, keyspace_of
from service.nifi.pool import NifiClientPool
from service.queue.leases import Leases
from service.runs.reporting import EventPublisher
from service.secrets import KeyStore
from service.settings import Settings


@dataclass(frozen=True)
class Services:
    """Clients an executor may use; none of them is created at import time."""

    settings: Settings
    sessions: SessionFactory
    redis: ArqRedis
    keys: KeyStore
    worker_id: str
    nifi: NifiClientPool
    nautobot: NautobotClient
    ssh: SshRunner
    git_locks: RepositoryLocks
    events: EventPublisher
    leases: Leases

    @property
    def keyspace(self) -> KeySpace:
        """The names of this installation's Redis keys."""
        return keyspace_of(self.redis)

    def device_resolver(self) -> DeviceResolver:
        """Resolves device target specs through Nautobot and the device cache."""
        return DeviceResolver(self.nautobot, self.redis, self.settings.nautobot)
