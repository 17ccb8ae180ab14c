"""opsjobs, the product: job runs of NiFi checks and device jobs, recorded in PostgreSQL.

The wings below (runs, queue, scheduling, worker, api, client, access, db and the clients
for the outside world) are described in docs/architecture.md.
"""

from importlib.metadata import PackageNotFoundError, version


def service_version() -> str:
    """The installed opsjobs version ("unknown" when run from a tree that is not installed)."""
    try:
        return version("opsjobs")
    except PackageNotFoundError:
        return "unknown"
