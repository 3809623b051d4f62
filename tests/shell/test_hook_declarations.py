"""One declaration per hook (cds_service/hook_declarations.py), and everything that
names a hook agrees with it: hooks.json, the request schemas, the validators, the tools
that act as the EHR and the command line (the OpenAPI document's hook paths:
tests/web/test_openapi.py)."""

from __future__ import annotations

import json
import uuid
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

import cds_service
from cds_service import schemas
from cds_service.cli import main
from cds_service.discovery import load_discovery
from cds_service.ehr_requests import build_request, bundle_resources, local_prefetch
from cds_service.examples import load_example
from cds_service.hook_declarations import BODIES, FEEDBACK, HOOKS
from cds_service.runtime import build_runtime
from cds_service.tools.services import InProcessService, find_service
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
def test_the_tools_send_each_declared_hook_and_the_service_answers_it(name: str) -> None:
    example = load_example("e01-improving", date(2026, 3, 2))
    with InProcessService() as service:
        entry = find_service(service.discovery(), name, service.label)
        request = build_request(name, str(uuid.uuid4()), example.patient_id, example.draft_order)
        assert ("selections" in request["context"]) is HOOKS[name].selections
        request["prefetch"] = local_prefetch(
            entry.prefetch, request["context"], bundle_resources(example.bundle)
        )
        answer = service.call(entry.id, request)
    assert answer.status == 200, answer.body
    assert len(answer.body["cards"]) == 1


def test_try_refuses_a_hook_the_service_does_not_declare() -> None:
    args = ["try", "--fhir-server", "http://127.0.0.1:9/fhir", "--patient", "p1"]
    result = CliRunner().invoke(main, [*args, "--order", "a|b", "--hook", "patient-view"])
    assert result.exit_code == 2  # refused by the option, before any request
    assert "'patient-view' is not one of" in result.output
    assert all(repr(name) in result.output for name in HOOKS)
