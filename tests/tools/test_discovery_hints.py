"""What ``find_service`` says when discovery is refused: whether a client JWT was sent
decides the hint (``spine-cds try --client-key`` sends one; the other tools send none)."""

from __future__ import annotations

import pytest

from cds_service.tools.errors import ServiceError
from cds_service.tools.services import Answer, find_service

REFUSED = Answer(401, "", request_id="3f0c9d7e")


def test_a_refused_signed_call_points_at_the_audience_and_the_log() -> None:
    with pytest.raises(ServiceError) as caught:
        find_service(REFUSED, "order-select", "http://127.0.0.1:8080", signed=True)
    message = str(caught.value)
    assert "sent no client JWT" not in message and "no client JWT was sent" not in message
    assert "--service-url is not the service's public_base_url" in message
    assert "JWT's audience" in message
    assert "request id 3f0c9d7e" in message


def test_a_refused_signed_call_without_request_id_still_names_the_log() -> None:
    with pytest.raises(ServiceError) as caught:
        find_service(Answer(401, ""), "order-select", "http://s", signed=True)
    assert "service's log" in str(caught.value)


def test_a_refused_unsigned_call_says_no_jwt_was_sent() -> None:
    with pytest.raises(ServiceError) as caught:
        find_service(REFUSED, "order-select", "http://127.0.0.1:8080")
    message = str(caught.value)
    assert "no client JWT was sent" in message
    assert "--client-key" in message
    assert "development mode" in message
