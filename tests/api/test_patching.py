"""A partial update never stores null in a column that must hold a value."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.device_lab import condition, tree_of

EDGES = tree_of(condition("role", "equals", "edge"))


@pytest.mark.parametrize(
    ("path", "create", "field"),
    [
        (
            "/api/git-repositories",
            {"name": "configs", "url": "https://git.example/c.git"},
            "branch",
        ),
        ("/api/git-repositories", {"name": "configs", "url": "https://git.example/c.git"}, "name"),
        ("/api/command-templates", {"name": "show", "content": "show version"}, "name"),
        ("/api/inventories", {"name": "edges", "tree": EDGES}, "name"),
        ("/api/inventories", {"name": "edges", "tree": EDGES}, "tree"),
        ("/api/job-templates", {"name": "echo", "job_type": "diag.echo"}, "name"),
        ("/api/job-templates", {"name": "echo", "job_type": "diag.echo"}, "max_attempts"),
        ("/api/job-templates", {"name": "echo", "job_type": "diag.echo"}, "is_global"),
    ],
)
async def test_null_for_a_required_field_is_422(
    client: httpx.AsyncClient, path: str, create: dict[str, Any], field: str
) -> None:
    created = await client.post(path, json=create)
    assert created.status_code == 201, created.text
    response = await client.patch(f"{path}/{created.json()['id']}", json={field: None})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"] == [
        {"loc": ["body", field], "msg": "may not be null"}
    ]
    unchanged = await client.get(f"{path}/{created.json()['id']}")
    assert unchanged.json()[field] == created.json()[field]
