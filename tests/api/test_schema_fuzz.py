"""Property-based fuzzing of every operation of the OpenAPI schema with Schemathesis.

The API runs as ``opsjobs api`` in a child process (the fuzzer's HTTP client is
synchronous, and the in-test server shares pytest's event loop). Valid and invalid inputs
are generated per operation; every response must be a non-5xx that the schema declares,
with the declared content type and body shape.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import update

from executors.services import Services
from service.db.security_models import ApiToken, Role
from tests.conftest import TEST_DATABASE_URL, TEST_KEY_FILE, TEST_REDIS_URL, free_port, token_for

MIN_CASES = 1000
EXAMPLES_PER_OPERATION = 20
# The admin token gets an id no generated path parameter is likely to hit, so the fuzzer
# does not revoke the token it works with.
FUZZER_TOKEN_ID = 7_340_033
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Live event streams stay open while a run is active; they have their own tests.
# The live event stream has tests of its own; a channel's test send would reach whatever URL
# the fuzzer saved in a channel, and only loopback may be contacted from here.
NOT_FUZZED = r"/events$|/notifications/channels/\{channel_id\}/test$"


@pytest.fixture
def api_process(services: Services) -> Iterator[str]:
    """``opsjobs api`` on a free port against the test database and Redis."""
    settings = services.settings
    port = free_port()
    env = {
        **os.environ,
        "OPSJOBS_DATABASE__URL": TEST_DATABASE_URL,
        "OPSJOBS_REDIS__URL": TEST_REDIS_URL,
        "OPSJOBS_REDIS__PREFIX": settings.redis.prefix,
        "OPSJOBS_SECRETS__KEY_FILE": str(TEST_KEY_FILE),
        "OPSJOBS_QUEUES__DEFAULT": settings.queues.default,
        "OPSJOBS_QUEUES__DEVICES": settings.queues.devices,
        "OPSJOBS_QUEUES__SCHEDULER": settings.queues.scheduler,
        "OPSJOBS_API__HOST": "127.0.0.1",
        "OPSJOBS_API__PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "--log-level", "ERROR", "api"], env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "opsjobs api exited"
            assert time.monotonic() < deadline, "opsjobs api did not start"
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def fuzzer_token(services: Services) -> str:
    token = await token_for(services, Role.ADMIN, "fuzzer")
    async with services.sessions.begin() as session:
        await session.execute(update(ApiToken).values(id=FUZZER_TOKEN_ID))
    return token


@pytest.mark.timeout(120)
def test_every_operation_answers_within_its_schema(api_process: str, fuzzer_token: str) -> None:
    schema = schemathesis.openapi.from_url(f"{api_process}/openapi.json").exclude(
        path_regex=NOT_FUZZED
    )
    headers = {"Authorization": f"Bearer {fuzzer_token}"}
    cases = 0
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        strategy = operation.as_strategy(generation_mode=GenerationMode.POSITIVE) | (
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
        )

        @given(case=strategy)
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            nonlocal cases
            cases += 1
            response = case.call(base_url=api_process, headers=headers, timeout=10)
            case.validate_response(response, checks=CHECKS)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # every failing operation is reported
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:2000]
    for label, failure in failures.items():
        print(f"--- {label}\n{failure}")
    assert failures == {}
    print(f"{cases} cases over {len(operations)} operations")
    assert cases >= MIN_CASES
