"""Shared fixtures: the app in process (every hook response checked for conformance)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service.app import create_app
from cds_service.settings import Settings, load_settings
from tests.support.conformance import assert_conformant_response

HOOK_PATH = re.compile(r"^/cds-services/[^/]+$")


class ConformanceCheckingClient(FlaskClient):
    """A test client that checks every 200 hook response against the response schema."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = super().open(*args, **kwargs)
        request_path = response.request.path
        if response.request.method == "POST" and HOOK_PATH.match(request_path):
            if response.status_code == 200:
                assert_conformant_response(response.get_json())
            else:
                body = response.get_json(silent=True)
                assert isinstance(body, dict) and body.get("error"), "errors must be JSON"
        return response


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "dev_mode": True,
        "database_path": str(tmp_path / "spine-cds.sqlite3"),
    }
    values.update(overrides)
    return load_settings(environ={}, overrides=values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def app(settings: Settings) -> Flask:
    app = create_app(settings)
    app.test_client_class = ConformanceCheckingClient
    return app


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as test_client:
        yield test_client
