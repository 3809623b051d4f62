"""A body sent with a content coding the service does not read (anything but identity) is
refused with 415, naming the coding (RFC 9110 section 15.5.16), on every endpoint that
reads a body; ``Accept-Encoding: identity`` says what would have been read. Before, the
header was ignored: a gzipped body got "not valid UTF-8", a plain one labelled gzip was
read as if unlabelled."""

from __future__ import annotations

import gzip
import json

import pytest
from flask.testing import FlaskClient

from tests.builders import EMPTY_PREFETCH, SELECT_ID, hook_request, service_request

HOOK = f"/cds-services/{SELECT_ID}"
FEEDBACK = f"/cds-services/{SELECT_ID}/feedback"
ENDPOINTS = [HOOK, FEEDBACK]


def _body(path: str) -> bytes:
    if path == FEEDBACK:
        entry = {
            "card": "8a3f7a5e-7b0a-4c52-9c6f-6f9f2d0f1a11",
            "outcome": "accepted",
            "outcomeTimestamp": "2026-12-06T10:15:00Z",
        }
        return json.dumps({"feedback": [entry]}).encode()
    body = hook_request("order-select", [service_request("o1")], prefetch=dict(EMPTY_PREFETCH))
    return json.dumps(body).encode()


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    ("coding", "named"),
    [("gzip", "gzip"), ("GZIP", "gzip"), ("br", "br"), ("gzip, identity", "gzip")],
)
def test_a_plain_body_labelled_with_a_coding_is_refused(
    client: FlaskClient, path: str, coding: str, named: str
) -> None:
    response = client.post(
        path,
        data=_body(path),
        content_type="application/json",
        headers={"Content-Encoding": coding},
    )
    assert response.status_code == 415
    body = response.get_json()
    assert body["error"] == "unsupported_content_encoding"
    assert f"Content-Encoding {named!r}" in body["message"], body
    assert response.headers["Accept-Encoding"] == "identity"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_gzipped_body_is_refused_for_its_coding_not_its_bytes(
    client: FlaskClient, path: str
) -> None:
    response = client.post(
        path,
        data=gzip.compress(_body(path)),
        content_type="application/json",
        headers={"Content-Encoding": "gzip"},
    )
    assert response.status_code == 415
    assert "gzip" in response.get_json()["message"]
    assert "UTF-8" not in response.get_json()["message"]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("coding", [None, "identity", "Identity", ""])
def test_an_unencoded_body_is_read(client: FlaskClient, path: str, coding: str | None) -> None:
    headers = {} if coding is None else {"Content-Encoding": coding}
    response = client.post(path, data=_body(path), content_type="application/json", headers=headers)
    assert response.status_code == 200, response.get_json()


def test_a_long_coding_is_named_bounded(client: FlaskClient) -> None:
    response = client.post(
        HOOK,
        data=_body(HOOK),
        content_type="application/json",
        headers={"Content-Encoding": "x" * 5000},
    )
    assert response.status_code == 415
    assert len(response.get_json()["message"]) < 300
