"""``/api/git-repositories``: where backups are committed.

A repository is a checkout under the configured root (``local_path`` relative to it, or
``repo-<id>``) with an optional remote URL and branch. Remote URLs, branches and paths are
checked when saved; a URL carrying a password is refused (secrets belong in credentials).
Giving a repository a credential, or changing the remote of one that holds a credential,
needs being allowed to use that credential.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from service.access.audit import record_audit
from service.access.ownership import authorize
from service.access.resources import ResourceKind, ResourceRef
from service.api.auth import TemplatesDeleter, TemplatesReader, TemplatesWriter
from service.api.deps import SessionDep, SettingsDep
from service.api.ownership import body_uses, require_redirect_allowed
from service.db.device_models import GitRepository
from service.db.paging import Page
from service.db.patching import flush_or_conflict, refuse_nulls
from service.errors import Conflict, NotFound
from service.gitstore.repositories import validate_branch, validate_local_path, validate_remote_url
from service.settings import Settings

router = APIRouter(prefix="/api/git-repositories", tags=["git-repositories"])

Name = Annotated[str, Field(min_length=1, max_length=255)]
Text = Annotated[str, Field(min_length=1, max_length=1024)]


class GitRepositoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: str | None = Field(default=None, max_length=10_000)
    url: Text | None = None
    local_path: Text | None = None
    branch: Name = "main"
    credential_id: Annotated[int | None, ResourceRef(ResourceKind.CREDENTIAL)] = None
    author_name: Name = "opsjobs"
    author_email: Name = "opsjobs@localhost"


class GitRepositoryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: str | None = Field(default=None, max_length=10_000)
    url: Text | None = None
    local_path: Text | None = None
    branch: Name | None = None
    credential_id: Annotated[int | None, ResourceRef(ResourceKind.CREDENTIAL)] = None
    author_name: Name | None = None
    author_email: Name | None = None


class GitRepositoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    url: str | None
    local_path: str | None
    branch: str
    credential_id: int | None
    author_name: str
    author_email: str
    created_at: datetime
    updated_at: datetime


#: Fields that decide where the repository's credential is sent.
CONNECTION = ("url",)


def _check(values: dict[str, Any], settings: Settings) -> None:
    """Validate the fields present in ``values`` (422 naming the field)."""
    if values.get("url") is not None:
        validate_remote_url(values["url"], allow_file=settings.git.allow_file_urls)
    if values.get("local_path") is not None:
        validate_local_path(values["local_path"])
    if values.get("branch") is not None:
        validate_branch(values["branch"])


async def get_repository(session: SessionDep, repository_id: int) -> GitRepository:
    row = await session.get(GitRepository, repository_id)
    if row is None:
        raise NotFound(f"git repository {repository_id} does not exist")
    return row


def _conflict(name: str) -> Conflict:
    return Conflict(f"a git repository named {name!r} or with that local path already exists")


@router.get("", response_model=Page[GitRepositoryOut])
async def list_git_repositories(
    caller: TemplatesReader,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Page[GitRepositoryOut]:
    total = await session.scalar(select(func.count()).select_from(GitRepository)) or 0
    rows = await session.scalars(
        select(GitRepository)
        .order_by(GitRepository.name, GitRepository.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return Page[GitRepositoryOut](
        items=[GitRepositoryOut.model_validate(row) for row in rows],
        total=total,
        page=page,
        page_size=page_size,
        total_pages=math.ceil(total / page_size),
    )


@router.post("", status_code=201, response_model=GitRepositoryOut)
async def create_git_repository(
    body: GitRepositoryIn,
    caller: TemplatesWriter,
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
) -> GitRepositoryOut:
    values = body.model_dump()
    _check(values, settings)
    await authorize(session, caller, body_uses(body))
    row = GitRepository(**values)
    session.add(row)
    await flush_or_conflict(session, _conflict(body.name))
    record_audit(
        session,
        actor=caller.username,
        action="create",
        resource_type="git_repository",
        resource_id=row.id,
        request=request,
    )
    await session.commit()
    return GitRepositoryOut.model_validate(row)


@router.get("/{repository_id}", response_model=GitRepositoryOut)
async def get_git_repository(
    repository_id: int, caller: TemplatesReader, session: SessionDep
) -> GitRepositoryOut:
    return GitRepositoryOut.model_validate(await get_repository(session, repository_id))


@router.patch("/{repository_id}", response_model=GitRepositoryOut)
async def update_git_repository(
    repository_id: int,
    body: GitRepositoryUpdate,
    caller: TemplatesWriter,
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
) -> GitRepositoryOut:
    row = await get_repository(session, repository_id)
    changes = body.model_dump(exclude_unset=True)
    refuse_nulls(GitRepository, changes)
    _check(changes, settings)
    await authorize(session, caller, body_uses(body, changes))
    await require_redirect_allowed(
        session, caller, ResourceKind.GIT_REPOSITORY, row.id, changes, CONNECTION
    )
    for name, value in changes.items():
        setattr(row, name, value)
    await flush_or_conflict(session, _conflict(row.name))
    record_audit(
        session,
        actor=caller.username,
        action="update",
        resource_type="git_repository",
        resource_id=row.id,
        request=request,
        details={"fields": sorted(changes)},
    )
    await session.commit()
    await session.refresh(row)
    return GitRepositoryOut.model_validate(row)


@router.delete("/{repository_id}", status_code=204)
async def delete_git_repository(
    repository_id: int, caller: TemplatesDeleter, request: Request, session: SessionDep
) -> Response:
    """Forget a repository (its checkout and remote are left as they are)."""
    row = await get_repository(session, repository_id)
    await session.delete(row)
    record_audit(
        session,
        actor=caller.username,
        action="delete",
        resource_type="git_repository",
        resource_id=repository_id,
        request=request,
    )
    await session.commit()
    return Response(status_code=204)
