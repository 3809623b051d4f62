"""The hooks this service implements, each declared once.

A declaration says what the code needs to know of a hook: its name, the request schema
its bodies are checked with, what a body that fails that schema is told, and whether
``context.selections`` narrows the orders in question (order-select) or every draft
order is (order-sign). The runtime builds its validators from this table, discovery
refuses a hooks.json service whose hook is not in it, ``pipeline.py`` takes the message
of a nonconforming body's 400 from it, the tools take the hook they send
(``DEFAULT_HOOK``), and ``tests/shell/test_hook_declarations.py`` holds hooks.json, the
schema files and the OpenAPI document to it.

hooks.json stays the served discovery document and the home of the prefetch
templates; this table is what the code knows of each hook it names. A new hook is a
row here, its request schema in ``cds_service/schemas/``, a service in hooks.json,
and its tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True)
class BodyDeclaration:
    """A request body the service checks against a JSON Schema before reading it."""

    name: str  # the validator's key in ``Runtime.validators``
    schema: str  # file name in cds_service/schemas
    nonconforming: str  # the message of the 400 for a body that fails the schema


@dataclass(frozen=True)
class HookDeclaration(BodyDeclaration):
    """One CDS Hooks hook the service implements; ``name`` is the hook's name."""

    # order-select: the orders in question are the selected ones (and each selection
    # must name a draft order); otherwise every draft order is in question.
    selections: bool


_HOOKS: Final = (
    HookDeclaration(
        name="order-select",
        schema="order-select.request.schema.json",
        nonconforming="the request does not conform to the CDS Hooks order-select hook",
        selections=True,
    ),
    HookDeclaration(
        name="order-sign",
        schema="order-sign.request.schema.json",
        nonconforming="the request does not conform to the CDS Hooks order-sign hook",
        selections=False,
    ),
)

#: The hooks the service implements, by name.
HOOKS: Final = MappingProxyType({hook.name: hook for hook in _HOOKS})

#: The hook the tools, the example review and the replay send an order with, as an EHR
#: does when the order is chosen (its selection names it).
DEFAULT_HOOK: Final = HOOKS["order-select"].name

#: The body of ``POST /cds-services/{id}/feedback``.
FEEDBACK: Final = BodyDeclaration(
    name="feedback",
    schema="feedback.schema.json",
    nonconforming="the feedback body does not conform to CDS Hooks",
)

#: Every body the service validates, by validator key: the hooks and feedback.
BODIES: Final[Mapping[str, BodyDeclaration]] = MappingProxyType({**HOOKS, FEEDBACK.name: FEEDBACK})
