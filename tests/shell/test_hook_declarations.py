"""One declaration per hook (cds_service/hook_declarations.py), and everything that
names a hook agrees with it: hooks.json, the request schemas, the validators, the tools
that act as the EHR and the command line (the OpenAPI document's hook paths:
tests/web/test_openapi.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cds_service
from cds_service import schemas
from cds_service.cli import main
from cds_service.discovery import load_discovery
from cds_service.ehr_requests import HOOKS as TOOL_HOOKS
from cds_service.ehr_requests import build_request
from cds_service.hook_declarations import BODIES, FEEDBACK, HOOKS
from cds_service.runtime import build_runtime
from tests.conftest import make_settings

ROOT = Path(cds_service.__file__).resolve().parent.parent
HOOKS_JSON = ROOT / "hooks.json"


def served_services() -> list[dict[str, object]]:
    services: list[dict[str, object]] = json.loads(HOOKS_JSON.read_text(encoding="utf-8"))[
        "services"
    ]
    return services


def test_every_hook_hooks_json_serves_is_declared() -> None:
    undeclared = {str(s["hook"]) for s in served_services()} - set(HOOKS)
    assert not undeclared, f"hooks.json serves hooks no declaration names: {undeclared}"


def test_every_declared_hook_is_served_by_hooks_json() -> None:
    unserved = set(HOOKS) - {str(s["hook"]) for s in served_services()}
    assert not unserved, f"declared hooks no service of hooks.json serves: {unserved}"


@pytest.mark.parametrize("name", list(HOOKS))
def test_each_hook_has_its_own_request_schema(name: str) -> None:
    declared = HOOKS[name]
    assert declared.schema in schemas.SCHEMA_FILES
    schema = schemas.load_schema(declared.schema)
    assert schema["properties"]["hook"] == {"const": name}
    # the schema asks for selections exactly when the declaration says they apply
    required = schema["properties"]["context"]["required"]
    assert ("selections" in required) is declared.selections
    assert name in declared.nonconforming


def test_every_declared_body_has_a_validator_and_nothing_else_does(tmp_path: Path) -> None:
    assert set(BODIES) == {*HOOKS, FEEDBACK.name}
    assert FEEDBACK.schema in schemas.SCHEMA_FILES
    runtime = build_runtime(make_settings(tmp_path))
    try:
        assert set(runtime.validators) == set(BODIES)
        for service in runtime.discovery.services.values():
            assert service.declaration is HOOKS[service.hook]
    finally:
        runtime.close()


def test_a_service_with_an_undeclared_hook_stops_startup(tmp_path: Path) -> None:
    document = json.loads(HOOKS_JSON.read_text(encoding="utf-8"))
    document["services"][0]["hook"] = "patient-view"
    path = tmp_path / "hooks.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ValueError, match=r"unsupported hook 'patient-view'.*declared hooks"):
        load_discovery(str(path))


@pytest.mark.parametrize("name", list(HOOKS))
def test_the_tools_build_each_declared_hook_as_declared(name: str) -> None:
    assert TOOL_HOOKS == tuple(HOOKS)
    order = {"resourceType": "ServiceRequest", "id": "o1"}
    context = build_request(name, "i", "p1", order)["context"]
    assert ("selections" in context) is HOOKS[name].selections


def test_try_offers_exactly_the_declared_hooks() -> None:
    command = main.commands["try"]
    (option,) = [p for p in command.params if p.name == "hook"]
    assert list(option.type.choices) == list(HOOKS)  # type: ignore[attr-defined]
