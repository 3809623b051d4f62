"""The one hook pipeline (cds_service/pipeline.py): read, check, admit, handle.

The web route and the worker warm-up both go through it; here: the route answers what
the pipeline returns, both readings of a body give one outcome, and each step refuses
what it must, in order, before anything is fetched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

import orjson
import pytest
from flask import Flask

from cds_service import trend_link
from cds_service.ehr_requests import build_request, bundle_resources, local_prefetch
from cds_service.errors import ApiError
from cds_service.examples import load_example
from cds_service.hook_declarations import HOOKS
from cds_service.pipeline import HookCall, run_hook
from cds_service.runtime import Runtime
from tests.builders import SELECT_ID, SIGN_ID

ORDER_DATE = date(2026, 3, 2)


@pytest.fixture
def runtime(app: Flask) -> Iterator[Runtime]:
    built: Runtime = app.extensions["spine_cds"]
    yield built


def example_request(runtime: Runtime, service_id: str) -> dict[str, Any]:
    """The first example's call of ``service_id``, prefetch filled as an EHR fills it."""
    service = runtime.discovery.services[service_id]
    example = load_example("e01-improving", ORDER_DATE)
    request = build_request(
        service.hook, str(uuid.uuid4()), example.patient_id, example.draft_order
    )
    request["prefetch"] = local_prefetch(
        service.prefetch, request["context"], bundle_resources(example.bundle)
    )
    return request


class _Declining:
    """A typed decoder that declines every body: the careful parse reads them all."""

    def decode(self, raw: bytes, depth_limit: int) -> None:
        return None


def refusal(runtime: Runtime, service_id: str, raw: bytes, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        run_hook(runtime, runtime.discovery.services[service_id], raw, **kwargs)
    return caught.value


@pytest.mark.parametrize("service_id", [SELECT_ID, SIGN_ID])
def test_the_route_answers_what_the_pipeline_returns(
    app: Flask, runtime: Runtime, service_id: str
) -> None:
    raw = orjson.dumps(example_request(runtime, service_id))
    client = app.test_client()
    # the route hands the pipeline the base URL of the cards' trend links (the request's,
    # in development mode)
    links = trend_link.base_url_for("", True, "http://localhost/")
    outcome = run_hook(runtime, runtime.discovery.services[service_id], raw, trend_base_url=links)
    assert outcome.decision == "advise-against"
    answer = client.post(f"/cds-services/{service_id}", data=raw, content_type="application/json")
    assert answer.status_code == 200
    assert answer.get_json() == outcome.response


def test_the_typed_and_the_careful_reading_give_one_outcome(runtime: Runtime) -> None:
    service = runtime.discovery.services[SELECT_ID]
    raw = orjson.dumps(example_request(runtime, SELECT_ID))
    typed = HookCall(runtime, service)
    typed_outcome = typed.run(raw)
    decoders = runtime.hook_decoders
    runtime.hook_decoders = {key: _Declining() for key in decoders}  # type: ignore[misc]
    try:
        careful = HookCall(runtime, service)
        careful_outcome = careful.run(raw)
    finally:
        runtime.hook_decoders = decoders
    assert careful.body == orjson.loads(raw)
    assert typed.body is not None and typed.body is not careful.body
    assert typed_outcome.response == careful_outcome.response
    assert typed_outcome.data_sources == careful_outcome.data_sources


@pytest.mark.parametrize("service_id", [SELECT_ID, SIGN_ID])
def test_a_nonconforming_body_gets_its_hook_s_declared_message(
    runtime: Runtime, service_id: str
) -> None:
    body = example_request(runtime, service_id)
    del body["context"]["patientId"]
    hook_call = HookCall(runtime, runtime.discovery.services[service_id])
    with pytest.raises(ApiError) as caught:
        hook_call.run(orjson.dumps(body))
    hook = runtime.discovery.services[service_id].hook
    assert caught.value.status == 400
    assert caught.value.message == HOOKS[hook].nonconforming
    assert [d.path for d in caught.value.details] == ["$.context.patientId"]
    # read, then refused: the audit records the hookInstance and patient of what it read
    assert hook_call.body is not None
    assert hook_call.body["hookInstance"] == body["hookInstance"]
    assert hook_call.body["context"] == body["context"]


def test_a_body_that_cannot_be_read_leaves_nothing_read(runtime: Runtime) -> None:
    hook_call = HookCall(runtime, runtime.discovery.services[SELECT_ID])
    with pytest.raises(ApiError) as caught:
        hook_call.run(b'{"hook": ')
    assert (caught.value.status, caught.value.error) == (400, "invalid_json")
    assert hook_call.body is None


def test_admit_judges_a_conforming_body_before_anything_is_fetched(runtime: Runtime) -> None:
    body = example_request(runtime, SELECT_ID)
    del body["prefetch"]  # the service would fetch from fhirServer: admit comes first
    body["fhirServer"] = "http://127.0.0.1:9/fhir"
    seen: list[Mapping[str, Any]] = []

    def admit(read: Mapping[str, Any]) -> None:
        seen.append(read)
        raise ApiError(400, "invalid_request", "not this server")

    refused = refusal(runtime, SELECT_ID, orjson.dumps(body), admit=admit)
    assert refused.message == "not this server"
    assert seen == [body]
    del body["hookInstance"]
    refused = refusal(runtime, SELECT_ID, orjson.dumps(body), admit=admit)
    assert refused.message == HOOKS["order-select"].nonconforming
    assert len(seen) == 1, "a body that does not conform is never admitted"
