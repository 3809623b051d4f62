"""Hand-built domain objects for the engine and card tests (no mappers involved).

Days are counted from T0 (day 0), as in example-scenarios.md. This module holds no
tests: the engine, card and safety tests build their patients with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cds_service.engine import Assessment, RuleSettings, assess
from fhir_mappers.model import (
    AntibioticStart,
    Coding,
    ConditionCategory,
    ConditionFact,
    DataIssue,
    ImagingOrder,
    Measurement,
    MeasurementKind,
    Modality,
    PatientData,
    When,
)

T0 = date(2024, 3, 4)
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
PATIENT = "p1"

_counter = iter(range(1, 10**9))


def day(n: int, hour: int | None = None) -> When:
    """Day ``n`` after T0: date-only (midnight UTC) unless an hour is given."""
    d = T0 + timedelta(days=n)
    instant = datetime(d.year, d.month, d.day, hour or 0, tzinfo=UTC)
    return When(instant=instant, day=d, date_only=hour is None)


def condition(
    code: str = "M46.26",
    category: ConditionCategory = ConditionCategory.NVO,
    *,
    onset: int | None = 0,
    recorded: int | None = None,
    abatement: int | None = None,
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    display: str | None = None,
    ref: str | None = None,
    system: str = ICD10,
    name: str | None = None,
    region: str | None = None,
) -> ConditionFact:
    return ConditionFact(
        reference=ref or f"Condition/c{next(_counter)}",
        category=category,
        codes=(Coding(system, code, display),),
        clinical_status=clinical,
        verification_status=verification,
        onset=day(onset) if onset is not None else None,
        recorded=day(recorded) if recorded is not None else None,
        abatement=day(abatement) if abatement is not None else None,
        name=name,
        region=region,
    )


def nvo(**kw: Any) -> ConditionFact:
    kw.setdefault("display", "Osteomyelitis of vertebra, lumbar region")
    return condition("M46.26", ConditionCategory.NVO, **kw)


def neuro(onset: int, **kw: Any) -> ConditionFact:
    kw.setdefault("display", "Cauda equina syndrome")
    return condition("G83.4", ConditionCategory.NEURO_DEFICIT, onset=onset, **kw)


def complication(onset: int, **kw: Any) -> ConditionFact:
    kw.setdefault("display", "Intraspinal abscess and granuloma")
    return condition("G06.1", ConditionCategory.COMPLICATION, onset=onset, **kw)


def mimic(onset: int = -400, **kw: Any) -> ConditionFact:
    kw.setdefault("display", "Secondary malignant neoplasm of bone")
    return condition("C79.51", ConditionCategory.MIMIC, onset=onset, **kw)


def measurement(
    kind: MeasurementKind,
    n: int,
    value: float,
    *,
    code: str,
    unit: str,
    status: str = "final",
    original_value: float | None = None,
    original_unit: str | None = None,
    comparator: str | None = None,
    hs: bool = False,
    hour: int | None = None,
    ref: str | None = None,
) -> Measurement:
    return Measurement(
        reference=ref or f"Observation/o{next(_counter)}",
        kind=kind,
        value=value,
        unit=unit,
        when=day(n, hour),
        code=Coding(LOINC, code),
        status=status,
        original_value=value if original_value is None else original_value,
        original_unit=original_unit or unit,
        comparator=comparator,
        high_sensitivity=hs,
    )


def crp(n: int, value: float, **kw: Any) -> Measurement:
    kw.setdefault("code", "30522-7" if kw.get("hs") else "1988-5")
    return measurement(MeasurementKind.CRP, n, value, unit="mg/L", **kw)


def esr(n: int, value: float, **kw: Any) -> Measurement:
    return measurement(MeasurementKind.ESR, n, value, code="4537-7", unit="mm/h", **kw)


def pain(n: int, value: float, **kw: Any) -> Measurement:
    return measurement(MeasurementKind.PAIN, n, value, code="72514-3", unit="{score}", **kw)


def order(
    authored: int | None = None,
    *,
    ref: str = "ServiceRequest/sr1",
    modality: Modality = Modality.MRI,
    code: str = "72158",
    extension: list[dict[str, Any]] | None = None,
    region: str = "lumbar",
) -> ImagingOrder:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": ref.split("/", 1)[1],
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": CPT, "code": code}]},
        "subject": {"reference": f"Patient/{PATIENT}"},
    }
    when = day(authored, 9) if authored is not None else None
    if when is not None:
        resource["authoredOn"] = when.instant.isoformat()
    if extension:
        resource["extension"] = extension
    return ImagingOrder(
        reference=ref,
        modality=modality,
        region=region,
        contrast="without-and-with",
        codes=(Coding(CPT, code),),
        authored_on=when,
        resource=resource,
    )


def run(
    measurements: Iterable[Measurement] = (),
    conditions: Iterable[ConditionFact] | None = None,
    *,
    order_day: int = 29,
    orders: Iterable[ImagingOrder] | None = None,
    settings: RuleSettings | None = None,
    antibiotics: Iterable[AntibioticStart] = (),
    issues: Iterable[DataIssue] = (),
    drafted_markers: Iterable[MeasurementKind] = (),
) -> Assessment:
    """Assess with the order authored on ``order_day`` (``now`` is far away to prove it);
    ``drafted_markers``: the CRP or ESR a draft lab order of the order set orders."""
    conds = tuple(conditions) if conditions is not None else (nvo(),)
    ords = tuple(orders) if orders is not None else (order(order_day),)
    data = PatientData(
        conditions=conds,
        measurements=tuple(measurements),
        antibiotics=tuple(antibiotics),
        issues=tuple(issues),
        drafted_markers=frozenset(drafted_markers),
    )
    now = datetime(2030, 1, 1, tzinfo=UTC)
    return assess(ords, data, settings or RuleSettings(), now)


def antibiotic(n: int, name: str = "vancomycin", hour: int | None = None) -> AntibioticStart:
    """An antibiotic order starting on day ``n``."""
    return AntibioticStart(
        reference=f"MedicationRequest/m{next(_counter)}",
        when=day(n, hour),
        name=name,
        source="authoredOn",
    )


def improving() -> list[Measurement]:
    """E1's data: CRP, ESR and pain all improving."""
    return [
        crp(0, 142),
        crp(14, 61),
        crp(28, 18),
        esr(0, 95),
        esr(28, 60),
        pain(0, 8),
        pain(14, 5),
        pain(28, 3),
    ]
