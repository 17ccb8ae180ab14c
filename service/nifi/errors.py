"""Errors raised by the NiFi client.

Messages name the instance and what failed, never a credential or a token.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.errors import OpsjobsError


class NifiError(OpsjobsError):
    """Base of every NiFi failure."""

    code = "nifi_error"


class NifiUnavailable(NifiError):
    """The instance did not answer usefully: connection refused, timeout or 5xx.

    Only this kind of failure moves a cluster call on to the next member.
    """

    code = "nifi_unavailable"


class NifiAuthError(NifiError):
    """Login failed, or NiFi still answered 401/403 after one re-login."""

    code = "nifi_auth_failed"


class NifiRequestError(NifiError):
    """NiFi answered, but not with what was asked for (404, other 4xx, malformed JSON)."""

    code = "nifi_request_failed"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message, details={"status_code": status_code})
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class MemberFailure:
    """Why one cluster member could not be used."""

    member: str
    error: str


class NifiClusterUnavailable(NifiUnavailable):
    """No member of a cluster answered."""

    code = "nifi_cluster_unavailable"

    def __init__(self, cluster: str, failures: tuple[MemberFailure, ...]) -> None:
        reasons = "; ".join(f"{f.member}: {f.error}" for f in failures) or "no members"
        super().__init__(
            f"no member of cluster {cluster!r} answered ({reasons})",
            details=[{"member": f.member, "error": f.error} for f in failures],
        )
        self.cluster = cluster
        self.failures = failures
