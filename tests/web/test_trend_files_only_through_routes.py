"""The trend app's built files are served only by the /trend routes (with their checks and
their Content-Security-Policy), never by Flask's default static route: /static/trend/...
served launch.html without the launch's check of ``iss``, and every file without the
app's CSP."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from cds_service.routes.trend_app import ASSETS, FILES

FORMER_STATIC = [f"/static/trend/{name}" for name in FILES] + ["/static/", "/static/trend/"]


@pytest.mark.parametrize("path", FORMER_STATIC)
def test_nothing_is_served_under_static(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


@pytest.mark.parametrize("path", [*(f"/trend/{name}" for name in ASSETS), "/trend/"])
def test_the_trend_routes_still_serve_the_files(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.get_data()


def test_no_route_but_the_trend_routes_serves_files(client: FlaskClient) -> None:
    rules = {rule.rule for rule in client.application.url_map.iter_rules()}
    assert not any(rule.startswith("/static") for rule in rules), rules
