"""The OpenAPI 3.1 document of the service (cds_service/openapi.json) is valid and true.

It must not drift from what it describes, so these tests tie it to its sources:

- the request and response schemas are the files in cds_service/schemas, converted by
  the development harness's generator (``spine_cds_dev.openapi``: each ``$defs`` entry
  becomes the component ``<file>.<name>``, every ``$ref`` rewritten to match); any edit
  of a schema file fails here until the document is regenerated with
  ``python -m spine_cds_dev.openapi --write``;
- there is one hook path per service of hooks.json, with its hook's declared request
  schema (``cds_service.hook_declarations``);
- every route of the app is documented and every documented path is served;
- what the app really answers validates against the documented schemas.

``component_validator`` is shared with the fuzz tests, which check every error body
they provoke against the documented error schema.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import cds_service
from cds_service import schemas
from cds_service.hook_declarations import HOOKS
from cds_service.validation import validate
from spine_cds_dev.openapi import (
    COMPONENTS,
    HAND_WRITTEN,
    OPENAPI_PATH,
    component_name,
    components_from_schema_files,
)
from tests.builders import EMPTY_PREFETCH, SELECT_ID, SIGN_ID, hook_request, service_request

HOOKS_PATH = Path(cds_service.__file__).parent.parent / "hooks.json"
DOCUMENT_URI = "urn:spine-cds:openapi"
ERROR_STATUSES = {400, 401, 404, 405, 411, 412, 413, 415, 417}
# Refusals of a request with a body, whatever the body: a chunked one (411), an Expect
# header the server does not meet (417). Every POST operation documents them.
BODY_REFUSALS = {"400", "411", "413", "415", "417"}
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@cache
def load_document() -> dict[str, Any]:
    """The shipped document (cached: tests must not modify it; they deep-copy first)."""
    document: dict[str, Any] = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    return document


@cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = DRAFT202012.create_resource(load_document())
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
    return registry


@cache
def component_validator(name: str) -> Draft202012Validator:
    """A validator for ``#/components/schemas/<name>`` of the shipped document."""
    if name not in load_document()["components"]["schemas"]:
        raise KeyError(f"no component {name!r} in {OPENAPI_PATH.name}")
    return Draft202012Validator({"$ref": f"{DOCUMENT_URI}{COMPONENTS}{name}"}, registry=_registry())


def documented_statuses(method: str, path: str) -> set[int]:
    """The statuses documented for an operation, or for an undocumented path 404 and 405."""
    document = load_document()
    item = document["paths"].get(path)
    if item is None:
        for template, candidate in document["paths"].items():
            if "{" in template and _matches(template, path):
                item = candidate
                break
    if item is None or method.lower() not in item:
        return {404, 405}
    return {int(code) for code in item[method.lower()]["responses"]}


def _matches(template: str, path: str) -> bool:
    """Whether ``path`` fits a template; a path parameter with an enum also accepts others
    (the service answers 404 for those, as documented)."""
    parts, wanted = template.split("/"), path.split("/")
    return len(parts) == len(wanted) and all(
        p.startswith("{") or p == w for p, w in zip(parts, wanted, strict=True)
    )


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in load_document()["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow one local ``$ref`` (for responses, which reference components.responses)."""
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    target: Any = load_document()
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    assert isinstance(target, dict)
    return target


def flask_paths(app: Flask) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every route the app serves, HEAD and OPTIONS aside."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = rule.rule.replace("<service_id>", "{id}")
        for method in rule.methods or ():
            if method not in {"HEAD", "OPTIONS"}:
                found.add((method.lower(), path))
    return found


# --- the document is valid OpenAPI 3.1 ---------------------------------------------------


def test_document_is_valid_openapi_3_1() -> None:
    document = load_document()
    assert document["openapi"].startswith("3.1.")
    validate_openapi(copy.deepcopy(document))


@pytest.mark.parametrize(
    "breakage",
    ["dangling $ref", "response without description", "wrong version"],
)
def test_the_validator_would_catch_a_broken_document(breakage: str) -> None:
    document = copy.deepcopy(load_document())
    responses = document["paths"]["/health"]["get"]["responses"]
    if breakage == "dangling $ref":
        responses["200"]["content"]["application/json"]["schema"]["$ref"] = COMPONENTS + "nope"
    elif breakage == "response without description":
        del responses["200"]["description"]
    else:
        document["openapi"] = "3.1.x"
    with pytest.raises(Exception):  # noqa: B017 - each breakage raises its own error type
        validate_openapi(document)


def test_every_component_schema_is_valid_json_schema_2020_12() -> None:
    for name, schema in load_document()["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        assert component_validator(name) is not None


def test_every_ref_resolves() -> None:
    document = load_document()

    def refs(value: Any) -> list[str]:
        if isinstance(value, dict):
            own = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
            return own + [r for item in value.values() for r in refs(item)]
        if isinstance(value, list):
            return [r for item in value for r in refs(item)]
        return []

    found = refs(document)
    assert found, "the document uses components"
    for ref in found:
        assert ref.startswith("#/"), f"{ref}: only local references, so nothing is fetched"
        target: Any = document
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict) and part in target, f"{ref} does not resolve"
            target = target[part]


# --- the document agrees with its sources -------------------------------------------------


def test_components_are_the_schema_files_converted() -> None:
    components = load_document()["components"]["schemas"]
    expected = components_from_schema_files()
    stale = sorted(n for n in expected if components.get(n) != expected[n])
    unknown = sorted(set(components) - set(expected) - HAND_WRITTEN)
    assert not stale, (
        f"components {stale} differ from cds_service/schemas; "
        "run `python -m spine_cds_dev.openapi --write`"
    )
    assert not unknown, f"components {unknown} come from no schema file"
    assert HAND_WRITTEN <= set(components)


def test_conversion_keeps_every_validation_keyword() -> None:
    """The converted request schema judges bodies exactly as the service's validator does."""
    good = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)
    bad = copy.deepcopy(good)
    bad["hookInstance"] = "not-a-uuid"
    del bad["context"]["selections"]
    bad["fhirAuthorization"] = {"access_token": "t"}
    service_validator = schemas.validator("order-select.request.schema.json")
    converted = component_validator("order-select.request")
    for body in (good, bad):
        from_service = sorted(e.message for e in service_validator.iter_errors(body))
        from_document = sorted(e.message for e in converted.iter_errors(body))
        assert from_document == from_service
    assert not list(converted.iter_errors(good))
    assert list(converted.iter_errors(bad))


