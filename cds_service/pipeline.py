"""One hook call, from the bytes the EHR sent to its Outcome: the one way through.

The web route, the worker warm-up, the replay (``impact/replayer.py``) and the
benchmarks that run the service in process all call ``run_hook`` (the route through
``HookCall``, to keep the body for its audit; the tools through the route, on Flask's
test client), so no caller assembles a call its own way: a warm-up that reads bodies
differently from a real call warms the wrong code, and it drifted so twice.

The steps, in order, each the only one of its kind:

1. read: a body of the usual shape is decoded by type in one pass (``hookbody``);
   any other is parsed the careful way (``jsonbody``), with its 400s;
2. check: the hook's request schema (``hook_declarations``), 400 listing each problem
   with its JSON path, and a ``fhirServer`` the service would never send a token to
   (``fhir.server_url_problem``: the same 400 at ``$.fhirServer``, whether or not the
   prefetch is complete, not a 412 later when something must be fetched);
3. admit: what only the caller can judge, before any data is fetched (the web layer:
   whether the client may name that fhirServer);
4. handle: ``invocation.handle_hook``: the orders, the data, the decision, the cards
   (400 for selections that name no draft order, 412 for data that cannot be had).

What stays with the web route is what only HTTP has: the runtime of the application,
the service the path names (404), the client JWT (401), the content type (415), the
audit record, the metrics and shadow mode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cds_service.discovery import Service
from cds_service.errors import ApiError
from cds_service.fhir import server_url_problem
from cds_service.hook_declarations import BODIES
from cds_service.hookbody import schema_view
from cds_service.invocation import Outcome, handle_hook
from cds_service.jsonbody import parse_json_object
from cds_service.runtime import Runtime
from cds_service.validation import FieldError

__all__ = ["Admit", "HookCall", "conforming", "read_body", "run_hook"]

#: A caller's own check of a conforming body, before anything is fetched; raises ApiError.
Admit = Callable[[Mapping[str, Any]], None]


def read_body(runtime: Runtime, service: Service, raw: bytes) -> dict[str, Any]:
    """The body of a call to ``service``: typed when it has the usual shape, else the
    careful parse, with its 400s (broken, too deep or non-object JSON)."""
    depth = runtime.settings.max_json_depth
    typed = runtime.hook_decoders[service.id].decode(raw, depth)
    return typed if typed is not None else parse_json_object(raw, depth)


def conforming(runtime: Runtime, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` when it conforms to the schema declared for ``name`` (a hook, or
    "feedback"); else 400 listing each problem with its JSON path. Every body the
    service accepts is validated here and nowhere else."""
    problems = runtime.validators[name].problems(schema_view(body))
    if problems:
        raise ApiError(400, "invalid_request", BODIES[name].nonconforming, problems)
    return body


class HookCall:
    """One call to one service on its way through the steps.

    ``body`` is the request as read, from the moment it could be read (None before, and
    when reading it failed): the web layer records a refused call's hookInstance and
    patient from it.
    """

    def __init__(self, runtime: Runtime, service: Service) -> None:
        self.runtime = runtime
        self.service = service
        self.body: dict[str, Any] | None = None

    def run(self, raw: bytes, admit: Admit | None = None, trend_base_url: str = "") -> Outcome:
        """Read, check, admit and handle ``raw``; ApiError for a client error (400, 412).
        ``trend_base_url`` is where the cards' trend-app links point ("" gives none)."""
        self.body = read_body(self.runtime, self.service, raw)
        conforming(self.runtime, self.service.hook, self.body)
        _usable_fhir_server(self.service.hook, self.body)
        if admit is not None:
            admit(self.body)
        return handle_hook(self.runtime, self.service.id, self.body, trend_base_url)


def _usable_fhir_server(name: str, body: Mapping[str, Any]) -> None:
    """400 at ``$.fhirServer`` for a URL the FHIR client would refuse to send the token to
    (percent-escapes or userinfo in the host, characters parsers read differently): the
    schema's pattern is only a first sieve."""
    server = body.get("fhirServer")
    if server is None:
        return
    problem = server_url_problem(server)
    if problem is not None:
        raise ApiError(
            400,
            "invalid_request",
            BODIES[name].nonconforming,
            [FieldError("$.fhirServer", problem)],
            misconfigured=True,  # the EHR's fhirServer setting: every call
        )


def run_hook(
    runtime: Runtime,
    service: Service,
    raw: bytes,
    admit: Admit | None = None,
    trend_base_url: str = "",
) -> Outcome:
    """The Outcome (response and assessment) of one call of ``service`` with the body
    ``raw``, as the EHR sent it; ApiError for a client error (400, 412)."""
    return HookCall(runtime, service).run(raw, admit, trend_base_url)
