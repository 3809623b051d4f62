"""The EHR's side of a CDS Hooks call, as pure functions: orders, requests, local prefetch.

``try`` and ``review-examples`` both act as an EHR would. What they build must be the
same thing a conformant client sends, so it is built in one place. Nothing here does
I/O or reads the clock: the caller passes ``authoredOn`` and the ``hookInstance``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

from cds_service.fhir.prefetch import render_queries
from cds_service.hook_declarations import HOOKS as DECLARED_HOOKS
from cds_service.redaction import MASK  # shown instead of the access token

__all__ = [
    "DEFAULT_ORDER_ID",
    "DEFAULT_USER_ID",
    "HOOKS",
    "build_request",
    "bundle_resources",
    "code_order",
    "file_order",
    "local_prefetch",
    "masked",
    "parse_order_code",
    "search_local",
]

HOOKS = tuple(DECLARED_HOOKS)  # the hooks the service implements (hook_declarations)
DEFAULT_ORDER_ID = "spine-cds-try-order"
DEFAULT_USER_ID = "Practitioner/spine-cds-try"
# What the token lets the service read: the resources its prefetch templates ask for.
READ_SCOPE = "patient/Patient.read patient/Condition.read patient/Observation.read"
ORDER_TYPES = frozenset({"ServiceRequest"})
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# Search parameters a local prefetch understands; the rest are refused, never ignored.
_IGNORED_PARAMS = frozenset({"_count", "_sort"})  # paging and order: one page, any order


def parse_order_code(text: str) -> tuple[str, str]:
    """``"http://www.ama-assn.org/go/cpt|72158"`` -> (system, code); ValueError otherwise."""
    system, bar, code = text.partition("|")
    if not bar or not system.strip() or not code.strip() or "|" in code:
        raise ValueError(f"expected an order code as SYSTEM|CODE, got {text!r}")
    return system.strip(), code.strip()


def code_order(
    patient_id: str, system: str, code: str, authored_on: str, order_id: str = DEFAULT_ORDER_ID
) -> dict[str, Any]:
    """A draft imaging ServiceRequest for one coded study, as an EHR puts it in draftOrders."""
    return {
        "resourceType": "ServiceRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": authored_on,
    }


def file_order(
    resource: object,
    patient_id: str,
    authored_on: str | None = None,
    default_authored_on: str | None = None,
    order_id: str = DEFAULT_ORDER_ID,
) -> dict[str, Any]:
    """A ServiceRequest read from a file, completed the way an EHR's draft would be.

    It gets an id and the patient as subject when it has none; ``authored_on`` replaces
    its authoredOn, ``default_authored_on`` fills it only when it has none. A subject
    naming another patient is refused: the request would contradict itself. Raises
    ValueError with the reason.
    """
    if not isinstance(resource, Mapping) or resource.get("resourceType") not in ORDER_TYPES:
        raise ValueError("the order file must hold one FHIR ServiceRequest (JSON object)")
    order = copy.deepcopy(dict(resource))
    order_id_value = order.get("id")
    if order_id_value is None:
        order["id"] = order_id
    elif not isinstance(order_id_value, str) or not _FHIR_ID.match(order_id_value):
        raise ValueError(f"the order's id {order_id_value!r} is not a FHIR id")
    expected = f"Patient/{patient_id}"
    subject = order.get("subject")
    if subject is None:
        order["subject"] = {"reference": expected}
    elif not isinstance(subject, Mapping) or subject.get("reference") != expected:
        found = subject.get("reference") if isinstance(subject, Mapping) else subject
        raise ValueError(f"the order's subject is {found!r}, but the patient is {expected!r}")
    if authored_on is not None:
        order["authoredOn"] = authored_on
    elif default_authored_on is not None and "authoredOn" not in order:
        order["authoredOn"] = default_authored_on
    return order


def build_request(
    hook: str,
    hook_instance: str,
    patient_id: str,
    order: Mapping[str, Any],
    prefetch: Mapping[str, Any] | None = None,
    fhir_server: str | None = None,
    access_token: str | None = None,
    user_id: str = DEFAULT_USER_ID,
) -> dict[str, Any]:
    """A CDS Hooks 2.0 request of one of the service's hooks for one draft order.

    A hook with selections (order-select) selects that order. ``prefetch`` None leaves
    prefetch out (the service fetches everything); ``access_token`` is only sent
    together with ``fhir_server``, as the specification requires.
    """
    if hook not in HOOKS:
        raise ValueError(f"unsupported hook {hook!r}; expected one of {', '.join(HOOKS)}")
    context: dict[str, Any] = {
        "userId": user_id,
        "patientId": patient_id,
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": dict(order)}],
        },
    }
    if DECLARED_HOOKS[hook].selections:
        context["selections"] = [f"{order['resourceType']}/{order['id']}"]
    body: dict[str, Any] = {"hook": hook, "hookInstance": hook_instance}
    if fhir_server:
        body["fhirServer"] = fhir_server
        if access_token:
            body["fhirAuthorization"] = {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": READ_SCOPE,
                "subject": "spine-cds",
                "patient": patient_id,
            }
    body["context"] = context
    if prefetch is not None:
        body["prefetch"] = dict(prefetch)
    return body


def masked(request: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a request safe to print: the access token replaced by ``***``."""
    out = copy.deepcopy(dict(request))
    authorization = out.get("fhirAuthorization")
    if isinstance(authorization, dict) and "access_token" in authorization:
        authorization["access_token"] = MASK
    return out


