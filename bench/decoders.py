"""The issue-13 design question, measured: how to decode scenario (a)'s body.

Side by side in one process, best of seven runs, on the benchmark's (a) body (built
without a FHIR server from ``benchmark_bundle``, in the shape prefetch has):

- ``json.loads`` (what the floor's ``request.get_json()`` does), ``orjson.loads`` (what
  the service does);
- a typed msgspec decode of the whole body into Structs for the envelope and the
  Observation fields the rules read (everything else skipped or left as ``Any``);
- the service's typed decode (``cds_service/hookbody.py``), alone and with its
  Observations read into Structs, against the careful parse it stands in for;
- a fetched search page of the same 200 Observations, read by orjson and by the typed
  path the FHIR client takes (``fhir.bundles.read_search_page``), each unwrapped;
- the compiled schema check (jsonschema-rs) against the jsonschema walk of the same
  envelope;
- the Observation mapper on the decoded dicts (each converted to the typed Struct it
  reads) and on the typed reads.

::

    .venv/bin/python -m bench.decoders
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable
from typing import Any

import msgspec
import orjson

from cds_service import schemas
from cds_service.discovery import load_discovery
from cds_service.examples import benchmark_bundle
from cds_service.fhir.bundles import read_search_page, unwrap_bundle
from cds_service.hookbody import HookBodyDecoder
from cds_service.jsonbody import parse_json_object
from cds_service.validation import validate
from cds_service.valuesets import load_value_sets
from fhir_mappers.observations import MappingOptions, map_observations
from fhir_mappers.wire import WireObservation


class _Entry(msgspec.Struct):
    resource: WireObservation  # the service's Struct: one pass, no fallback per entry


class _Bundle(msgspec.Struct):
    entry: list[_Entry] = []


class _Prefetch(msgspec.Struct):
    crp: _Bundle | None = None
    esr: _Bundle | None = None
    pain: _Bundle | None = None
    conditions: Any = None


class _Body(msgspec.Struct):
    hook: str
    hookInstance: str
    context: Any
    prefetch: _Prefetch | None = None


def body_a() -> dict[str, Any]:
    """An order-select body with the benchmark patient's data as prefetch Bundles."""
    resources = [e["resource"] for e in benchmark_bundle("bench-patient")["entry"]]

    def searchset(items: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in items],
        }

    by_code: dict[str, list[dict[str, Any]]] = {"crp": [], "esr": [], "pain": []}
    names = {"1988-5": "crp", "4537-7": "esr", "72514-3": "pain"}
    for resource in resources:
        if resource["resourceType"] == "Observation":
            name = names.get(resource["code"]["coding"][0]["code"])
            if name:
                by_code[name].append(resource)
    conditions = [r for r in resources if r["resourceType"] == "Condition"]
    return {
        "hook": "order-select",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {
            "userId": "Practitioner/p1",
            "patientId": "bench-patient",
            "selections": ["ServiceRequest/sr1"],
            "draftOrders": {
                "resourceType": "Bundle",
                "entry": [{"resource": {"resourceType": "ServiceRequest", "id": "sr1"}}],
            },
        },
        "prefetch": {
            "conditions": searchset(conditions),
            **{key: searchset(items) for key, items in by_code.items()},
        },
    }


def best_ms(fn: Callable[[], object], number: int = 200) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1000


def main() -> None:
    body = body_a()
    raw = orjson.dumps(body)
    typed = msgspec.json.Decoder(_Body)
    check = schemas.check("order-select.request.schema.json")
    service = next(s for s in load_discovery().services.values() if s.hook == "order-select")
    hook_decoder = HookBodyDecoder(service)
    observations = [
        e["resource"] for key in ("crp", "esr", "pain") for e in body["prefetch"][key]["entry"]
    ]
    value_sets = load_value_sets()
    decoded = hook_decoder.decode(raw, 64)
    assert decoded is not None
    typed_observations = [
        r
        for key in ("crp", "esr", "pain")
        for r in unwrap_bundle(key, decoded["prefetch"][key], "Observation")[0]
    ]
    options = MappingOptions(crp_molar_factor_nmol_per_mg=9.524)
    page = orjson.dumps(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in observations],
        }
    )
    rows = [
        ("json.loads (the floor)", lambda: json.loads(raw)),
        ("orjson.loads (the service)", lambda: orjson.loads(raw)),
        ("msgspec typed decode of what the rules read", lambda: typed.decode(raw)),
        (
            "the service's typed decode (hookbody, depth guard included)",
            lambda: hook_decoder.decode(raw, 64),
        ),
        (
            "  and reading its 200 Observations",
            lambda: [
                unwrap_bundle(k, v, "Observation")
                for k, v in hook_decoder.decode(raw, 64)["prefetch"].items()  # type: ignore[index]
                if k != "conditions"
            ],
        ),
        ("orjson.loads and depth guard (the careful parse)", lambda: parse_json_object(raw, 64)),
        (
            f"a fetched page of {len(observations)} Observations: orjson, unwrapped",
            lambda: unwrap_bundle("crp", orjson.loads(page), "Observation"),
        ),
        (
            "  the same page read typed (the FHIR client), unwrapped",
            lambda: unwrap_bundle("crp", read_search_page(page) or {}, "Observation"),
        ),
        ("jsonschema walk of the envelope", lambda: validate(check.precise, body)),
        ("jsonschema-rs check of the envelope", lambda: check.fast.is_valid(body)),
        (
            f"map_observations, {len(observations)} Observations as dicts",
            lambda: map_observations(observations, value_sets, options),
        ),
        (
            f"map_observations, {len(typed_observations)} Observations typed",
            lambda: map_observations(typed_observations, value_sets, options),
        ),
    ]
    print(f"(a)-shaped body: {len(raw):,} bytes")
    for name, fn in rows:
        print(f"  {name:62s} {best_ms(fn):7.3f} ms")


if __name__ == "__main__":
    main()
