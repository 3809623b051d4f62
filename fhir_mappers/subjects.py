"""Whose a resource is: its ``subject`` (or ``patient``) against the patient in context.

Never trust prefetch (or a FHIR server): a subject that names another patient, or names
someone only by identifier or display (which cannot be checked against ``patientId``),
makes the resource someone else's as far as this decision goes. A resource with no such
field at all came from a query scoped to this patient and is this patient's. Pure: no
I/O.

A reference names this patient only when it is, exactly:

- ``Patient/<id>`` or ``Patient/<id>/_history/<v>`` (``v`` a FHIR id: 1 to 64 letters,
  digits, ``-`` and ``.``);
- ``<base>/Patient/<id>``, optionally with ``/_history/<v>``, where ``<base>`` is an
  http(s) URL with no user, query or fragment and no ``Patient`` (or ``_history``, ``.``,
  ``..``) segment in its path, and, when the call names a ``fhirServer``, ``<base>`` is
  that server (scheme and host in any case, ``:80``/``:443`` as no port, a trailing
  slash ignored).

Anything else is someone else's. An attack review found any reference that merely ended
in ``/Patient/<id>`` read as this patient: ``Patient/B/Patient/A``, ``Patient/B#/Patient/A``,
``Group/x/Patient/A`` and another server's ``https://other/fhir/Patient/A`` (ids are a
server's own: that is not our A) all gave patient A patient B's card. Without a
``fhirServer`` (prefetch only) there is no server to hold a base against, so any clean
http(s) base is taken as the EHR's own; the EHR that sends prefetch alone vouches for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from msgspec import UNSET

from fhir_mappers.wire import ObservationBytes

SUBJECT_FIELDS = ("subject", "patient")

# FHIR's id type for the version: 1 to 64 of letters, digits, '-' and '.'
_VERSIONED = re.compile(r"(.+)/_history/[A-Za-z0-9\-.]{1,64}")
# Path segments no server base holds: one that does names some other resource first
# (``https://x/fhir/Patient/B/Patient/A``) or climbs out of the base
_NOT_IN_A_BASE = frozenset({"Patient", "_history", ".", ".."})
_DEFAULT_PORTS = {"http": 80, "https": 443}

# (scheme, host, port or None for the scheme's default, path without a trailing slash)
_Base = tuple[str, str, int | None, str]


def _base_key(url: str) -> _Base | None:
    """``url`` as a server base to compare, or None when it is not a clean http(s) base:
    printable ASCII with no space, backslash, user (``@``), query or fragment, a host,
    a valid port, and no ``_NOT_IN_A_BASE`` segment."""
    if not url.isascii() or not url.isprintable() or any(c in url for c in " \\@?#"):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    path = parts.path.rstrip("/")
    if any(segment in _NOT_IN_A_BASE for segment in path.split("/")):
        return None
    return scheme, parts.hostname, None if port == _DEFAULT_PORTS[scheme] else port, path


@dataclass(frozen=True, slots=True)
class _Patient:
    """The patient in context with the strings a reference is held against, made once
    per call (hundreds of references are read per call)."""

    exact: str  # "Patient/<id>"
    tail: str  # "/Patient/<id>"
    any_base: bool  # no fhirServer: any clean http(s) base
    server: _Base | None  # the fhirServer's base (None: not a clean base, so none matches)


def _patient(patient_id: str, server: str | None) -> _Patient:
    return _Patient(
        f"Patient/{patient_id}",
        f"/Patient/{patient_id}",
        server is None,
        None if server is None else _base_key(server),
    )


def refers_to(reference: str, patient_id: str, server: str | None = None) -> bool:
    """Whether a reference names this patient (the module's rule), ``server`` the call's
    ``fhirServer`` (None when it names none). A version of this patient is this patient
    (an attack suite saw versioned subjects read as someone else's)."""
    return _names(reference, _patient(patient_id, server))


def _names(reference: str, patient: _Patient) -> bool:
    if reference == patient.exact:
        return True
    if "/_history/" in reference:
        versioned = _VERSIONED.fullmatch(reference)
        if versioned is None:
            return False
        reference = versioned.group(1)
        if reference == patient.exact:
            return True
    if not reference.endswith(patient.tail):
        return False
    base = _base_key(reference[: -len(patient.tail)])
    return base is not None and (patient.any_base or base == patient.server)


def belongs_to(resource: Mapping[str, Any], patient_id: str, server: str | None = None) -> bool:
    """False unless the resource's subject (or patient) references this patient (see
    ``refers_to``), or it has neither field; a Patient is this patient's when its id is
    ``patient_id``."""
    return _belongs(resource, patient_id, _patient(patient_id, server))


def _belongs(resource: Mapping[str, Any], patient_id: str, patient: _Patient) -> bool:
    if resource.get("resourceType") == "Patient":
        return resource.get("id") == patient_id
    for name in SUBJECT_FIELDS:
        if name not in resource:
            continue
        ref = resource[name]
        reference = ref.get("reference") if isinstance(ref, dict) else None
        return isinstance(reference, str) and _names(reference, patient)
    return True


def own_test(patient_id: str, server: str | None = None) -> Callable[[Any], bool]:
    """Whether a resource is this patient's (``belongs_to``; ``server`` the call's
    ``fhirServer``), for dicts and typed Observations alike; the typed one is read
    without making a dict of it when its subject (or patient) is a plain reference, as
    hundreds are per call."""
    patient = _patient(patient_id, server)
    exact = patient.exact

    def is_own(resource: Any) -> bool:
        if type(resource) is ObservationBytes:
            typed = resource.typed
            ref = typed.subject if typed.subject is not UNSET else typed.patient
            if ref is UNSET:
                return True
            reference = ref.reference
            if reference is not UNSET:  # the usual case first, without a call
                return reference == exact or _names(reference, patient)
            resource = resource.as_dict()
        return not isinstance(resource, Mapping) or _belongs(resource, patient_id, patient)

    return is_own


def all_about_another_patient(
    resources: Iterable[Any], patient_id: str, server: str | None = None
) -> bool:
    """Whether ``resources`` holds some and every one is another patient's (``server``
    the call's ``fhirServer``): a prefetch template or a patient id mapping gone wrong,
    not this patient's data. Stops at the first resource of this patient (the first, in
    the usual case)."""
    is_own = own_test(patient_id, server)
    seen = False
    for resource in resources:
        if is_own(resource):
            return False
        seen = True
    return seen
