"""Every Redis key opsjobs writes, under one prefix (``redis.prefix``, default ``opsjobs:``).

Two installations, or opsjobs and any other arq application, can share one Redis
database: queues are ``<prefix>queue:<name>``, arq job ids ``<prefix>run:<id>`` and
``<prefix>cron:<name>:<ms>``, so arq's own keys (``arq:job:<job id>``,
``arq:in-progress:<job id>``, ``arq:retry:<job id>``, ``arq:result:<job id>``, the
``<queue>:health-check`` key) carry the prefix after arq's constant part. arq's abort set
``arq:abort`` is shared by every arq application on the database; its members are job ids,
which are prefixed, and a worker only cancels the tasks it runs.

The key space rides on the Redis client an installation opens (:func:`open_redis`), as
arq binds a default queue name to its pool: whoever holds the client asks
:func:`keyspace_of` for names, and no key is built anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from arq.connections import ArqRedis, create_pool
from arq.connections import RedisSettings as ArqRedisSettings
from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from redis.asyncio import Redis

DEFAULT_PREFIX = "opsjobs:"
# arq's key prefixes, followed by one of our job ids.
ARQ_JOB_PREFIXES = (job_key_prefix, in_progress_key_prefix, result_key_prefix, retry_key_prefix)
# Characters a prefix may not hold: SCAN patterns are built from it.
GLOB_CHARACTERS = frozenset("*?[]\\")


@dataclass(frozen=True)
class KeySpace:
    """The names of an installation's Redis keys."""

    prefix: str = DEFAULT_PREFIX

    def queue(self, name: str) -> str:
        """The arq queue (a sorted set of job ids) behind the queue ``name``."""
        return f"{self.prefix}queue:{name}"

    def job_id(self, run_id: int) -> str:
        """The arq job id of a run: deterministic, so a run is queued at most once."""
        return f"{self.prefix}run:{run_id}"

    def run_id_of(self, job_id: str | bytes) -> int | None:
        """The run id of one of this installation's run job ids; None for any other job
        (a cron fire's, another installation's)."""
        text = job_id.decode() if isinstance(job_id, bytes) else job_id
        head = f"{self.prefix}run:"
        number = text[len(head) :] if text.startswith(head) else ""
        return int(number) if number.isdigit() else None

    def run_wake(self, job_id: str) -> str:
        """The short-lived mark of a wake-up sent to a queued job (overlap ``queue``)."""
        return f"{self.prefix}run-wake:{job_id}"

    def cron(self, name: str) -> str:
        """The arq function name of a cron; arq's per-fire job id is ``<this>:<ms>``."""
        return f"{self.prefix}cron:{name}"

    def run_events(self, run_id: int) -> str:
        return f"{self.prefix}run-events:{run_id}"

    def lease(self, scope: str) -> str:
        return f"{self.prefix}lease:{scope}"

    def git_lock(self, repository: str) -> str:
        return f"{self.prefix}gitstore:lock:{repository}"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}worker:{worker_id}"

    def workers_pattern(self) -> str:
        """A SCAN pattern matching every worker heartbeat key."""
        return f"{self.prefix}worker:*"

    def scheduler_tick(self) -> str:
        return f"{self.prefix}scheduler:last_tick"

    def device_cache(self) -> str:
        return f"{self.prefix}nautobot:devices"

    def console_session(self, session_digest: str) -> str:
        return f"{self.prefix}console:session:{session_digest}"

    def key(self, *parts: str) -> str:
        """Any other key of the installation (benchmarks and tests name theirs here)."""
        return self.prefix + ":".join(parts)

    def owns(self, key: str) -> bool:
        """True when ``key`` is one this installation writes (arq's shared abort set too)."""
        if key.startswith(self.prefix) or key == abort_jobs_ss:
            return True
        return any(key.startswith(arq + self.prefix) for arq in ARQ_JOB_PREFIXES)


def check_prefix(prefix: str) -> str:
    """``prefix`` if it can name keys and SCAN patterns; raises ValueError why not."""
    if not prefix:
        raise ValueError("must not be empty")
    if any(char.isspace() or char in GLOB_CHARACTERS for char in prefix):
        raise ValueError("must not contain whitespace or any of * ? [ ] \\")
    return prefix


class KeyedRedis(ArqRedis):
    """arq's Redis client, bound to the key space of the installation that opened it."""

    keyspace: KeySpace


async def open_redis(url: str, prefix: str = DEFAULT_PREFIX, *, retry: int = 0) -> KeyedRedis:
    """A pooled client of the Redis at ``url`` whose keys are named under ``prefix``.

    The connection is checked (with ``retry`` more tries, as arq's ``create_pool``).
    """
    checked = await create_pool(ArqRedisSettings.from_dsn(url), retry=retry)
    client = KeyedRedis(connection_pool=checked.connection_pool)
    # The pool was made for the checked client; this one owns it from now on.
    client.auto_close_connection_pool = True
    client.keyspace = KeySpace(check_prefix(prefix))
    return client


def keyspace_of(redis: Redis) -> KeySpace:
    """The key space ``redis`` was opened with; TypeError for a client of no installation."""
    if isinstance(redis, KeyedRedis):
        return redis.keyspace
    raise TypeError("an opsjobs Redis client is opened with service.keyspace.open_redis")


async def first_foreign_key(redis: Redis, keyspace: KeySpace) -> str | None:
    """A key of the database that ``keyspace`` does not own (another installation's, or
    another application's), or None."""
    async for raw in redis.scan_iter(count=1000):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        if not keyspace.owns(key):
            return key
    return None


async def refuse_foreign_keys(redis: Redis, keyspace: KeySpace, url: str) -> None:
    """Raise :class:`ForeignKeysError` when the database at ``url`` holds a key outside
    ``keyspace`` (called before a test or bench fixture empties the database)."""
    key = await first_foreign_key(redis, keyspace)
    if key is not None:
        raise ForeignKeysError(
            f"Redis database {_without_password(url)} holds keys outside the prefix "
            f"{keyspace.prefix!r} (e.g. {key!r}); refusing to empty it — use a database of "
            "its own"
        )


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class ForeignKeysError(RuntimeError):
    """A Redis database holds keys of someone else."""