def test_one_hook_path_per_service_of_hooks_json() -> None:
    services = json.loads(HOOKS_PATH.read_text(encoding="utf-8"))["services"]
    paths = load_document()["paths"]
    hook_paths = {
        p for p in paths if p.startswith("/cds-services/") and p.count("/") == 2 and "{" not in p
    }
    assert hook_paths == {f"/cds-services/{s['id']}" for s in services}
    for service in services:
        operation = paths[f"/cds-services/{service['id']}"]["post"]
        body_schema = operation["requestBody"]["content"]["application/json"]["schema"]
        request_file = HOOKS[service["hook"]].schema
        assert body_schema == {"$ref": COMPONENTS + component_name(request_file)}
        answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer == {"$ref": COMPONENTS + "response"}


def test_feedback_path_accepts_exactly_the_service_ids() -> None:
    services = json.loads(HOOKS_PATH.read_text(encoding="utf-8"))["services"]
    item = load_document()["paths"]["/cds-services/{id}/feedback"]
    (parameter,) = item["parameters"]
    assert parameter["in"] == "path" and parameter["name"] == "id"
    assert sorted(parameter["schema"]["enum"]) == sorted(s["id"] for s in services)
    body_schema = item["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": COMPONENTS + "feedback"}


# The trend app's launch refused: a page for the clinician who followed the link.
HTML_REFUSALS = {("/trend/launch", "400")}


def test_error_answers_are_documented_with_the_error_schema() -> None:
    for method, path, operation in operations():
        responses = operation["responses"]
        assert "405" in responses, f"{method} {path}: 405"
        if method == "post":
            assert BODY_REFUSALS <= set(responses), f"{method} {path}"
        for code, response in responses.items():
            if int(code) < 400:
                continue
            if (path, code) in HTML_REFUSALS:  # a person reads it in a browser
                assert set(resolve(response)["content"]) == {"text/html"}, f"{path} {code}"
                continue
            media = resolve(response)["content"]["application/json"]
            assert media["schema"] == {"$ref": COMPONENTS + "error"}, f"{method} {path} {code}"
            problems = validate(component_validator("error"), media["example"])
            assert not problems, f"{method} {path} {code}: example {problems}"
    documented = {int(code) for _, _, operation in operations() for code in operation["responses"]}
    assert ERROR_STATUSES <= documented


def test_refusal_headers_are_documented() -> None:
    responses = load_document()["components"]["responses"]
    assert responses["Unauthorized"]["headers"]["WWW-Authenticate"]["required"] is True
    assert responses["MethodNotAllowed"]["headers"]["Allow"]["required"] is True


