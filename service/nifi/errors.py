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


class NifiNodeNotReady(NifiUnavailable):
    """The node answered but cannot serve the cluster now: 409 (initializing its flow,
    another cluster-state conflict), 503, or it is not connected to its cluster. The
    cluster call moves on to the next member and backs this node off."""

    code = "nifi_node_not_ready"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message, details={"status_code": status_code})
        self.status_code = status_code


class NifiTlsError(NifiUnavailable):
    """The TLS handshake failed for a reason ``kind`` names (``unknown_ca``,
    ``hostname_mismatch``, ``certificate_expired``, ``certificate_not_yet_valid``,
    ``client_certificate_refused``, ``handshake_failed``). Never retried on the same
    node: another try meets the same certificate; another member may have its own."""

    code = "nifi_tls_error"

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message, details={"tls_error": kind})
        self.kind = kind


class NifiTlsSetupError(NifiError):
    """Our side of TLS cannot be set up: a certificate, key or store that is missing,
    unreadable, or does not open with its password. Raised at once: the operator must
    fix the instance's settings, and retrying or asking another member repeats it."""

    code = "nifi_tls_setup_failed"


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
    """Why one cluster member could not be used: asked, it failed with ``error``; or,
    not ``tried``, it was backed off after saying it was not ready."""

    member: str
    error: str
    tried: bool = True

    def to_dict(self) -> dict[str, object]:
        return {"member": self.member, "reason": self.error, "tried": self.tried}


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
