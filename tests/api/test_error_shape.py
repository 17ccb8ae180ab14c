"""Values the database cannot take are the client's 422, and the schema declares every error."""

from __future__ import annotations

import httpx

from service.api.app import create_app
from service.settings import Settings


async def test_values_postgresql_rejects_are_422(client: httpx.AsyncClient) -> None:
    nul = await client.get("/api/job-runs", params={"job_type": "diag\x00echo"})
    out_of_range = await client.get(f"/api/job-runs/{2**64}")
    for response in (nul, out_of_range):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_input"


async def test_created_runs_with_values_postgresql_rejects_are_422(
    client: httpx.AsyncClient,
) -> None:
    # Runs are created by a statement executed on the driver connection, not the ORM.
    nul_queue = await client.post(
        "/api/job-runs", json={"job_type": "diag.echo", "queue": "de\x00fault"}
    )
    nul_in_json = await client.post(
        "/api/job-runs", json={"job_type": "diag.echo", "parameters": {"message": "a\x00b"}}
    )
    for response in (nul_queue, nul_in_json):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_input"
    assert (await client.get("/api/job-runs")).json()["total"] == 0


async def test_bodies_that_are_not_json_answer_in_the_error_shape(
    client: httpx.AsyncClient,
) -> None:
    json_header = {"Content-Type": "application/json"}
    not_utf8 = await client.post("/api/job-runs", content=b"\xff\xfe{", headers=json_header)
    assert not_utf8.status_code == 400
    assert not_utf8.json()["error"]["code"] == "http_error"
    not_json = await client.post("/api/job-runs", content=b"{not json", headers=json_header)
    assert not_json.status_code == 422
    assert not_json.json()["error"]["details"][0]["type"] == "json_invalid"


def test_every_operation_declares_the_error_shape(settings: Settings) -> None:
    schema = create_app(settings).openapi()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status in ("401", "422", "503"):
                content = operation["responses"][status]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/ErrorOut"}, (
                    method,
                    path,
                    status,
                )
