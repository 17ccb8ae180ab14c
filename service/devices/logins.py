"""The device login of a run: its credential, decrypted in the worker just before use.

A run's credential comes from its schedule (``job_runs.credential_id``) or, for a run
started directly, from the job's ``credential_id`` parameter. Either way the run's
principal must be allowed to use it, which the worker checks before the run starts.
"""

from __future__ import annotations

from sqlalchemy import select

from service.access.credentials import load_credential
from service.db.engine import SessionFactory
from service.db.models import JobRun
from service.db.security_models import CredentialType
from service.devices.runner import SshCredentials
from service.errors import InvalidInput
from service.secrets import KeyStore

_SSH_TYPES = frozenset(
    {CredentialType.SSH_PASSWORD, CredentialType.SSH_KEY, CredentialType.USERNAME_PASSWORD}
)


class MissingCredential(InvalidInput):
    """A device job was started without a credential to log in with."""

    code = "missing_credential"


async def run_credential_id(sessions: SessionFactory, run_id: int, requested: int | None) -> int:
    """The credential id a run logs in with: its schedule's, else the parameter's.

    Whether the run's principal may use it was checked before the run used anything
    (``service.runs.authorization``).
    """
    async with sessions() as session:
        stored = await session.scalar(select(JobRun.credential_id).where(JobRun.id == run_id))
    if stored is not None:
        return stored
    if requested is None:
        raise MissingCredential(
            "no credential: give credential_id in the parameters or on the schedule"
        )
    return requested


async def ssh_credentials(
    sessions: SessionFactory, keys: KeyStore, credential_id: int
) -> SshCredentials:
    """Decrypt a credential into an SSH login (password, or private key and passphrase)."""
    credential = await load_credential(sessions, keys, credential_id)
    if credential.type not in _SSH_TYPES:
        raise InvalidInput(
            f"credential {credential.name!r} is a {credential.type.value} credential; "
            "device logins need a password or an SSH key"
        )
    if not credential.username:
        raise InvalidInput(f"credential {credential.name!r} has no username")
    return SshCredentials(
        username=credential.username,
        password=credential.password,
        private_key=credential.ssh_key,
        passphrase=credential.passphrase,
    )
