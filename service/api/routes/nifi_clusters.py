"""``/api/nifi/clusters``: NiFi clusters and their members (exactly one primary).

Membership is given as a whole (``members``) and replaces the previous one in one
transaction; naming an instance needs being allowed to use the credential it holds (a
cluster's checks use every member's). An instance already in another cluster is a 409:
it is never moved silently. The database has the last word on "exactly one primary"
(migration 0003).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.audit import record_audit
from service.access.ownership import authorize
from service.access.resources import ResourceKind, ResourceRef
from service.api.auth import NifiReader, NifiWriter
from service.api.deps import SessionDep
from service.api.ownership import body_uses
from service.api.pagination import PageQuery, PageSizeQuery
from service.db.nifi_models import NifiClusterRow, NifiInstanceRow
from service.db.paging import Page, paginate
from service.db.patching import flush_or_conflict
from service.errors import Conflict, InvalidInput, NotFound

router = APIRouter(prefix="/api/nifi/clusters", tags=["nifi"])

Name = Annotated[str, Field(min_length=1, max_length=255)]
Label = Annotated[str, Field(max_length=255)]
MAX_MEMBERS = 100


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instance_id: Annotated[int, ResourceRef(ResourceKind.NIFI_INSTANCE)]
    is_primary: bool = False


def _check_members(members: list[MemberIn] | None) -> list[MemberIn] | None:
    if not members:
        return members
    ids = [member.instance_id for member in members]
    if len(set(ids)) != len(ids):
        raise ValueError("an instance is listed twice")
    primaries = sum(1 for member in members if member.is_primary)
    if primaries != 1:
        raise ValueError(f"exactly one member must be primary, {primaries} are")
    return members


class ClusterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    hierarchy_attribute: Label | None = None
    hierarchy_value: Label | None = None
    description: str | None = Field(default=None, max_length=10_000)
    members: list[MemberIn] = Field(default_factory=list, max_length=MAX_MEMBERS)

    _members = field_validator("members")(_check_members)


class ClusterUpdate(BaseModel):
    """Fields left out keep their value; ``members`` replaces the membership."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    hierarchy_attribute: Label | None = None
    hierarchy_value: Label | None = None
    description: str | None = Field(default=None, max_length=10_000)
    members: list[MemberIn] | None = Field(default=None, max_length=MAX_MEMBERS)

    _members = field_validator("members")(_check_members)


class MemberOut(BaseModel):
    instance_id: int
    name: str
    url: str
    is_primary: bool


class ClusterOut(BaseModel):
    id: int
    name: str
    hierarchy_attribute: str | None
    hierarchy_value: str | None
    description: str | None
    members: list[MemberOut]
    primary_instance_id: int | None
    created_at: datetime
    updated_at: datetime


async def _members_of(session: AsyncSession, cluster_ids: list[int]) -> dict[int, list[MemberOut]]:
    """Each cluster's members, primary first, from one query."""
    members: dict[int, list[MemberOut]] = {cluster_id: [] for cluster_id in cluster_ids}
    rows = await session.scalars(
        select(NifiInstanceRow)
        .where(NifiInstanceRow.cluster_id.in_(cluster_ids))
        .order_by(NifiInstanceRow.is_primary.desc(), NifiInstanceRow.name)
    )
    for row in rows:
        assert row.cluster_id is not None
        members[row.cluster_id].append(
            MemberOut(instance_id=row.id, name=row.name, url=row.url, is_primary=row.is_primary)
        )
    return members


