"""The gathered resources read for the patient in context: kept only when they are this
patient's, then mapped; the Conditions and the Observations possibly early, while the
last fetches are still out.

Never trust prefetch (or a FHIR server): a resource whose subject names another patient,
or names someone only by identifier or display, is left out and the audit says so; so is
one whose reference only ends in this patient (``Patient/B/Patient/A``) or whose absolute
reference is on another server than the call's ``fhirServer`` (``fhir_mappers.subjects``
has the rule). The mapping is ``fhir_mappers``'; what this module adds is which resources
go in and, for fetched data, when (``EarlyReads``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, NamedTuple, TypeVar

from cds_service.datasources import keys_feeding
from cds_service.runtime import Runtime
from fhir_mappers.conditions import map_conditions
from fhir_mappers.model import ConditionFact, DataIssue, Measurement
from fhir_mappers.observations import map_observations
from fhir_mappers.subjects import own_test
from fhir_mappers.wire import ObservationBytes

T = TypeVar("T")
Lists = tuple[list[Any], ...]  # the resources of each key that feeds one mapper


def own_resources(
    resources: Iterable[Any], patient_id: str, issues: list[DataIssue], server: str | None = None
) -> list[Any]:
    """The resources that are this patient's (``fhir_mappers.subjects``: an absolute
    reference must be on ``server``, the call's fhirServer, when it names one); each
    other one is left out and said in ``issues``."""
    kept = []
    is_own = own_test(patient_id, server)
    for resource in resources:
        if is_own(resource):
            kept.append(resource)
            continue
        if type(resource) is ObservationBytes:
            resource = resource.as_dict()
        if isinstance(resource, dict):
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
    lists: Lists, patient_id: str, server: str | None, runtime: Runtime
) -> ConditionsRead:
    foreign: list[DataIssue] = []
    kept = own_resources((r for found in lists for r in found), patient_id, foreign, server)
    # OTHER too: new diagnoses on treatment that no value set reads are named
    # (engine.course.new_diagnoses_not_read), never passed over in silence.
    conditions, issues = map_conditions(kept, runtime.value_sets, include_other=True)
    return ConditionsRead(kept, foreign, conditions, issues)


def _read_measurements(
    lists: Lists, patient_id: str, server: str | None, runtime: Runtime
) -> MeasurementsRead:
    foreign: list[DataIssue] = []
    kept = own_resources((r for found in lists for r in found), patient_id, foreign, server)
    unread: list[Any] = []
    measurements, issues = map_observations(
        kept, runtime.value_sets, runtime.mapping, unread=unread
    )
    return MeasurementsRead(kept, foreign, measurements, issues, unread)


def _lists_of(resources: Mapping[str, list[Any]], keys: tuple[str, ...]) -> Lists:
    return tuple(resources.get(key, []) for key in keys)


def _same_lists(a: Lists, b: Lists) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


class _Early(Generic[T]):
    """One kind of data that may be read early: from the lists of its keys, by ``read``."""

    def __init__(self, keys: tuple[str, ...], read: Callable[[Lists], T]) -> None:
        self._keys = keys
        self._read = read
        self._made: tuple[Lists, T] | None = None

    def offer(self, ready: Mapping[str, list[Any]]) -> None:
        """Read now if every key is in ``ready`` and it was not read before."""
        if self._made is None and all(key in ready for key in self._keys):
            lists = _lists_of(ready, self._keys)
            self._made = lists, self._read(lists)

    def of(self, resources: Mapping[str, list[Any]]) -> T:
        """The read of these resources: the early one if made from these very lists."""
        lists = _lists_of(resources, self._keys)
        made = self._made
        if made is not None and _same_lists(made[0], lists):
            return made[1]
        return self._read(lists)


class EarlyReads:
    """The Conditions and the Observations, read as soon as all their keys are in.

    Fetched data arrives one query after another (many FHIR servers answer one at a
    time; the Observations, sent first, come first). ``gather`` calls this in a fetch
    thread, when no other call is computing, with the keys known so far: the
    Observations can then be mapped while the last, short queries are still on their way
    (measured for the benchmark patient: in process, 1.0 ms of the call's own work left
    its critical path; through gunicorn the gain was within the noise of four runs,
    -0.6 to +0.5 ms; bench/README.md, round six). A read
    made early is used only if the call gathered exactly those lists (the same objects):
    anything refetched, split again or failed is read again here, in the call's thread.
    """

    def __init__(self, runtime: Runtime, patient_id: str, server: str | None = None) -> None:
        """``server``: the call's fhirServer (None when it names none), which an absolute
        subject reference must be on."""
        self.conditions = _Early(
            _CONDITION_KEYS, lambda lists: _read_conditions(lists, patient_id, server, runtime)
        )
        self.measurements = _Early(
            _MEASUREMENT_KEYS,
            lambda lists: _read_measurements(lists, patient_id, server, runtime),
        )

    def __call__(self, ready: Mapping[str, list[Any]]) -> None:
        """``gather``'s ``on_ready``: read each kind of data whose keys are all in ``ready``."""
        self.measurements.offer(ready)  # first: the most work, and its keys come first
        self.conditions.offer(ready)
