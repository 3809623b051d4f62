"""The tools' one reading of a request that got no answer (tools/errors.send): the FHIR
endpoint, the remote service and the bulk export each say it in the same words, with
their own error class and exit code."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from cds_service.bulk_export.results import BulkExportError
from cds_service.tools.errors import FhirServerError, InputError, ServiceError, send
from cds_service.tools.fhir_http import FhirEndpoint
from cds_service.tools.services import RemoteService
from spine_cds_dev.service_process import free_port


@pytest.fixture
def silent() -> Iterator[str]:
    """A server that takes the connection and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_closed_port_is_said_as_unreachable_by_each_tool() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(FhirServerError, match=f"cannot reach the FHIR server at {closed}/fhir"):
        FhirEndpoint(f"{closed}/fhir").read_patient("p1")
    with pytest.raises(ServiceError, match=f"cannot reach the service at {closed}: connection"):
        RemoteService(closed).discovery()


def test_no_answer_in_time_is_said_with_the_timeout(silent: str) -> None:
    with pytest.raises(ServiceError, match=rf"the service at {silent} did not answer within 0.3 s"):
        RemoteService(silent, timeout=0.3).discovery()
    with requests.Session() as session, pytest.raises(BulkExportError) as caught:
        send(
            session,
            "GET",
            silent,
            timeout=0.3,
            peer="127.0.0.1",
            error=BulkExportError,
            prefix="the export kick-off: ",
        )
    assert caught.value.message == "the export kick-off: 127.0.0.1 did not answer within 0.3 s"


def test_a_request_that_cannot_be_sent_names_its_kind_never_its_text() -> None:
    token = "secret-token\nX-Injected: 1"  # a header requests refuses to send
    with requests.Session() as session, pytest.raises(InputError) as caught:
        send(
            session,
            "GET",
            f"http://127.0.0.1:{free_port()}",
            timeout=1,
            peer="the FHIR server",
            error=FhirServerError,
            headers={"Authorization": f"Bearer {token}"},
        )
    assert caught.value.message == "cannot call the FHIR server: InvalidHeader"