def test_every_route_is_documented_and_every_documented_path_served(app: Flask) -> None:
    """A route ``/cds-services/<service_id>`` is documented by one concrete path per service."""
    served = flask_paths(app)
    documented = {(method, path) for method, path, _ in operations()}
    undocumented = {
        (method, route)
        for method, route in served
        if not any(m == method and _matches(route, p) for m, p in documented)
    }
    assert undocumented == set(), "routes missing from openapi.json"
    unserved = {
        path
        for method, path in documented
        if not any(m == method and _matches(route, path) for m, route in served)
    }
    assert unserved == set(), f"paths documented in openapi.json but not served: {sorted(unserved)}"


# --- what the app answers validates against the document -----------------------------------


def assert_documented(response: Any, method: str, path: str) -> None:
    operation = load_document()["paths"][path][method]
    assert str(response.status_code) in operation["responses"], response.status_code
    media = resolve(operation["responses"][str(response.status_code)])["content"]
    assert response.mimetype in media
    schema_ref = media[response.mimetype]["schema"].get("$ref", "")
    if schema_ref:
        name = schema_ref.removeprefix(COMPONENTS)
        problems = validate(component_validator(name), response.get_json())
        assert not problems, f"{method} {path} {response.status_code}: {problems}"


def test_real_answers_match_the_document(client: FlaskClient) -> None:
    assert_documented(client.get("/cds-services"), "get", "/cds-services")
    assert_documented(client.get("/health"), "get", "/health")
    select = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)
    sign = hook_request("order-sign", [service_request("o1")])  # no prefetch, no fhirServer
    invalid = {"hook": "order-select", "hookInstance": "x", "context": {}}
    for service, body, status in (
        (SELECT_ID, select, 200),
        (SIGN_ID, sign, 412),
        (SELECT_ID, invalid, 400),
    ):
        response = client.post(f"/cds-services/{service}", json=body)
        assert response.status_code == status, response.get_json()
        assert_documented(response, "post", f"/cds-services/{service}")
    feedback_path = "/cds-services/{id}/feedback"
    entry = {
        "card": "8c0b6f4e-1d2a-4b7c-9e3f-5a6b7c8d9e0f",
        "outcome": "accepted",
        "outcomeTimestamp": "2026-01-30T10:00:00Z",
    }
    for service, body in (
        (SELECT_ID, {"feedback": [entry]}),
        ("no-such-service", {"feedback": [entry]}),
        (SIGN_ID, {"feedback": []}),
    ):
        response = client.post(f"/cds-services/{service}/feedback", json=body)
        assert_documented(response, "post", feedback_path)
    for response, method, path in (
        (client.put("/health"), "get", "/health"),
        (
            client.post("/cds-services/" + SELECT_ID, data="x", content_type="text/plain"),
            "post",
            "/cds-services/" + SELECT_ID,
        ),
    ):
        assert response.status_code in {405, 415}
        assert_documented(response, method, path)
    served = client.get("/openapi.json")
    assert served.status_code == 200
    assert served.get_json() == load_document()


def post_paths() -> list[str]:
    return [path for method, path, _ in operations() if method == "post"]


def concrete(path: str) -> str:
    return path.replace("{id}", SELECT_ID)


def test_a_chunked_body_is_refused_as_documented(client: FlaskClient) -> None:
    for path in post_paths():
        response = client.post(
            concrete(path),
            data=b"{}",
            headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        )
        assert response.status_code == 411, (path, response.get_json())
        assert response.get_json()["error"] == "length_required"
        assert_documented(response, "post", path)


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_an_expect_header_the_server_does_not_meet_is_refused_as_documented(
    tmp_path: Path,
) -> None:
    """417 comes from gunicorn's parser (cds_service/http_refusals.py), so it is seen only
    through a real server."""
    from spine_cds_dev.service_process import ServiceProcess
    from tests.support.raw_http import exchange

    env = {"SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3")}
    with ServiceProcess(env=env, workers=1) as service:
        for path in post_paths():
            raw = (
                f"POST {concrete(path)} HTTP/1.1\r\nHost: x\r\nExpect: fancy\r\n"
                "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
            ).encode()
            status, headers, body = exchange(service.port, raw)
            assert status == 417, (path, body)
            assert headers["content-type"] == "application/json"
            answer = json.loads(body)
            assert answer["error"] == "expectation_failed"
            assert 417 in documented_statuses("post", path)
            media = resolve(load_document()["paths"][path]["post"]["responses"]["417"])
            assert not validate(component_validator("error"), answer)
            assert media["content"]["application/json"]["example"]["error"] == answer["error"]


def test_the_readme_endpoint_table_names_every_documented_path() -> None:
    readme = (Path(cds_service.__file__).parent.parent / "README.md").read_text("utf-8")
    section = readme.split("## Endpoints", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(?:GET|POST) ([^`\s]+)`", section))
    missing = {path for _, path, _ in operations()} - named
    assert not missing, f"the README's endpoint table lacks {sorted(missing)}"
