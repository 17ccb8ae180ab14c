"""The device login of a run: its credential, decrypted in the worker just before use.

A run's credential comes from its schedule (``job_runs.credential_id``) or, for a run
started directly, from the job's ``credential_id`` parameter. A private credential given
as a parameter serves only runs its owner started, so knowing an id is not enough to
borrow someone else's login.
"""

from __future__ import annotations

from sqlalchemy import select

from service.access.credentials import load_credential
from service.db.engine import SessionFactory
from service.db.models import JobRun
from service.db.security_models import Credential, CredentialType
from service.devices.runner import SshCredentials
from service.errors import InvalidInput, NotFound
from service.secrets import KeyStore

_SSH_TYPES = frozenset(
    {CredentialType.SSH_PASSWORD, CredentialType.SSH_KEY, CredentialType.USERNAME_PASSWORD}
)


class MissingCredential(InvalidInput):
    """A device job was started without a credential to log in with."""

    code = "missing_credential"


async def run_credential_id(sessions: SessionFactory, run_id: int, requested: int | None) -> int:
    """The credential id a run logs in with; checks that its starter may use it."""
    async with sessions() as session:
        run = (
            await session.execute(
                select(JobRun.credential_id, JobRun.executed_by).where(JobRun.id == run_id)
            )
        ).one()
        if run.credential_id is not None:
            chosen: int = run.credential_id
            return chosen
        if requested is None:
            raise MissingCredential(
                "no credential: give credential_id in the parameters or on the schedule"
            )
        scope = (
            await session.execute(
                select(Credential.is_global, Credential.owner).where(Credential.id == requested)
            )
        ).one_or_none()
    if scope is None or not (scope.is_global or scope.owner == run.executed_by):
        raise NotFound(f"credential {requested} does not exist or is inactive")
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
