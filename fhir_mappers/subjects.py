"""Whose a resource is: its ``subject`` (or ``patient``) against the patient in context.

Never trust prefetch (or a FHIR server): a subject that names another patient, or names
someone only by identifier or display (which cannot be checked against ``patientId``),
makes the resource someone else's as far as this decision goes. A resource with no such
field at all came from a query scoped to this patient and is this patient's. Pure: no
I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from msgspec import UNSET

from fhir_mappers.wire import ObservationBytes

SUBJECT_FIELDS = ("subject", "patient")


def refers_to(reference: str, patient_id: str) -> bool:
    """Whether a reference (relative or absolute) names ``Patient/<patient_id>``, or a
    version of it (``Patient/<patient_id>/_history/<v>``): a version of this patient is
    this patient (an attack suite saw versioned subjects read as someone else's)."""
    return _names(reference, f"Patient/{patient_id}", f"/Patient/{patient_id}")


def _names(reference: str, exact: str, tail: str) -> bool:
    """``refers_to`` with the reference strings made once (hundreds of calls per call)."""
    if reference == exact or reference.endswith(tail):
        return True
    versioned = _VERSIONED.fullmatch(reference) if "/_history/" in reference else None
    return versioned is not None and _names(versioned.group(1), exact, tail)


# FHIR's id type for the version: 1 to 64 of letters, digits, '-' and '.'
_VERSIONED = re.compile(r"(.+)/_history/[A-Za-z0-9\-.]{1,64}")


def belongs_to(resource: Mapping[str, Any], patient_id: str) -> bool:
    """False unless the resource's subject (or patient) references this patient, or it
    has neither field; a Patient is this patient's when its id is ``patient_id``."""
    if resource.get("resourceType") == "Patient":
        return resource.get("id") == patient_id
    for name in SUBJECT_FIELDS:
        if name not in resource:
            continue
        ref = resource[name]
        reference = ref.get("reference") if isinstance(ref, dict) else None
        return isinstance(reference, str) and refers_to(reference, patient_id)
    return True


def own_test(patient_id: str) -> Callable[[Any], bool]:
    """Whether a resource is this patient's (``belongs_to``), for dicts and typed
    Observations alike; the typed one is read without making a dict of it when its
    subject (or patient) is a plain reference, as hundreds are per call."""
    exact, tail = f"Patient/{patient_id}", f"/Patient/{patient_id}"

    def is_own(resource: Any) -> bool:
        if type(resource) is ObservationBytes:
            typed = resource.typed
            ref = typed.subject if typed.subject is not UNSET else typed.patient
            if ref is UNSET:
                return True
            reference = ref.reference
            if reference is not UNSET:  # the usual case first, without a call
                return (
                    reference == exact or reference.endswith(tail) or _names(reference, exact, tail)
                )
            resource = resource.as_dict()
        return not isinstance(resource, Mapping) or belongs_to(resource, patient_id)

    return is_own


def all_about_another_patient(resources: Iterable[Any], patient_id: str) -> bool:
    """Whether ``resources`` holds some and every one is another patient's: a prefetch
    template or a patient id mapping gone wrong, not this patient's data. Stops at the
    first resource of this patient (the first, in the usual case)."""
    is_own = own_test(patient_id)
    seen = False
    for resource in resources:
        if is_own(resource):
            return False
        seen = True
    return seen
