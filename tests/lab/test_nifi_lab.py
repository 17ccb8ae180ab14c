"""The NiFi lab over real sockets: REST shapes, auth, failure injection, servers."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from lab.nifi import FailureMode, LabFlow, NifiLab, ServerTls
from lab.nifi_render import format_data_size, format_queued
from lab.nifi_tls import LabPki, generate_pki

MB = 1024 * 1024


@pytest.fixture(scope="module")
async def lab() -> AsyncIterator[NifiLab]:
    async with NifiLab(token_lifetime=600) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
        yield client


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabPki:
    return generate_pki(tmp_path_factory.mktemp("lab-pki"))


def canvas() -> LabFlow:
    flow = LabFlow(seed=3)
    ingest = flow.add_group("Ingest", running=2, stopped=1, group_id="ingest")
    flow.add_group("Parse", ingest.id, running=1, invalid=1, stale=True, group_id="parse")
    flow.add_connection(
        "top",
        source_name="GetFile",
        destination_name="PutKafka",
        flow_files=1234,
        bytes=int(5.67 * MB),
        connection_id="c-top",
    )
    flow.add_connection("deep", "parse", flow_files=7, bytes=700, connection_id="c-deep")
    return flow


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 bytes"),
        (1, "1 bytes"),
        (1024, "1,024 bytes"),
        (1536, "1.5 KB"),
        (MB, "1,024 KB"),
        (int(5.67 * MB), "5.67 MB"),
        (int(1.5 * 1024 * MB), "1.5 GB"),
        (3 * 1024**4, "3 TB"),
        (2048 * 1024**4, "2,048 TB"),
    ],
)
def test_sizes_are_displayed_as_nifi_does(size: int, text: str) -> None:
    assert format_data_size(size) == text


def test_queued_display() -> None:
    assert format_queued(1234, int(5.67 * MB)) == "1,234 (5.67 MB)"


async def test_status_entity_shape(lab: NifiLab, http: httpx.AsyncClient) -> None:
    node = lab.add_instance("shape", flow=canvas())
    response = await http.get(f"{node.url}/flow/process-groups/root/status?recursive=true")
    assert response.status_code == 200
    status = response.json()["processGroupStatus"]
    root = status["aggregateSnapshot"]
    assert (root["name"], root["flowFilesQueued"], root["bytesQueued"]) == (
        "NiFi Flow",
        1241,
        int(5.67 * MB) + 700,
    )
    top = root["connectionStatusSnapshots"][0]
    assert top["id"] == "c-top"
    snapshot = top["connectionStatusSnapshot"]
    assert snapshot["queued"] == "1,234 (5.67 MB)"
    assert (snapshot["flowFilesQueued"], snapshot["sourceName"], snapshot["destinationName"]) == (
        1234,
        "GetFile",
        "PutKafka",
    )
    ingest = root["processGroupStatusSnapshots"][0]["processGroupStatusSnapshot"]
    parse = ingest["processGroupStatusSnapshots"][0]["processGroupStatusSnapshot"]
    deep = parse["connectionStatusSnapshots"][0]["connectionStatusSnapshot"]
    assert (deep["name"], deep["groupId"], deep["queued"]) == ("deep", "parse", "7 (700 bytes)")


async def test_status_without_recursion_lists_children_totals_only(
    lab: NifiLab, http: httpx.AsyncClient
) -> None:
    node = lab.add_instance("flat", flow=canvas())
    root = (await http.get(f"{node.url}/flow/process-groups/root/status")).json()[
        "processGroupStatus"
    ]["aggregateSnapshot"]
    ingest = root["processGroupStatusSnapshots"][0]["processGroupStatusSnapshot"]
    assert "connectionStatusSnapshots" not in ingest
    assert ingest["flowFilesQueued"] == 7


async def test_older_nifi_without_numeric_queue_fields(
    lab: NifiLab, http: httpx.AsyncClient
) -> None:
    node = lab.add_instance("old", flow=canvas())
    node.numeric_queue_fields = False
    root = (await http.get(f"{node.url}/flow/process-groups/root/status?recursive=true")).json()
    snapshot = root["processGroupStatus"]["aggregateSnapshot"]["connectionStatusSnapshots"][0]
    assert "flowFilesQueued" not in snapshot["connectionStatusSnapshot"]
    assert snapshot["connectionStatusSnapshot"]["queued"] == "1,234 (5.67 MB)"


async def test_process_group_entity_counts_descendants(
    lab: NifiLab, http: httpx.AsyncClient
) -> None:
    flow = canvas()
    node = lab.add_instance("pg-entity", flow=flow)
    ingest = (await http.get(f"{node.url}/process-groups/ingest")).json()
    component = ingest["component"]
    assert (component["name"], component["parentGroupId"]) == ("Ingest", flow.root.id)
    assert (component["runningCount"], component["stoppedCount"]) == (3, 1)
    assert (component["invalidCount"], component["staleCount"]) == (1, 1)
    assert ingest["runningCount"] == 3
    parse = (await http.get(f"{node.url}/process-groups/parse")).json()
    assert parse["component"]["staleCount"] == 0  # a group's own staleness counts above it
    root = (await http.get(f"{node.url}/process-groups/root")).json()
    assert root["id"] == flow.root.id
    assert root["component"]["parentGroupId"] is None


async def test_listings_and_flow(lab: NifiLab, http: httpx.AsyncClient) -> None:
    node = lab.add_instance("listings", flow=canvas())
    children = (await http.get(f"{node.url}/process-groups/ingest/process-groups")).json()
    assert [g["component"]["name"] for g in children["processGroups"]] == ["Parse"]
    connections = (await http.get(f"{node.url}/process-groups/root/connections")).json()
    [connection] = connections["connections"]
    assert connection["component"]["source"]["name"] == "GetFile"
    assert connection["status"]["aggregateSnapshot"]["queued"] == "1,234 (5.67 MB)"
    flow = (await http.get(f"{node.url}/flow/process-groups/ingest")).json()["processGroupFlow"]
    assert flow["breadcrumb"]["breadcrumb"]["name"] == "Ingest"
    assert flow["breadcrumb"]["parentBreadcrumb"]["breadcrumb"]["name"] == "NiFi Flow"
    assert [g["id"] for g in flow["flow"]["processGroups"]] == ["parse"]
    about = (await http.get(f"{node.url}/flow/about")).json()["about"]
    assert (about["title"], about["version"]) == ("NiFi", node.version)


async def test_unknown_group_and_instance_are_404(lab: NifiLab, http: httpx.AsyncClient) -> None:
    node = lab.add_instance("notfound")
    missing = await http.get(f"{node.url}/process-groups/nope")
    assert (missing.status_code, missing.text) == (404, "Unable to locate group with id 'nope'.")
    assert (await http.get(f"{lab.base_url}/i/ghost/nifi-api/flow/about")).status_code == 404


async def test_runtime_changes_are_served(lab: NifiLab, http: httpx.AsyncClient) -> None:
    flow = canvas()
    node = lab.add_instance("mutable", flow=flow)
    flow.set_queue("c-top", flow_files=5, bytes=0)
    root = (await http.get(f"{node.url}/flow/process-groups/root/status?recursive=true")).json()
    top = root["processGroupStatus"]["aggregateSnapshot"]["connectionStatusSnapshots"][0]
    assert top["connectionStatusSnapshot"]["queued"] == "5 (0 bytes)"


async def test_token_login(lab: NifiLab, http: httpx.AsyncClient) -> None:
    node = lab.add_instance("login", users={"admin": "pw"})
    assert (await http.get(f"{node.url}/flow/about")).status_code == 401
    bad = await http.post(f"{node.url}/access/token", data={"username": "admin", "password": "x"})
    assert bad.status_code == 400
    good = await http.post(f"{node.url}/access/token", data={"username": "admin", "password": "pw"})
    assert good.status_code == 201
    token = good.text
    assert token.count(".") == 2
    headers = {"Authorization": f"Bearer {token}"}
    assert (await http.get(f"{node.url}/flow/about", headers=headers)).status_code == 200
    other = lab.add_instance("login-other", users={"admin": "pw"})
    assert (await http.get(f"{other.url}/flow/about", headers=headers)).status_code == 401
    lab.expire_tokens("login")
    assert (await http.get(f"{node.url}/flow/about", headers=headers)).status_code == 401
    anonymous = lab.add_instance("no-login")
    no_login = await http.post(f"{anonymous.url}/access/token", data={"username": "a"})
    assert no_login.status_code == 409


async def test_tokens_expire_by_lifetime(lab: NifiLab, http: httpx.AsyncClient) -> None:
    node = lab.add_instance("short", users={"admin": "pw"})
    lab.token_lifetime = 0.05
    try:
        token = (
            await http.post(
                f"{node.url}/access/token", data={"username": "admin", "password": "pw"}
            )
        ).text
    finally:
        lab.token_lifetime = 600
    await asyncio.sleep(0.1)
    response = await http.get(
        f"{node.url}/flow/about", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401


async def test_oidc_provider(lab: NifiLab, http: httpx.AsyncClient) -> None:
    lab.add_oidc_client("lab-client", "lab-secret")
    node = lab.add_instance("oidc-node", oidc=True)
    discovery = (await http.get(lab.oidc_discovery_url)).json()
    token_endpoint = discovery["token_endpoint"]
    assert token_endpoint.endswith("/realms/lab/protocol/openid-connect/token")
    form = {"grant_type": "client_credentials"}
    basic = await http.post(token_endpoint, data=form, auth=("lab-client", "lab-secret"))
    posted = await http.post(
        token_endpoint, data=form | {"client_id": "lab-client", "client_secret": "lab-secret"}
    )
    assert basic.status_code == posted.status_code == 200
    assert basic.json()["token_type"] == "Bearer"
    denied = await http.post(token_endpoint, data=form, auth=("lab-client", "nope"))
    assert (denied.status_code, denied.json()["error"]) == (401, "invalid_client")
    wrong_grant = await http.post(token_endpoint, data={"grant_type": "password"})
    assert wrong_grant.status_code == 400
    headers = {"Authorization": f"Bearer {basic.json()['access_token']}"}
    assert (await http.get(f"{node.url}/flow/about", headers=headers)).status_code == 200


@pytest.mark.parametrize(
    ("mode", "status"),
    [(FailureMode.DOWN, 503), (FailureMode.ERROR, 500), (FailureMode.UNAUTHORIZED, 401)],
)
async def test_injected_failures_for_a_number_of_requests(
    lab: NifiLab, http: httpx.AsyncClient, mode: FailureMode, status: int
) -> None:
    node = lab.add_instance(f"fail-{mode.value}")
    node.fail(mode, times=2)
    codes = [(await http.get(f"{node.url}/flow/about")).status_code for _ in range(3)]
    assert codes == [status, status, 200]
    assert node.failure is FailureMode.NONE


async def test_latency_and_hang(lab: NifiLab, http: httpx.AsyncClient) -> None:
    node = lab.add_instance("slow", latency=0.1)
    started = time.perf_counter()
    assert (await http.get(f"{node.url}/flow/about")).status_code == 200
    assert time.perf_counter() - started >= 0.1
    node.latency = 0
    node.fail(FailureMode.HANG)
    with pytest.raises(httpx.ReadTimeout):
        await http.get(f"{node.url}/flow/about", timeout=0.2)


async def test_many_instances_answer_concurrently_with_latency(
    lab: NifiLab, http: httpx.AsyncClient
) -> None:
    nodes = [lab.add_instance(f"many-{i}", latency=0.05) for i in range(100)]
    started = time.perf_counter()
    responses = await asyncio.gather(*(http.get(f"{n.url}/flow/about") for n in nodes))
    elapsed = time.perf_counter() - started
    assert {r.status_code for r in responses} == {200}
    # Latencies overlap rather than add up (one after another would take 5 s); the
    # margin survives a loaded machine.
    assert elapsed < 2.5


async def test_dedicated_server_refuses_when_stopped_and_comes_back(
    lab: NifiLab, http: httpx.AsyncClient
) -> None:
    node = lab.add_instance("dedicated")
    url = await lab.serve_dedicated("dedicated")
    assert url != f"{lab.base_url}/i/dedicated/nifi-api"
    assert (await http.get(f"{url}/flow/about")).status_code == 200
    await lab.stop_dedicated("dedicated")
    with pytest.raises(httpx.ConnectError):
        await http.get(f"{url}/flow/about")
    await lab.restart_dedicated("dedicated")
    assert (await http.get(f"{node.url}/flow/about")).status_code == 200


async def test_dedicated_mutual_tls(lab: NifiLab, pki: LabPki) -> None:
    lab.add_instance("mtls-lab", anonymous=False)
    tls = ServerTls(pki.server_cert, pki.server_key, pki.ca_cert, require_client_cert=True)
    url = await lab.serve_dedicated("mtls-lab", tls=tls)
    with_cert = ssl.create_default_context(cafile=str(pki.ca_cert))
    with_cert.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    async with httpx.AsyncClient(verify=with_cert, trust_env=False) as client:
        assert (await client.get(f"{url}/flow/about")).status_code == 200
    without_cert = ssl.create_default_context(cafile=str(pki.ca_cert))
    async with httpx.AsyncClient(verify=without_cert, trust_env=False) as client:
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            await client.get(f"{url}/flow/about")


def test_generated_flows_are_deterministic() -> None:
    first = LabFlow.generate(11, groups=6, connections=30, max_depth=2)
    second = LabFlow.generate(11, groups=6, connections=30, max_depth=2)
    assert [c.id for c in first.connections.values()] == [c.id for c in second.connections.values()]
    assert [(c.flow_files, c.bytes) for c in first.connections.values()] == [
        (c.flow_files, c.bytes) for c in second.connections.values()
    ]
    assert len(first.groups) == 7
    assert max(first.path_of(g).count("/") for g in first.groups.values()) <= 3
    assert all(c.flow_files < 500 for c in first.connections.values())


def test_flow_refuses_unknown_groups_and_duplicate_ids() -> None:
    flow = LabFlow()
    flow.add_group("A", group_id="a")
    with pytest.raises(ValueError, match="duplicate"):
        flow.add_group("B", group_id="a")
    with pytest.raises(KeyError):
        flow.add_connection("q", "missing")


def test_instance_names_must_fit_in_a_path() -> None:
    lab = NifiLab()
    with pytest.raises(ValueError, match="names"):
        lab.add_instance("a/b")
    with pytest.raises(RuntimeError, match="before the lab starts"):
        _ = lab.add_instance("early").url


def test_pki_files_are_written(tmp_path: Path) -> None:
    pki = generate_pki(tmp_path / "pki", client_key_password="pw")
    assert b"ENCRYPTED" in pki.client_key.read_bytes()
    assert pki.ca_cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
