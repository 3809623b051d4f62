"""A 405 names the method and the path, the path bounded as the 404 for an unknown service
bounds the id (``validation.shown_name``): a route's own path whole, a made-up service id
cut to the same 40 characters, however long the client made it.

A made-up service id is a 404 whatever the method (README: 404 for an unknown service
id; an integrator's ``GET /cds-services/nope`` got 405 ``Allow: POST``, which says the
URL exists), and a known URL with a trailing slash is a 404 that names the URL without
it (CDS clients build it from discovery's id; the JWT ``aud`` is checked against the
path as called, so it is not accepted as the other)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from cds_service.validation import MAX_NAME_CHARS
from tests.builders import SELECT_ID, SIGN_ID

LONG_ID = "x" * 8000


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/cds-services/{LONG_ID}"),
        ("DELETE", f"/cds-services/{LONG_ID}"),
        ("HEAD", f"/cds-services/{LONG_ID}"),
        ("PUT", f"/cds-services/{LONG_ID}/feedback"),
        ("GET", f"/cds-services/{LONG_ID}/feedback"),
    ],
    ids=["hook-get", "hook-delete", "hook-head", "feedback-put", "feedback-get"],
)
def test_an_unknown_service_id_is_a_404_whatever_the_method(
    client: FlaskClient, method: str, path: str
) -> None:
    refused = client.open(path, method=method)
    assert refused.status_code == 404
    assert "Allow" not in refused.headers
    unknown = client.post(f"/cds-services/{LONG_ID}", json={})
    assert unknown.status_code == 404
    if method != "HEAD":
        assert refused.get_json() == unknown.get_json()
    message = unknown.get_json()["message"]
    shown_id = "x" * (MAX_NAME_CHARS - 1) + "…"
    assert shown_id in message
    assert "x" * MAX_NAME_CHARS not in message
    assert len(message) < 120, message


@pytest.mark.parametrize("path", [f"/cds-services/{SELECT_ID}", f"/cds-services/{SIGN_ID}"])
def test_a_known_service_with_a_wrong_method_stays_a_405(client: FlaskClient, path: str) -> None:
    refused = client.get(path)
    assert refused.status_code == 405
    assert "POST" in refused.headers["Allow"]
    assert refused.get_json()["message"] == f"method GET is not allowed on {path}"


@pytest.mark.parametrize(
    "path", [f"/cds-services/{SELECT_ID}", f"/cds-services/{SIGN_ID}/feedback"]
)
def test_a_trailing_slash_is_a_404_that_names_the_url_without_it(
    client: FlaskClient, path: str
) -> None:
    refused = client.post(path + "/", json={})
    assert refused.status_code == 404
    assert refused.get_json() == {
        "error": "not_found",
        "message": f"no such endpoint; did you mean {path} (without the trailing slash)?",
    }


def test_a_trailing_slash_on_an_unknown_id_suggests_nothing(client: FlaskClient) -> None:
    refused = client.post("/cds-services/nope/", json={})
    assert refused.status_code == 404
    assert "did you mean" not in refused.get_json()["message"]


def test_a_405_names_a_known_path_whole(client: FlaskClient) -> None:
    path = f"/cds-services/{SELECT_ID}/feedback"
    refused = client.put(path)
    assert refused.status_code == 405
    assert refused.get_json()["message"] == f"method PUT is not allowed on {path}"
