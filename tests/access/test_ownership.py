"""The use rule on real rows: owned and holding resources, principals, and the markers
that find resource ids in models."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel
from sqlalchemy import func, update

from executors.services import Services
from service.access.ownership import UseCheck, authorize, look_up
from service.access.principals import SYSTEM, Principal, principal_named, run_principal
from service.access.resources import (
    SCHEMA_KEY,
    ResourceKind,
    ResourceRef,
    ResourceUse,
    resource_uses,
)
from service.access.tokens import create_token
from service.db.security_models import ApiToken, Role
from service.errors import Forbidden, InvalidInput
from tests.access.world import build_world
from tests.conftest import token_for

ALICE = Principal("alice", Role.OPERATOR)
BOB = Principal("bob", Role.OPERATOR)
ROOT = Principal("root", Role.ADMIN)


class _Inner(BaseModel):
    inventory_id: Annotated[int | None, ResourceRef(ResourceKind.INVENTORY)] = None


class _Outer(BaseModel):
    credential_id: Annotated[int | None, ResourceRef(ResourceKind.CREDENTIAL)] = None
    cluster_ids: Annotated[
        list[str] | None, ResourceRef(ResourceKind.NIFI_CLUSTER, null_means_all=True)
    ] = None
    inner: _Inner = _Inner()
    many: list[_Inner] = []
    by_name: dict[str, _Inner] = {}


def test_markers_find_every_named_resource_with_its_place() -> None:
    model = _Outer(
        credential_id=4,
        cluster_ids=["7", "8"],
        inner=_Inner(inventory_id=1),
        many=[_Inner(), _Inner(inventory_id=2)],
        by_name={"x": _Inner(inventory_id=3)},
    )
    assert [(use.kind.value, use.id, use.loc) for use in resource_uses(model, ("body",))] == [
        ("credential", 4, ("body", "credential_id")),
        ("nifi_cluster", "7", ("body", "cluster_ids", 0)),
        ("nifi_cluster", "8", ("body", "cluster_ids", 1)),
        ("inventory", 1, ("body", "inner", "inventory_id")),
        ("inventory", 2, ("body", "many", 1, "inventory_id")),
        ("inventory", 3, ("body", "by_name", "x", "inventory_id")),
    ]
    # Left out, a null-means-all field names every resource of its kind.
    (every,) = resource_uses(_Outer())
    assert (every.kind, every.every, every.describe()) == (
        ResourceKind.NIFI_CLUSTER,
        True,
        "every NiFi cluster (cluster_ids)",
    )
    schema = _Outer.model_json_schema()
    assert schema["properties"]["credential_id"][SCHEMA_KEY] == "credential"
    assert schema["$defs"]["_Inner"]["properties"]["inventory_id"][SCHEMA_KEY] == "inventory"


async def test_owned_resources_are_usable_by_their_owner_and_admins(services: Services) -> None:
    world = await build_world(services)
    for kind in ("credential", "inventory", "command_template", "job_template", "job_schedule"):
        use = ResourceUse(ResourceKind(kind), world.mine[kind], ("x",))
        check = await look_up_session(services, [use])
        assert check.private
        check.require(ALICE)
        check.require(ROOT)
        for outsider in (BOB, SYSTEM):
            with pytest.raises(InvalidInput) as refused:
                check.require(outsider)
            assert refused.value.details == [
                {"loc": ["x"], "msg": f"{use.kind.label} {use.id} does not exist"}
            ]
    shared = ResourceUse(ResourceKind.CREDENTIAL, world.shared["credential"], ("x",))
    check = await look_up_session(services, [shared])
    assert not check.private
    check.require(SYSTEM)


async def test_holding_resources_are_usable_with_the_credential_they_hold(
    services: Services,
) -> None:
    world = await build_world(services)
    for kind in ("git_repository", "nifi_instance", "nifi_cluster"):
        check = await look_up_session(
            services, [ResourceUse(ResourceKind(kind), world.mine[kind], ("x",))]
        )
        assert check.private
        check.require(ALICE)
        check.require(ROOT)
        with pytest.raises(Forbidden):
            check.require(BOB)
    every = await look_up_session(services, [ResourceUse(ResourceKind.NIFI_CLUSTER, None, ("c",))])
    with pytest.raises(Forbidden) as refused:
        every.require(BOB)
    assert refused.value.details == [
        {
            "loc": ["c"],
            "msg": f"NiFi cluster {world.mine['nifi_cluster']} holds a credential bob may not use",
        }
    ]
    shared = await look_up_session(
        services, [ResourceUse(ResourceKind.NIFI_CLUSTER, world.shared["nifi_cluster"], ("c",))]
    )
    assert not shared.private
    shared.require(BOB)


@pytest.mark.parametrize("value", [999_999, "x", 2**40, 0, -1, True, 1.5])
async def test_ids_that_name_nothing_do_not_exist(services: Services, value: object) -> None:
    async with services.sessions() as session:
        with pytest.raises(InvalidInput):
            await authorize(session, ROOT, [ResourceUse(ResourceKind.CREDENTIAL, value, ("c",))])


async def test_a_principal_has_the_highest_role_of_its_live_tokens(services: Services) -> None:
    await token_for(services, Role.VIEWER, "carol")
    revoked, _ = await create_token(
        services.sessions, name="old", username="carol", role=Role.ADMIN, created_by="t"
    )
    async with services.sessions.begin() as session:
        await session.execute(
            update(ApiToken).where(ApiToken.id == revoked.id).values(revoked_at=func.now())
        )
    async with services.sessions() as session:
        assert (await principal_named(session, "carol")).role is Role.VIEWER
        await token_for(services, Role.OPERATOR, "carol")
        assert (await principal_named(session, "carol")).role is Role.OPERATOR
        assert (await principal_named(session, "nobody")).role is Role.VIEWER
        assert await principal_named(session, None) is SYSTEM
        assert await run_principal(session, "system", "carol") is SYSTEM
        assert (await run_principal(session, "schedule", "carol")).username == "carol"


async def look_up_session(services: Services, uses: list[ResourceUse]) -> UseCheck:
    async with services.sessions() as session:
        return await look_up(session, uses)