# --- prefetch from local resources ------------------------------------------------------


def bundle_resources(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The resources of a Bundle's entries (e.g. an example's transaction Bundle)."""
    out = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, dict):
            out.append(resource)
    return out


def local_prefetch(
    templates: Mapping[str, str],
    context: Mapping[str, Any],
    resources: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """Prefetch as an EHR would fill it, from the resources it holds for the patient.

    Each template is rendered with the request's context (the service's own renderer)
    and evaluated over ``resources``: a read gives the resource or None, a search a
    searchset Bundle of the matches. Raises ValueError for a template it cannot render
    or a search parameter it does not understand, rather than send a wrong answer.
    """
    queries, problems = render_queries(templates, context)
    if problems:
        raise ValueError("; ".join(f"{p.key}: {p.reason}" for p in problems))
    held = list(resources)
    return {key: search_local(query, held) for key, query in queries.items()}


def search_local(query: str, resources: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Evaluate one relative FHIR query (``Type/id`` or ``Type?params``) over ``resources``.

    Searches understand ``patient``/``subject`` (a Patient reference or id) and ``code``
    (token OR lists: ``system|code``, ``code``, ``|code``, ``system|``); ``_count`` and
    ``_sort`` are accepted but not applied: all matches come in one page, in stored order.
    """
    path, _, query_string = query.partition("?")
    segments = [unquote(s) for s in path.strip("/").split("/") if s]
    if len(segments) == 2 and not query_string:
        rtype, rid = segments
        for resource in resources:
            if resource.get("resourceType") == rtype and resource.get("id") == rid:
                return dict(resource)
        return None
    if len(segments) != 1:
        raise ValueError(f"not a FHIR read or type-level search: {query!r}")
    rtype = segments[0]
    params = parse_qsl(query_string, True)
    held = list(resources)
    tests = [_param_test(name, value) for name, value in params if name != "_include"]
    matches = [
        dict(r) for r in held if r.get("resourceType") == rtype and all(test(r) for test in tests)
    ]
    included = [
        dict(r)
        for name, value in params
        if name == "_include"
        for r in _included(value, rtype, matches, held)
    ]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(matches),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in matches]
        + [{"resource": r, "search": {"mode": "include"}} for r in included],
    }


def _included(
    value: str, rtype: str, matches: list[dict[str, Any]], held: list[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """``_include=Type:element``: the resources the matches' ``element`` references."""
    source, _, element = value.partition(":")
    if source != rtype or not element:
        raise ValueError(f"_include={value!r} is not supported by the local prefetch")
    # a FHIR search parameter names the element without its [x] type suffix
    wanted = set()
    for match in matches:
        for key, ref in match.items():
            if key.startswith(element) and isinstance(ref, Mapping):
                target = ref.get("reference")
                if isinstance(target, str):
                    wanted.add(target)
    return [r for r in held if f"{r.get('resourceType')}/{r.get('id')}" in wanted]


def _param_test(name: str, value: str) -> Callable[[Mapping[str, Any]], bool]:
    if name in _IGNORED_PARAMS:
        return lambda resource: True
    if name in {"patient", "subject"}:
        wanted = value if "/" in value else f"Patient/{value}"
        return lambda resource: _refers_to(resource, wanted)
    if name == "code":
        tokens = [_token(t) for t in value.split(",")]
        return lambda resource: any(_has_coding(resource, s, c) for s, c in tokens)
    raise ValueError(f"search parameter {name!r} is not supported by the local prefetch")


def _refers_to(resource: Mapping[str, Any], wanted: str) -> bool:
    for element in ("subject", "patient"):
        ref = resource.get(element)
        target = ref.get("reference") if isinstance(ref, Mapping) else None
        if isinstance(target, str) and (target == wanted or target.endswith("/" + wanted)):
            return True
    return False


def _token(text: str) -> tuple[str | None, str | None]:
    """FHIR token search value -> (system or None for any, code or None for any); a
    system of "" means "no system"."""
    if "|" not in text:
        return None, text
    system, _, code = text.partition("|")
    return system, code or None


def _has_coding(resource: Mapping[str, Any], system: str | None, code: str | None) -> bool:
    concept = resource.get("code")
    codings = concept.get("coding") if isinstance(concept, Mapping) else None
    for coding in codings or []:
        if not isinstance(coding, Mapping):
            continue
        if system is not None and (coding.get("system") or "") != system:
            continue
        if code is not None and coding.get("code") != code:
            continue
        return True
    return False
