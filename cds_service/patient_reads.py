"""The gathered resources read for the patient in context: kept only when they are this
patient's, then mapped; the Conditions and the Observations possibly early, while the
last fetches are still out.

Never trust prefetch (or a FHIR server): a resource whose subject names another patient,
or names someone only by identifier or display, is left out and the audit says so. The
mapping is ``fhir_mappers``'; what this module adds is which resources go in and, for
fetched data, when (``EarlyReads``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from msgspec import UNSET

from cds_service.datasources import keys_feeding
from cds_service.runtime import Runtime
from fhir_mappers.conditions import map_conditions
from fhir_mappers.model import ConditionFact, DataIssue, Measurement
from fhir_mappers.observations import map_observations
from fhir_mappers.wire import ObservationBytes

SUBJECT_FIELDS = ("subject", "patient")


def _belongs_to(resource: Mapping[str, Any], patient_id: str) -> bool:
    """False unless the resource's subject (or patient) references this patient.

    Never trust prefetch: a subject that names another patient, or that names someone
    only by identifier or display (which cannot be checked against ``patientId``), makes
    the resource someone else's as far as this decision goes. A resource with no such
    field at all came from a query scoped to this patient and is kept.
    """
    for name in SUBJECT_FIELDS:
        if name not in resource:
            continue
        ref = resource[name]
        reference = ref.get("reference") if isinstance(ref, dict) else None
        return isinstance(reference, str) and refers_to(reference, patient_id)
    return True


def refers_to(reference: str, patient_id: str) -> bool:
    """Whether a reference (relative or absolute) names ``Patient/<patient_id>``."""
    return reference == f"Patient/{patient_id}" or reference.endswith(f"/Patient/{patient_id}")


def own_resources(resources: Iterable[Any], patient_id: str, issues: list[DataIssue]) -> list[Any]:
    """The resources that are this patient's; each other one is left out and said in
    ``issues``."""
    kept = []
    # ``_belongs_to`` for a typed Observation, inline (hundreds per call): a present
    # subject (or patient) is an object whose reference, if any, is a string (the typed
    # decode refused others); the reference strings are made once, not per resource.
    exact = f"Patient/{patient_id}"
    tail = f"/Patient/{patient_id}"
    for resource in resources:
        if type(resource) is ObservationBytes:
            typed = resource.typed
            ref = typed.subject
            if ref is UNSET:
                ref = typed.patient
            if ref is UNSET:
                kept.append(resource)
                continue
            reference = ref.reference
            if reference is not UNSET and (reference == exact or reference.endswith(tail)):
                kept.append(resource)
                continue
            resource = resource.as_dict()
        if isinstance(resource, dict) and not _belongs_to(resource, patient_id):
            rtype = resource.get("resourceType", "Resource")
            issues.append(
                DataIssue(
                    f"{rtype}/{resource.get('id', '?')}",
                    "its subject is not a reference to this patient: ignored",
                    plain="not linked to this patient",
                )
            )
            continue
        kept.append(resource)
    return kept


class ConditionsRead(NamedTuple):
    kept: list[Any]  # the resources of this patient
    foreign: list[DataIssue]  # those of another, said
    conditions: tuple[ConditionFact, ...]
    issues: tuple[DataIssue, ...]


class MeasurementsRead(NamedTuple):
    kept: list[Any]
    foreign: list[DataIssue]
    measurements: tuple[Measurement, ...]
    issues: tuple[DataIssue, ...]
    unread: list[Any]  # Observations of a known code the mapper could not read


_CONDITION_KEYS = keys_feeding("conditions")
_MEASUREMENT_KEYS = keys_feeding("measurements")


def _read_conditions(
    lists: tuple[list[Any], ...], patient_id: str, runtime: Runtime
) -> ConditionsRead:
    foreign: list[DataIssue] = []
    kept = own_resources((r for found in lists for r in found), patient_id, foreign)
    conditions, issues = map_conditions(kept, runtime.value_sets)
    return ConditionsRead(kept, foreign, conditions, issues)


def _read_measurements(
    lists: tuple[list[Any], ...], patient_id: str, runtime: Runtime
) -> MeasurementsRead:
    foreign: list[DataIssue] = []
    kept = own_resources((r for found in lists for r in found), patient_id, foreign)
    unread: list[Any] = []
    measurements, issues = map_observations(
        kept, runtime.value_sets, runtime.mapping, unread=unread
    )
    return MeasurementsRead(kept, foreign, measurements, issues, unread)


def _lists_of(resources: Mapping[str, list[Any]], keys: tuple[str, ...]) -> tuple[list[Any], ...]:
    return tuple(resources.get(key, []) for key in keys)


def _same_lists(a: tuple[list[Any], ...], b: tuple[list[Any], ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


class EarlyReads:
    """The Conditions and the Observations, read as soon as all their keys are in.

    Fetched data arrives one query after another (many FHIR servers answer one at a
    time; the Observations, sent first, come first). ``gather`` calls this in a fetch
    thread, when no other call is computing, with the keys known so far: the
    Observations can then be mapped while the last, short queries are still on their way
    (about a millisecond of the call's own work off its critical path, measured). A read
    made early is used only if the call gathered exactly those lists (the same objects):
    anything refetched, split again or failed is read again here, in the call's thread.
    """

    def __init__(self, runtime: Runtime, patient_id: str) -> None:
        self._runtime = runtime
        self._patient_id = patient_id
        self._conditions: tuple[tuple[list[Any], ...], ConditionsRead] | None = None
        self._measurements: tuple[tuple[list[Any], ...], MeasurementsRead] | None = None

    def __call__(self, ready: Mapping[str, list[Any]]) -> None:
        if self._measurements is None and all(k in ready for k in _MEASUREMENT_KEYS):
            lists = _lists_of(ready, _MEASUREMENT_KEYS)
            self._measurements = lists, _read_measurements(lists, self._patient_id, self._runtime)
        if self._conditions is None and all(k in ready for k in _CONDITION_KEYS):
            lists = _lists_of(ready, _CONDITION_KEYS)
            self._conditions = lists, _read_conditions(lists, self._patient_id, self._runtime)

    def conditions_of(self, resources: Mapping[str, list[Any]]) -> ConditionsRead:
        lists = _lists_of(resources, _CONDITION_KEYS)
        early = self._conditions
        if early is not None and _same_lists(early[0], lists):
            return early[1]
        return _read_conditions(lists, self._patient_id, self._runtime)

    def measurements_of(self, resources: Mapping[str, list[Any]]) -> MeasurementsRead:
        lists = _lists_of(resources, _MEASUREMENT_KEYS)
        early = self._measurements
        if early is not None and _same_lists(early[0], lists):
            return early[1]
        return _read_measurements(lists, self._patient_id, self._runtime)