def _cluster_out(row: NifiClusterRow, members: list[MemberOut]) -> ClusterOut:
    return ClusterOut(
        id=row.id,
        name=row.name,
        hierarchy_attribute=row.hierarchy_attribute,
        hierarchy_value=row.hierarchy_value,
        description=row.description,
        members=members,
        primary_instance_id=next((m.instance_id for m in members if m.is_primary), None),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _out(session: AsyncSession, row: NifiClusterRow) -> ClusterOut:
    return _cluster_out(row, (await _members_of(session, [row.id]))[row.id])


async def _get(session: AsyncSession, cluster_id: int) -> NifiClusterRow:
    row = await session.get(NifiClusterRow, cluster_id)
    if row is None:
        raise NotFound(f"NiFi cluster {cluster_id} does not exist")
    return row


async def _detach_all(session: AsyncSession, cluster_id: int) -> None:
    await session.execute(
        update(NifiInstanceRow)
        .where(NifiInstanceRow.cluster_id == cluster_id)
        .values(cluster_id=None, is_primary=False)
        .execution_options(synchronize_session="fetch")
    )


async def _set_members(session: AsyncSession, cluster_id: int, members: list[MemberIn]) -> None:
    """Replace the membership; the instance rows are locked so that two clusters
    cannot claim one instance at the same time."""
    ids = [member.instance_id for member in members]
    rows = {
        row.id: row
        for row in await session.scalars(
            select(NifiInstanceRow)
            .where(NifiInstanceRow.id.in_(ids))
            .order_by(NifiInstanceRow.id)
            .with_for_update()
        )
    }
    unknown = [
        {"loc": ["body", "members", index, "instance_id"], "msg": "no such NiFi instance"}
        for index, instance_id in enumerate(ids)
        if instance_id not in rows
    ]
    if unknown:
        raise InvalidInput("unknown NiFi instance in members", details=unknown)
    taken = [row for row in rows.values() if row.cluster_id not in (None, cluster_id)]
    if taken:
        names = ", ".join(f"{row.name!r} (cluster {row.cluster_id})" for row in taken)
        raise Conflict(f"instances already belong to another cluster: {names}")
    await _detach_all(session, cluster_id)
    await session.flush()
    for member in members:
        row = rows[member.instance_id]
        row.cluster_id = cluster_id
        row.is_primary = member.is_primary
    await session.flush()


async def _commit(session: AsyncSession, name: str) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        if "nifi_cluster_one_primary" in str(exc.orig):
            raise Conflict("a NiFi cluster with members needs exactly one primary") from None
        raise Conflict(f"a NiFi cluster named {name!r} already exists") from None


@router.get("", response_model=Page[ClusterOut])
async def list_clusters(
    caller: NifiReader,
    session: SessionDep,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 50,
) -> Page[ClusterOut]:
    rows = await paginate(
        session,
        NifiClusterRow,
        where=(),
        order_by=(NifiClusterRow.name, NifiClusterRow.id),
        page=page,
        page_size=page_size,
        to_item=lambda row: row,
    )
    members = await _members_of(session, [row.id for row in rows.items])
    return Page[ClusterOut](
        items=[_cluster_out(row, members[row.id]) for row in rows.items],
        total=rows.total,
        page=rows.page,
        page_size=rows.page_size,
        total_pages=rows.total_pages,
    )


@router.post("", status_code=201, response_model=ClusterOut)
async def create_cluster(
    body: ClusterIn, caller: NifiWriter, request: Request, session: SessionDep
) -> ClusterOut:
    await authorize(session, caller, body_uses(body))
    row = NifiClusterRow(**body.model_dump(exclude={"members"}))
    session.add(row)
    await flush_or_conflict(session, Conflict(f"a NiFi cluster named {body.name!r} already exists"))
    await _set_members(session, row.id, body.members)
    record_audit(
        session,
        actor=caller.username,
        action="create",
        resource_type="nifi_cluster",
        resource_id=row.id,
        request=request,
        details={"members": [member.instance_id for member in body.members]},
    )
    await _commit(session, body.name)
    await session.refresh(row)
    return await _out(session, row)


@router.get("/{cluster_id}", response_model=ClusterOut)
async def get_cluster(cluster_id: int, caller: NifiReader, session: SessionDep) -> ClusterOut:
    return await _out(session, await _get(session, cluster_id))


@router.patch("/{cluster_id}", response_model=ClusterOut)
async def update_cluster(
    cluster_id: int,
    body: ClusterUpdate,
    caller: NifiWriter,
    request: Request,
    session: SessionDep,
) -> ClusterOut:
    row = await _get(session, cluster_id)
    await authorize(session, caller, body_uses(body, body.model_fields_set))
    changes = body.model_dump(exclude_unset=True, exclude={"members"})
    if "name" in changes and changes["name"] is None:
        raise InvalidInput(
            "name cannot be null", details=[{"loc": ["body", "name"], "msg": "may not be null"}]
        )
    for name, value in changes.items():
        setattr(row, name, value)
    await flush_or_conflict(session, Conflict(f"a NiFi cluster named {row.name!r} already exists"))
    fields = sorted(changes)
    if body.members is not None:
        await _set_members(session, row.id, body.members)
        fields.append("members")
    record_audit(
        session,
        actor=caller.username,
        action="update",
        resource_type="nifi_cluster",
        resource_id=row.id,
        request=request,
        details={"fields": fields},
    )
    await _commit(session, row.name)
    await session.refresh(row)
    return await _out(session, row)


@router.delete("/{cluster_id}", status_code=204)
async def delete_cluster(
    cluster_id: int, caller: NifiWriter, request: Request, session: SessionDep
) -> Response:
    """Delete the cluster; its instances stay, without a cluster."""
    row = await _get(session, cluster_id)
    await _detach_all(session, cluster_id)
    await session.delete(row)
    record_audit(
        session,
        actor=caller.username,
        action="delete",
        resource_type="nifi_cluster",
        resource_id=cluster_id,
        request=request,
    )
    await _commit(session, row.name)
    return Response(status_code=204)
