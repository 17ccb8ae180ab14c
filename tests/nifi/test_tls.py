"""TLS against the lab over real handshakes: every failure kind named and never retried,
PKCS#12 and PEM stores from files and from stored content."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.nifi import NifiLab, ServerTls
from lab.nifi_tls import LabPki, generate_pki, write_pkcs12
from service.db.nifi_models import AuthMode
from service.nifi.endpoints import TlsStore
from service.nifi.errors import NifiTlsError, NifiTlsSetupError
from service.nifi.pool import NifiClientPool
from service.nifi.resources import RetryPolicy
from tests.nifi.conftest import endpoint_for

# A retry would wait this long: a failure answered sooner was not retried.
SLOW_RETRY = RetryPolicy(attempts=3, backoff=20.0, backoff_max=20.0)


async def serve(lab: NifiLab, name: str, tls: ServerTls) -> str:
    lab.add_instance(name, anonymous=not tls.require_client_cert)
    return await lab.serve_dedicated(name, tls=tls)


def mutual(pki: LabPki) -> ServerTls:
    return ServerTls(pki.server_cert, pki.server_key, pki.ca_cert, require_client_cert=True)


def plain(pki: LabPki) -> ServerTls:
    return ServerTls(pki.server_cert, pki.server_key)


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LabPki]:
    def make(name: str, **options: object) -> LabPki:
        return generate_pki(tmp_path_factory.mktemp(name), **options)  # type: ignore[arg-type]

    return {
        "stranger": make("stranger", ca_common_name="another CA"),
        "elsewhere": make("elsewhere", hostnames=("nifi.example",), addresses=("10.9.9.9",)),
        "expired": make("expired", server_expired=True),
        "foreign-client": make("foreign", ca_common_name="foreign CA"),
    }


@pytest.mark.parametrize(
    ("case", "kind", "words"),
    [
        ("unknown CA", "unknown_ca", "not signed by a CA this instance trusts"),
        ("hostname", "hostname_mismatch", "not valid for this host name"),
        ("expired", "certificate_expired", "has expired"),
        ("no client certificate", "client_certificate_refused", "refused the client"),
        ("foreign client certificate", "client_certificate_refused", "refused the client"),
    ],
)
async def test_each_tls_failure_is_named_and_not_retried(
    lab: NifiLab,
    pki: LabPki,
    pkis: dict[str, LabPki],
    unique: Callable[[str], str],
    case: str,
    kind: str,
    words: str,
) -> None:
    trust = str(pki.ca_cert)
    options: dict[str, object] = {}
    if case == "unknown CA":
        url = await serve(lab, unique("tls"), plain(pkis["stranger"]))
    elif case == "hostname":
        url = await serve(lab, unique("tls"), plain(pkis["elsewhere"]))
        trust = str(pkis["elsewhere"].ca_cert)
    elif case == "expired":
        url = await serve(lab, unique("tls"), plain(pkis["expired"]))
        trust = str(pkis["expired"].ca_cert)
    else:
        url = await serve(lab, unique("mtls"), mutual(pki))
        if case == "foreign client certificate":
            foreign = pkis["foreign-client"]
            options = {
                "auth": AuthMode.CLIENT_CERTIFICATE,
                "client_cert_path": str(foreign.client_cert),
                "client_key_path": str(foreign.client_key),
            }
    endpoint = endpoint_for("tls-node", url, ca_bundle=trust, **options)
    started = time.perf_counter()
    async with NifiClientPool(retry=SLOW_RETRY) as pool:
        with pytest.raises(NifiTlsError, match=words) as caught:
            await pool.get(endpoint).about()
    assert time.perf_counter() - started < SLOW_RETRY.backoff / 2
    assert caught.value.kind == kind
    assert caught.value.details == {"tls_error": kind}
    assert caught.value.message.startswith("tls-node: TLS: ")


async def test_pkcs12_keystore_and_truststore_files(
    lab: NifiLab,
    pool: NifiClientPool,
    pki: LabPki,
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    stores = write_pkcs12(pki, tmp_path / "stores", "store-pass")
    url = await serve(lab, unique("p12"), mutual(pki))
    endpoint = endpoint_for(
        "p12",
        url,
        auth=AuthMode.CLIENT_CERTIFICATE,
        keystore=TlsStore(path=str(stores.keystore), password=stores.password),
        truststore=TlsStore(path=str(stores.truststore), password=stores.password),
    )
    assert (await pool.get(endpoint).about()).title == "NiFi"
    wrong = endpoint_for(
        "p12-wrong",
        url,
        auth=AuthMode.CLIENT_CERTIFICATE,
        keystore=TlsStore(path=str(stores.keystore), password="nope"),
        truststore=TlsStore(path=str(stores.truststore), password=stores.password),
    )
    with pytest.raises(NifiTlsSetupError, match="PKCS#12 store this password opens"):
        await pool.get(wrong).about()


async def test_stored_pem_keystore_and_truststore(
    lab: NifiLab, pool: NifiClientPool, pki: LabPki, unique: Callable[[str], str]
) -> None:
    url = await serve(lab, unique("pem"), mutual(pki))
    identity = pki.client_cert.read_bytes() + pki.client_key.read_bytes()
    endpoint = endpoint_for(
        "stored-pem",
        url,
        auth=AuthMode.CLIENT_CERTIFICATE,
        keystore=TlsStore(content=identity, password=pki.client_key_password),
        truststore=TlsStore(content=pki.ca_cert.read_bytes()),
    )
    assert (await pool.get(endpoint).about()).title == "NiFi"
    keyless = TlsStore(content=pki.client_cert.read_bytes())
    with pytest.raises(NifiTlsSetupError, match="no private key"):
        await pool.get(
            endpoint_for(
                "keyless",
                url,
                auth=AuthMode.CLIENT_CERTIFICATE,
                keystore=keyless,
                truststore=TlsStore(content=pki.ca_cert.read_bytes()),
            )
        ).about()


def test_a_store_is_a_file_or_content() -> None:
    with pytest.raises(ValueError, match="either a file or stored content"):
        TlsStore()
    with pytest.raises(ValueError, match="either a file or stored content"):
        TlsStore(path="a.p12", content=b"x")
