"""A 405 names the method and the path, the path bounded as the 404 for an unknown service
bounds the id (``validation.shown_name``): a route's own path whole, a made-up service id
cut to the same 40 characters, however long the client made it."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from cds_service.validation import MAX_NAME_CHARS
from tests.builders import SELECT_ID

LONG_ID = "x" * 8000


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", f"/cds-services/{LONG_ID}"), ("PUT", f"/cds-services/{LONG_ID}/feedback")],
    ids=["hook", "feedback"],
)
def test_a_405_cuts_a_long_path_as_the_404_cuts_the_id(
    client: FlaskClient, method: str, path: str
) -> None:
    refused = client.open(path, method=method)
    assert refused.status_code == 405
    assert "POST" in refused.headers["Allow"]
    message = refused.get_json()["message"]
    unknown = client.post(f"/cds-services/{LONG_ID}", json={}).get_json()["message"]
    shown_id = "x" * (MAX_NAME_CHARS - 1) + "…"
    assert shown_id in unknown
    assert shown_id in message
    assert "x" * MAX_NAME_CHARS not in message
    assert len(message) < 120, message


def test_a_405_names_a_known_path_whole(client: FlaskClient) -> None:
    path = f"/cds-services/{SELECT_ID}/feedback"
    refused = client.put(path)
    assert refused.status_code == 405
    assert refused.get_json()["message"] == f"method PUT is not allowed on {path}"
