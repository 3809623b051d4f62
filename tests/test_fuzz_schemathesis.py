"""Schemathesis against the service, driven by the OpenAPI document it ships.

Every operation of cds_service/openapi.json gets generated requests, valid ones
(positive) and ones that break the schema (negative), in two runs:

- against the app in process (development mode), many examples;
- against a real gunicorn process (``spine-cds serve --dev``), fewer: the same checks
  through a real HTTP stack.

The checks: no 5xx ever; every status, content type, header and body as documented;
invalid data always refused with a 4xx; every refusal a JSON error with ``error`` and
``message``; every 200 hook answer conformant (tests/support/conformance.py).

A generated ``fhirServer`` that the service would really call is pointed at a local
misbehaving FHIR server (tests/support/faulty_fhir_server.py), so the fetch path is
fuzzed too and no request ever leaves the machine.

Example counts: ``SPINE_CDS_FUZZ_EXAMPLES`` (default 150 per operation in process, a
quarter of that against gunicorn); under ``CI`` the runs are deterministic.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import cds_service
from cds_service.app import create_app
from cds_service.fhir import server_url_problem
from cds_service.warmup import warm_up
from spine_cds_dev.service_process import ServiceProcess
from tests.conftest import make_settings
from tests.support.conformance import assert_conformant_response
from tests.support.faulty_fhir_server import FaultyFhirServer
from tests.web.test_openapi import HTML_REFUSALS

OPENAPI = Path(cds_service.__file__).parent / "openapi.json"
IN_PROCESS_EXAMPLES = int(os.environ.get("SPINE_CDS_FUZZ_EXAMPLES", "150"))
GUNICORN_EXAMPLES = max(10, IN_PROCESS_EXAMPLES // 4)
# How the local FHIR server misbehaves for a generated fhirServer (chosen by its hash).
FHIR_MODES = (
    "ok",
    "broken-json",
    "not-a-resource",
    "wrong-bundle",
    "wrong-resource",
    "outcome",
    "search-outcome",
    "endless",
    "loop",
    "500",
    "401",
    "404",
    "reset",
    "redirect",
    "foreign-next",
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def load_schema(max_examples: int) -> Any:
    schema = schemathesis.openapi.from_path(OPENAPI)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=max_examples,
        deterministic=bool(os.environ.get("CI")),
        # Development mode checks no JWT, so "missing Authorization" is not refused there.
        with_security_parameters=False,
    )
    # A body over a documented size limit (feedback: 64 KiB) is refused with 413, which is
    # a rejection too: the generator can draw schema-violating bodies that large.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return schema


in_process_schema = load_schema(IN_PROCESS_EXAMPLES)
gunicorn_schema = load_schema(GUNICORN_EXAMPLES)


@pytest.fixture(scope="module")
def fhir_faults() -> Iterator[FaultyFhirServer]:
    with FaultyFhirServer(hang_seconds=2.0) as server:
        yield server


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """One app for the module (as in production, requests share it), development mode."""
    app = create_app(make_settings(tmp_path_factory.mktemp("schemathesis")))
    warm_up(app.extensions["spine_cds"])  # as a gunicorn worker does before its first call
    return app


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    folder = tmp_path_factory.mktemp("schemathesis-gunicorn")
    env = {"SPINE_CDS_DATABASE_PATH": str(folder / "spine-cds.sqlite3")}
    with ServiceProcess(env=env, workers=2, log_path=folder / "service.log") as process:
        yield process


def keep_fetches_local(case: Any, fhir_faults: FaultyFhirServer) -> None:
    """Point a usable generated fhirServer at the local faulty server (never the network)."""
    body = case.body
    if isinstance(body, dict) and server_url_problem(body.get("fhirServer")) is None:
        original = str(body["fhirServer"])
        mode = FHIR_MODES[zlib.crc32(original.encode()) % len(FHIR_MODES)]
        body["fhirServer"] = fhir_faults.url(mode)


def check_bodies(case: Any, response: Any) -> None:
    """Beyond the schema: refusals say what is wrong; hook answers have no empty values."""
    content_type = (response.headers.get("content-type") or [""])[0]
    body = json.loads(response.content) if "json" in content_type else None
    if (case.path, str(response.status_code)) in HTML_REFUSALS:
        # A page for the clinician who followed the link: it says why, as documented.
        assert content_type.startswith("text/html") and b"<p" in response.content
        return
    if response.status_code >= 400:
        assert isinstance(body, dict), f"{response.status_code} without a JSON body"
        assert str(body.get("error", "")).strip() and str(body.get("message", "")).strip()
    elif response.status_code == 200 and case.method.upper() == "POST":
        if case.path.count("/") == 2:  # /cds-services/{id}: a hook call
            assert_conformant_response(body)


def call_and_check(case: Any, fhir_faults: FaultyFhirServer, **transport: Any) -> None:
    keep_fetches_local(case, fhir_faults)
    response = case.call(**transport)
    case.validate_response(response, checks=CHECKS, transport_kwargs=transport)
    check_bodies(case, response)


@in_process_schema.parametrize()  # type: ignore[untyped-decorator]
def test_every_endpoint_in_process(
    case: Any, service: Flask, fhir_faults: FaultyFhirServer
) -> None:
    call_and_check(case, fhir_faults, app=service)


@pytest.mark.integration
@gunicorn_schema.parametrize()  # type: ignore[untyped-decorator]
def test_every_endpoint_through_gunicorn(
    case: Any, gunicorn: ServiceProcess, fhir_faults: FaultyFhirServer
) -> None:
    call_and_check(case, fhir_faults, base_url=gunicorn.url)
