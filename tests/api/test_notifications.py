"""``/api/notifications``: channels (validated, secrets write-only, private or global), rules,
the test send and the deliveries list's filters."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx

from lab.alert_sink import AlertSink
from service.db.security_models import Role
from tests.conftest import free_port
from tests.notify.conftest import WEBHOOK_SECRET, email_channel, webhook_channel

AsRole = Callable[[Role, str], AbstractAsyncContextManager[httpx.AsyncClient]]


async def test_channel_config_errors_name_the_field(client: httpx.AsyncClient) -> None:
    cases = [
        ({"type": "webhook", "config": {"url": "http://h/x"}}, ["body", "config", "secret"]),
        (
            {"type": "webhook", "config": {"url": "ftp://h/x", "secret": WEBHOOK_SECRET}},
            ["body", "config", "url"],
        ),
        (
            {"type": "webhook", "config": {"url": "http://h", "secret": "short"}},
            ["body", "config", "secret"],
        ),
        (
            {
                "type": "webhook",
                "config": {
                    "url": "http://h",
                    "secret": WEBHOOK_SECRET,
                    "headers": {"X-Opsjobs-Signature": "forged"},
                },
            },
            ["body", "config", "headers"],
        ),
        (
            {"type": "email", "config": {"host": "smtp", "from_address": "a@b", "to": ["nobody"]}},
            ["body", "config", "to"],
        ),
        (
            {
                "type": "email",
                "config": {
                    "host": "smtp",
                    "from_address": "a@b",
                    "to": ["x@y"],
                    "credential_id": 9,
                },
            },
            ["body", "config", "credential_id"],
        ),
        ({"type": "slack", "config": {}}, ["body", "config", "url"]),
    ]
    for body, loc in cases:
        response = await client.post("/api/notifications/channels", json={"name": "c", **body})
        assert response.status_code == 422, body
        error = response.json()["error"]
        assert error["details"][0]["loc"] == loc, body
    bad_type = await client.post(
        "/api/notifications/channels", json={"name": "c", "type": "pager", "config": {}}
    )
    assert bad_type.status_code == 422


async def test_the_secret_is_write_only_and_private_channels_stay_private(
    client: httpx.AsyncClient, as_role: AsRole, sink: AlertSink
) -> None:
    async with as_role(Role.OPERATOR, "olga") as olga, as_role(Role.OPERATOR, "omar") as omar:
        created = await olga.post(
            "/api/notifications/channels",
            json={
                "name": "olga's hook",
                "type": "webhook",
                "config": {"url": sink.hook_url("tests"), "secret": WEBHOOK_SECRET},
            },
        )
        assert created.status_code == 201
        channel = created.json()
        assert channel["has_secret"] is True
        assert channel["is_global"] is False
        assert "secret" not in channel["config"]
        assert WEBHOOK_SECRET not in created.text
        assert (await omar.get(f"/api/notifications/channels/{channel['id']}")).status_code == 404
        refused = await omar.post(
            "/api/notifications/rules",
            json={"name": "r", "events": ["run.failed"], "channel_ids": [channel["id"]]},
        )
        assert refused.status_code == 422
        assert refused.json()["error"]["details"][0]["loc"] == ["body", "channel_ids", 0]
        own_rule = await olga.post(
            "/api/notifications/rules",
            json={"name": "r", "events": ["run.failed"], "channel_ids": [channel["id"]]},
        )
        assert own_rule.status_code == 201
        renamed = await olga.patch(
            f"/api/notifications/channels/{channel['id']}",
            json={"config": {"url": sink.hook_url("tests")}},
        )
        assert renamed.json()["has_secret"] is True  # kept when the new config names none
    async with as_role(Role.VIEWER, "vera") as vera:
        denied = await vera.post(
            "/api/notifications/rules",
            json={"name": "r", "events": ["run.failed"], "channel_ids": [channel["id"]]},
        )
        assert denied.status_code == 403
    assert (await client.get(f"/api/notifications/channels/{channel['id']}")).status_code == 200


async def test_rules_refuse_unknown_events(client: httpx.AsyncClient, sink: AlertSink) -> None:
    hook = await webhook_channel(client, sink)
    response = await client.post(
        "/api/notifications/rules",
        json={"name": "r", "events": ["run.exploded"], "channel_ids": [hook]},
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"][:3] == ["body", "events", 0]


async def test_a_test_send_returns_the_receivers_answer(
    client: httpx.AsyncClient, sink: AlertSink
) -> None:
    hook = await webhook_channel(client, sink)
    answered = (await client.post(f"/api/notifications/channels/{hook}/test")).json()
    assert answered["ok"] is True
    assert answered["status_code"] == 200
    assert '"ok":true' in answered["response"]
    assert sink.webhooks[0].signature_ok is True
    assert sink.webhooks[0].body["event"] == "test"

    mail = await email_channel(client, sink)
    mailed = (await client.post(f"/api/notifications/channels/{mail}/test")).json()
    assert mailed["ok"] is True
    assert sink.mails[0].subject.startswith("[opsjobs info] Test message")

    sink.answer_status = 503
    refused = (await client.post(f"/api/notifications/channels/{hook}/test")).json()
    assert refused == {**refused, "ok": False, "status_code": 503, "error": "HTTP 503"}

    nowhere = await client.post(
        "/api/notifications/channels",
        json={
            "name": "nowhere",
            "type": "slack",
            "config": {"url": f"http://127.0.0.1:{free_port()}/hook"},
        },
    )
    unreachable = (
        await client.post(f"/api/notifications/channels/{nowhere.json()['id']}/test")
    ).json()
    assert unreachable["ok"] is False
    assert unreachable["status_code"] is None
    assert "Connect" in unreachable["error"]


async def test_delivery_filters_are_checked(client: httpx.AsyncClient) -> None:
    bad = await client.get("/api/notifications/deliveries", params={"status": "lost"})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["loc"] == ["query", "status"]
    empty = await client.get(
        "/api/notifications/deliveries", params={"status": "failed,pending", "event": "run.failed"}
    )
    assert empty.json()["total"] == 0
    assert (await client.get("/api/notifications/deliveries/12345")).status_code == 404
