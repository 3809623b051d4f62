"""Shared fixtures: the app in process (every hook response checked for conformance)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service.app import create_app
from cds_service.settings import Settings, load_settings
from cds_service.stores import Database, SqliteDatabase
from cds_service.stores.sql import PostgresDatabase
from tests.support.conformance import assert_conformant_response
from tests.support.pg_server import PostgresServer, running_postgres
from tests.support.redis_server import running_redis

HOOK_PATH = re.compile(r"^/cds-services/[^/]+$")
# The default database_path, relative: run from the checkout, a service or tool without
# SPINE_CDS_DATABASE_PATH writes its audit rows there. A newcomer found four made-up
# invocations in the checkout's database after the test script, shown by `report` as
# traffic they never sent.
CHECKOUT_DATABASE = Path(__file__).resolve().parents[1] / "spine-cds.sqlite3"


@pytest.fixture(scope="session", autouse=True)
def _checkout_database_at_start() -> bool:
    """Whether the checkout had its default database before the run (a developer's own,
    left out of the check). Set up before any module's fixtures, which may start a
    service."""
    return CHECKOUT_DATABASE.exists()


_REPORTED: list[str] = []


@pytest.fixture(autouse=True)
def _leaves_the_checkouts_database_alone(
    request: pytest.FixtureRequest, _checkout_database_at_start: bool
) -> Iterator[None]:
    """The first test after which the checkout's default database exists fails, naming
    itself (or its module's fixtures, which may have started the service that wrote it):
    whatever a test starts must get a database in a temporary directory.

    The message names the other likely cause too: a service started in the same checkout
    while the tests run (the README's ``scripts/serve.sh``, in a second terminal) writes
    the file as well, and an outside review was told to fix a test that had done
    nothing."""
    yield
    if _checkout_database_at_start or _REPORTED or not CHECKOUT_DATABASE.exists():
        return
    _REPORTED.append(request.node.nodeid)
    pytest.fail(
        f"{CHECKOUT_DATABASE.name} appeared in the checkout during this test or its "
        "module's fixtures: give what they start SPINE_CDS_DATABASE_PATH (or "
        "database_path) in a temporary directory; or something else running in this "
        "checkout, such as scripts/serve.sh, created it (then start it before the tests, "
        "or run it from another clone)"
    )


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


# A key of the length and variety secure mode requires (stores/patientkey.py).
TEST_HASH_KEY = "test-only-patient-hash-key-0123456789abcdef"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "dev_mode": True,
        "database_path": str(tmp_path / "spine-cds.sqlite3"),
    }
    values.update(overrides)
    if not values["dev_mode"]:  # secure mode takes the patient-hash key from a setting
        values.setdefault("audit_hash_key", TEST_HASH_KEY)
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


# Stores on real servers ------------------------------------------------------------------
# One throwaway PostgreSQL and one Redis serve the whole session; each test gets its own
# database (and its own Redis key prefix), so tests stay apart.

Opener = Callable[[], Database]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with running_redis() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def open_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens a new connection (a new 'instance') to one fresh database per test."""
    opened: list[Database] = []
    if request.param == "sqlite":
        path = tmp_path / "stores.sqlite3"

        def make() -> Database:
            return SqliteDatabase(path)
    else:
        url = request.getfixturevalue("pg_server").new_database()

        def make() -> Database:
            return PostgresDatabase(url)

    def opener() -> Database:
        db = make()
        opened.append(db)
        return db

    yield opener
    for db in opened:
        db.close()
