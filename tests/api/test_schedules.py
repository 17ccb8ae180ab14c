"""``/api/job-schedules`` over HTTP: validation naming the field, CRUD, run now, previews."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from executors.services import Services
from service.db.models import JobRun, RunStatus
from service.db.security_models import Role
from tests.scheduling.factories import make_template
from tests.workers import drain, wait_for_run

BERLIN_DST_2027 = "2027-03-26T00:00:00+00:00"  # two days before the spring-forward Sunday


async def _create(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/job-schedules", json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_create_daily_in_a_zone(client: httpx.AsyncClient, services: Services) -> None:
    template_id = await make_template(services.sessions)
    body = await _create(
        client,
        job_identifier="nightly",
        template_id=template_id,
        schedule_type="daily",
        time_of_day="02:30",
        timezone="Europe/Berlin",
        start_at=BERLIN_DST_2027,
        interval_minutes=5,  # not a daily field: dropped
    )
    assert body["interval_minutes"] is None
    assert body["template_job_type"] == "diag.echo"
    assert _at(body["next_run_at"]) == datetime(2027, 3, 26, 1, 30, tzinfo=UTC)
    assert body["next_run_local"].startswith("2027-03-26T02:30:00+01:00")
    assert (body["misfire_policy"], body["overlap_policy"]) == ("run_once", "skip")


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"schedule_type": "custom", "cron_expression": "61 * * * *"}, ["cron_expression"]),
        ({"schedule_type": "daily", "time_of_day": "9:00", "timezone": "Mars/Base"}, ["timezone"]),
        ({"schedule_type": "interval"}, ["interval_minutes"]),
        ({"schedule_type": "weekly", "time_of_day": "09:00"}, ["weekdays"]),
        (
            {
                "schedule_type": "interval",
                "interval_minutes": 5,
                "start_at": "2027-01-02T00:00:00Z",
                "end_at": "2027-01-01T00:00:00Z",
            },
            ["end_at"],
        ),
        ({"schedule_type": "interval", "interval_minutes": 5, "parameters": {"bogus": 1}}, None),
        ({"schedule_type": "hourly", "misfire_policy": "sometimes"}, ["misfire_policy"]),
    ],
)
async def test_invalid_specs_are_422_naming_the_field(
    client: httpx.AsyncClient, services: Services, fields: dict[str, Any], loc: list[str] | None
) -> None:
    template_id = await make_template(services.sessions)
    response = await client.post(
        "/api/job-schedules", json={"job_identifier": "bad", "template_id": template_id, **fields}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    expected = ["body", *loc] if loc else ["body", "parameters", "bogus"]
    assert error["details"][0]["loc"] == expected


async def test_unknown_template_and_duplicate_identifier(
    client: httpx.AsyncClient, services: Services
) -> None:
    response = await client.post(
        "/api/job-schedules",
        json={"job_identifier": "x", "template_id": 999, "schedule_type": "hourly"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == ["body", "template_id"]

    template_id = await make_template(services.sessions)
    fields = {"job_identifier": "twice", "template_id": template_id, "schedule_type": "hourly"}
    await _create(client, **fields)
    response = await client.post("/api/job-schedules", json=fields)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    other = await _create(client, **{**fields, "job_identifier": "once"})
    renamed = await client.put(
        f"/api/job-schedules/{other['id']}", json={"job_identifier": "twice"}
    )
    assert (renamed.status_code, renamed.json()["error"]["code"]) == (409, "conflict")


async def test_a_now_schedule_runs_once_at_creation(
    client: httpx.AsyncClient, services: Services
) -> None:
    template_id = await make_template(services.sessions, config={"message": "once"})
    body = await _create(
        client, job_identifier="once", template_id=template_id, schedule_type="now"
    )
    assert body["next_run_at"] is None
    assert body["last_run_at"] is not None

    await drain(services.settings)
    async with services.sessions() as session:
        (run,) = (await session.scalars(select(JobRun))).all()
    assert run.schedule_id == body["id"]
    assert run.triggered_by == "schedule"
    assert run.scheduled_for == _at(body["last_run_at"])
    assert (run.status, run.summary, run.job_name) == ("completed", "once", "once")


async def test_list_get_update_delete(client: httpx.AsyncClient, services: Services) -> None:
    template_id = await make_template(services.sessions)
    hourly = await _create(
        client,
        job_identifier="h",
        template_id=template_id,
        schedule_type="hourly",
        time_of_day="00:15",
    )
    await _create(
        client,
        job_identifier="i",
        template_id=template_id,
        schedule_type="interval",
        interval_minutes=5,
        is_active=False,
    )

    listed = (await client.get("/api/job-schedules", params={"is_active": "true"})).json()
    assert [item["job_identifier"] for item in listed["items"]] == ["h"]
    assert (await client.get("/api/job-schedules")).json()["total"] == 2
    assert (await client.get(f"/api/job-schedules/{hourly['id']}")).json() == hourly
    assert (await client.get("/api/job-schedules/424242")).status_code == 404
    assert _at(hourly["next_run_at"]).minute == 15

    url = f"/api/job-schedules/{hourly['id']}"
    changed = await client.put(url, json={"schedule_type": "interval", "interval_minutes": 7})
    assert changed.status_code == 200, changed.text
    assert changed.json()["time_of_day"] is None
    assert changed.json()["interval_minutes"] == 7
    paused = (await client.put(url, json={"is_active": False})).json()
    assert paused["next_run_at"] is None
    resumed = (await client.put(url, json={"is_active": True})).json()
    assert resumed["next_run_at"] is not None

    for body, loc in [
        ({"parameters": {"bogus": 1}}, ["body", "parameters", "bogus"]),
        ({"template_id": template_id}, ["body", "template_id"]),
        ({"cron_expression": "* * *", "schedule_type": "custom"}, ["body", "cron_expression"]),
        ({"misfire_policy": None}, ["body", "misfire_policy"]),
    ]:
        response = await client.put(url, json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["details"][0]["loc"] == loc

    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.delete(url)).status_code == 404


async def test_run_now_with_overrides(client: httpx.AsyncClient, services: Services) -> None:
    template_id = await make_template(services.sessions, config={"message": "template"})
    schedule = await _create(
        client,
        job_identifier="ad-hoc",
        template_id=template_id,
        schedule_type="daily",
        time_of_day="06:00",
        parameters={"message": "schedule"},
    )
    url = f"/api/job-schedules/{schedule['id']}/run"

    plain = await client.post(url)
    override = await client.post(url, json={"parameters": {"message": "override"}})
    bad = await client.post(url, json={"parameters": {"message": 5}})

    assert plain.status_code == override.status_code == 202
    assert override.json()["triggered_by"] == "manual"
    assert override.json()["schedule_id"] == schedule["id"]
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["loc"] == ["body", "parameters", "message"]
    await drain(services.settings)
    first = await wait_for_run(services.sessions, plain.json()["id"])
    second = await wait_for_run(services.sessions, override.json()["id"])
    assert (first.status, first.summary) == (RunStatus.COMPLETED.value, "schedule")
    assert (second.status, second.summary) == (RunStatus.COMPLETED.value, "override")


SPRING_FORWARD_FIRES = [
    ("2027-03-26T01:30:00Z", "2027-03-26T02:30:00+01:00"),
    ("2027-03-27T01:30:00Z", "2027-03-27T02:30:00+01:00"),
    ("2027-03-28T01:00:00Z", "2027-03-28T03:00:00+02:00"),  # 02:30 does not exist that day
    ("2027-03-29T00:30:00Z", "2027-03-29T02:30:00+02:00"),
]


def _fires(body: dict[str, Any]) -> list[tuple[datetime, datetime]]:
    return [(_at(fire["utc"]), _at(fire["local"])) for fire in body["fires"]]


EXPECTED = [(_at(utc), _at(local)) for utc, local in SPRING_FORWARD_FIRES]


async def test_previews_in_utc_and_local_time(
    client: httpx.AsyncClient, services: Services
) -> None:
    spec = {
        "schedule_type": "daily",
        "time_of_day": "02:30",
        "timezone": "Europe/Berlin",
        "start_at": BERLIN_DST_2027,
    }
    unsaved = await client.post("/api/job-schedules/preview", json={**spec, "count": 4})
    assert unsaved.status_code == 200
    assert unsaved.json()["timezone"] == "Europe/Berlin"
    assert _fires(unsaved.json()) == EXPECTED
    assert [fire["local"][-6:] for fire in unsaved.json()["fires"]] == ["+01:00"] * 2 + [
        "+02:00"
    ] * 2

    template_id = await make_template(services.sessions)
    saved = await _create(client, job_identifier="dst", template_id=template_id, **spec)
    response = await client.get(f"/api/job-schedules/{saved['id']}/preview", params={"count": 4})
    assert _fires(response.json()) == EXPECTED

    bad = await client.post("/api/job-schedules/preview", json={"schedule_type": "weekly"})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["loc"][0] == "body"
    too_many = await client.get(f"/api/job-schedules/{saved['id']}/preview?count=1000")
    assert too_many.status_code == 422


async def test_interval_schedule_first_fire_is_at_creation(
    client: httpx.AsyncClient, services: Services
) -> None:
    template_id = await make_template(services.sessions)
    before = datetime.now(UTC)
    body = await _create(
        client,
        job_identifier="every5",
        template_id=template_id,
        schedule_type="interval",
        interval_minutes=5,
    )
    assert before <= _at(body["next_run_at"]) <= datetime.now(UTC) + timedelta(seconds=1)


async def test_private_schedules_belong_to_their_owner(
    client: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    as_role: Callable[[Role, str], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
    services: Services,
) -> None:
    template_id = await make_template(services.sessions)
    fields = {"template_id": template_id, "schedule_type": "hourly", "is_global": False}
    assert (await anonymous.get("/api/job-schedules")).status_code == 401
    async with as_role(Role.VIEWER, "vera") as viewer:
        denied = await viewer.post("/api/job-schedules", json={**fields, "job_identifier": "v"})
        assert denied.status_code == 403
    async with as_role(Role.OPERATOR, "otto") as otto:
        mine = await _create(otto, **fields, job_identifier="otto's", owner="someone-else")
        assert mine["owner"] == "otto"
    async with as_role(Role.OPERATOR, "olga") as olga:
        assert (await olga.get("/api/job-schedules")).json()["total"] == 0
        assert (await olga.get(f"/api/job-schedules/{mine['id']}")).status_code == 404
        assert (await olga.post(f"/api/job-schedules/{mine['id']}/run")).status_code == 404
    assert (await client.get(f"/api/job-schedules/{mine['id']}")).json()["owner"] == "otto"


async def test_a_private_template_is_scheduled_only_by_those_who_see_it(
    as_role: Callable[[Role, str], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
    services: Services,
) -> None:
    template_id = await make_template(services.sessions, is_global=False, owner="otto")
    fields = {"template_id": template_id, "schedule_type": "hourly"}
    async with as_role(Role.OPERATOR, "olga") as olga:
        refused = await olga.post("/api/job-schedules", json={**fields, "job_identifier": "o"})
        assert refused.status_code == 422
        assert refused.json()["error"]["details"][0]["loc"] == ["body", "template_id"]
    async with as_role(Role.OPERATOR, "otto") as otto:
        await _create(otto, **fields, job_identifier="otto's own")
