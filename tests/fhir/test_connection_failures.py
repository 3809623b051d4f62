"""Why a connection to the FHIR server failed, said so an on-call engineer can act.

An integrator's review (2026-12-07): a host name that does not resolve, a certificate from
a private CA and a refused port all read "the connection to the FHIR server failed
(refused, reset or closed)". Each is produced here by a real socket: a port nothing
listens on, a name under .invalid (RFC 6761: never resolves), an https server whose
certificate no CA signed, and https spoken to a plain-http server.
"""

from __future__ import annotations

import datetime
import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.fhir.test_faults import QUERY, make_client, timed_fetch

pytestmark = pytest.mark.timeout(60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _serving(server: http.server.ThreadingHTTPServer) -> Iterator[int]:
    """``server`` answering in a thread while the fixture lasts: its port; stopped after."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def plain_server() -> Iterator[int]:
    yield from _serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet))


@pytest.fixture(scope="module")
def self_signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """An https server with a certificate that no CA in the bundle signed (as a hospital's
    private CA looks to a service that was not given it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    folder: Path = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield from _serving(server)


def reason_for(fhir_server: str) -> str:
    client = make_client(fhir_connect_timeout_seconds=2, fhir_read_timeout_seconds=2,
                         fhir_budget_seconds=4)  # fmt: skip
    try:
        result, _ = timed_fetch(client, fhir_server, {"crp": QUERY})
    finally:
        client.close()
    return result.errors["crp"].reason


def test_a_refused_port() -> None:
    reason = reason_for(f"http://127.0.0.1:{free_port()}/fhir")
    assert reason == "the FHIR server refused the connection (nothing listening at that port?)"


def test_a_host_name_that_does_not_resolve() -> None:
    reason = reason_for("https://fhir.no-such-hospital.invalid/fhir")
    assert reason == "the FHIR server's host name could not be resolved (DNS)"


def test_a_certificate_no_ca_in_the_bundle_signed(self_signed_server: int) -> None:
    reason = reason_for(f"https://127.0.0.1:{self_signed_server}/fhir")
    assert reason.startswith("the FHIR server's TLS certificate is not trusted")
    assert "REQUESTS_CA_BUNDLE" in reason


def test_https_to_a_plain_http_port(plain_server: int) -> None:
    reason = reason_for(f"https://127.0.0.1:{plain_server}/fhir")
    assert reason == "the TLS handshake with the FHIR server failed"
