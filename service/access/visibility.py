"""Who sees runs and shared resources, as query conditions any reader (API, console) uses.

A run is private when it used a private resource (``job_runs.private_to`` holds the
principal it ran as) and then seen only by that principal and admins; a global run, which
used only what every reader may use, is seen by every reader in full. Owned rows are seen
as :func:`service.access.ownership.visible_to` says.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_, select, true

from service.access.ownership import UseCheck, visible_to
from service.access.principals import Principal
from service.db.models import JobRun
from service.db.security_models import Credential


def holders_usable_by(model: Any, principal: Principal) -> ColumnElement[bool]:
    """The rows of a holding ``model`` (with ``credential_id``) ``principal`` may use."""
    if principal.is_admin:
        return true()
    usable = select(Credential.id).where(
        Credential.id == model.credential_id, visible_to(Credential, principal)
    )
    return or_(model.credential_id.is_(None), usable.exists())


def runs_visible_to(principal: Principal | None) -> ColumnElement[bool]:
    """The runs ``principal`` may see; ``None`` (an anonymous reader) sees global ones."""
    if principal is not None and principal.is_admin:
        return true()
    if principal is None or principal.system:
        condition: ColumnElement[bool] = JobRun.private_to.is_(None)
        return condition
    return or_(JobRun.private_to.is_(None), JobRun.private_to == principal.username)


def may_see_run(principal: Principal, private_to: str | None) -> bool:
    """:func:`runs_visible_to` for one run already read."""
    return private_to is None or principal.is_admin or principal.owns(private_to)


def run_private_to(check: UseCheck, principal: Principal) -> str | None:
    """Whom a run that uses what ``check`` found is private to (None: a global run)."""
    return principal.username if check.private else None
