"""A synthetic hospital population as a FHIR Bulk Data export (NDJSON), for ``spine-cds replay``.

Deterministic: the same seed and size give the same bytes, and patient ``i`` is drawn
from its own generator (``Random(f"{seed}/{i}")``), so a population of 1,000 is the
first 1,000 patients of a population of 100,000.

Shapes come from the example patients (``cds_service.examples``): a patient with an NVO
episode is one of the worked examples placed on a random date, its identifiers
renamed, its values moved by a little noise, some of its results dropped (gaps), an
antibiotic order added at the treatment start when the example has none, a diagnostic
spine study the day before the episode, sometimes a second repeat order, and for each
order, more often than not, the study that was performed after it (an ImagingStudy
with the order's code, or a Procedure, with ``basedOn``). An example's own spine
operation, earlier study and imaging report (e39, e40) come along with it, so every
declared data source has data. The other patients, most of the export as in a hospital,
have a few CRPs, sometimes a spine or brain study and sometimes a degenerative disc
condition, and no NVO. A few orders carry a local code the value sets do not know.

Every code comes from the project's value sets or the example patients, except the
local order code, which is in a system under example.org so no one mistakes it for a
standard one. Output files: ``<Type>.ndjson`` per resource type (``RESOURCE_TYPES``, from
the table of data sources), one resource a line, written patient by patient (bounded
memory whatever the size).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import IO, Any

from cds_service.datasources import SOURCES
from cds_service.examples import example_keys, load_example
from cds_service.impact.export import ORDER_TYPE, PERFORMED_TYPES

__all__ = ["RESOURCE_TYPES", "PopulationSpec", "generate", "patient_resources"]

# The Patient, the type of each declared data source (the examples hold no other), the
# orders and the studies performed after them: a new data source gets its file here.
RESOURCE_TYPES = tuple(
    dict.fromkeys(("Patient", *(s.resource_type for s in SOURCES), ORDER_TYPE, *PERFORMED_TYPES))
)
CPT = "http://www.ama-assn.org/go/cpt"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
# A hospital's own order catalogue: not a standard system, so never in the value sets.
LOCAL_ORDERS = "http://hospital.example.org/fhir/CodeSystem/radiology-orders"
LOCAL_ORDER = {"system": LOCAL_ORDERS, "code": "MR-LSP-GAD", "display": "MRI lumbar spine w/o+w"}
# From the examples: e01's CRP and e09's brain MRI.
CRP = {
    "system": LOINC,
    "code": "1988-5",
    "display": "C reactive protein [Mass/volume] in Serum or Plasma",
}
BRAIN_MRI = {"system": LOINC, "code": "24590-2", "display": "MR Brain"}
# From the value sets: a degenerative disc condition (a mimic) and plain lumbar MRI/CT.
DISC_DEGENERATION = {"system": ICD10CM, "code": "M51.36"}
PLAIN_SPINE = ("72148", "72131")  # CPT lumbar MRI without contrast, lumbar CT without
_LAB = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory",
        }
    ]
}
_MODALITY = {"MRI": "MR", "CT": "CT"}


@dataclass(frozen=True)
class PopulationSpec:
    """What to generate: how many patients, the seed, and the period the orders fall in."""

    patients: int
    seed: int = 1
    first_day: date = date(2024, 1, 1)
    days: int = 730
    nvo_share: float = 0.2  # share of patients with an NVO episode (from the examples)


def _value_set(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        files("cds_service.valuesets").joinpath(f"{name}.json").read_text("utf-8")
    )
    return data


def _antibiotic_codings() -> list[dict[str, str]]:
    codings = []
    for entry in _value_set("antibiotics")["entries"]:
        for rx in entry.get("rxnorm") or []:
            if entry.get("notSystemicWhen"):
                continue  # keep to drugs whose route the order need not state
            codings.append({"system": RXNORM, "code": rx["code"], "display": rx["display"]})
    return codings


def _imaging_displays() -> dict[str, tuple[str, str]]:
    """CPT code -> (display, modality) for the verified spine codes."""
    return {
        e["code"]: (e["display"], e["modality"])
        for e in _value_set("spine-imaging")["entries"]
        if e["system"] == CPT and e.get("verified")
    }


_PID = re.compile(r"spine-cds-e\d+(?![0-9])")


def _renamed(resource: Any, new_id: str) -> Any:
    return json.loads(_PID.sub(new_id, json.dumps(resource)))


def _when(day: date, hhmm: str, tz: str) -> str:
    return f"{day.isoformat()}T{hhmm}:00{tz}"


def _noisy(resource: dict[str, Any], rng: random.Random) -> None:
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | float):
        value = quantity["value"] * (1 + rng.gauss(0, 0.04))
        quantity["value"] = round(value) if isinstance(quantity["value"], int) else round(value, 1)


def _order(
    pid: str,
    oid: str,
    coding: dict[str, str],
    authored: str,
    status: str,
) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": oid,
        "status": status,
        "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "363679005"}]}],
        "code": {"coding": [coding], "text": coding.get("display", coding["code"])},
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": authored,
    }


def _performed(
    pid: str, oid: str, coding: dict[str, str], when: str, modality: str, rng: random.Random
) -> dict[str, Any]:
    based_on = [{"reference": f"ServiceRequest/{oid}"}]
    if rng.random() < 0.7:
        return {
            "resourceType": "ImagingStudy",
            "id": f"{oid}-study",
            "status": "available",
            "subject": {"reference": f"Patient/{pid}"},
            "started": when,
            "basedOn": based_on,
            "procedureCode": [{"coding": [coding]}],
            "modality": [{"system": DICOM, "code": _MODALITY.get(modality, "MR")}],
        }
    return {
        "resourceType": "Procedure",
        "id": f"{oid}-proc",
        "status": "completed",
        "code": {"coding": [coding]},
        "subject": {"reference": f"Patient/{pid}"},
        "performedDateTime": when,
        "basedOn": based_on,
    }


def _orders_with_studies(
    pid: str,
    oid: str,
    coding: dict[str, str],
    day: date,
    tz: str,
    modality: str,
    rng: random.Random,
    performed_share: float = 0.75,
) -> list[dict[str, Any]]:
    done = rng.random() < performed_share
    out = [_order(pid, oid, coding, _when(day, "10:00", tz), "completed" if done else "revoked")]
    if done:
        out.append(
            _performed(
                pid,
                oid,
                coding,
                _when(day + timedelta(days=rng.randint(0, 4)), "15:30", tz),
                modality,
                rng,
            )
        )
    return out


class _Generator:
    def __init__(self, spec: PopulationSpec) -> None:
        self.spec = spec
        self.keys = [k for k in example_keys()]
        self.antibiotics = _antibiotic_codings()
        self.imaging = _imaging_displays()

    def patient(self, index: int) -> list[dict[str, Any]]:
        rng = random.Random(f"{self.spec.seed}/{index}")  # noqa: S311 (synthetic data, not secrets)
        pid = f"syn-{self.spec.seed}-{index:07d}"
        day = self.spec.first_day + timedelta(days=rng.randrange(self.spec.days))
        if rng.random() < self.spec.nvo_share:
            return self._nvo(pid, day, rng)
        return self._other(pid, day, rng)

    def _nvo(self, pid: str, order_day: date, rng: random.Random) -> list[dict[str, Any]]:
        example = load_example(rng.choice(self.keys), order_day)
        t0 = order_day - timedelta(days=example.order_day)
        tz = str(example.draft_order["authoredOn"])[19:] or "Z"
        out: list[dict[str, Any]] = []
        drop_esr = rng.random() < 0.1
        drop_pain = rng.random() < 0.1
        has_antibiotic = False
        for entry in example.bundle["entry"]:
            resource = _renamed(entry["resource"], pid)
            rtype = resource["resourceType"]
            if rtype == "Observation":
                code = resource.get("code", {}).get("coding", [{}])[0].get("code")
                if (drop_esr and code == "4537-7") or (drop_pain and code == "72514-3"):
                    continue
                if rng.random() < 0.05:
                    continue
                _noisy(resource, rng)
                if rng.random() < 0.05:
                    resource.pop("issued", None)
            if rtype == "MedicationRequest":
                has_antibiotic = True
            out.append(resource)
        if not has_antibiotic and rng.random() < 0.7:
            out.append(self._antibiotic(pid, f"{pid}-abx", t0, tz, rng))
        coding = dict(example.draft_order["code"]["coding"][0])
        modality = self.imaging.get(coding["code"], ("", "MRI"))[1]
        # the diagnostic study, before the infection was on record
        diagnostic = {"system": CPT, "code": "72158", "display": self.imaging["72158"][0]}
        out += _orders_with_studies(
            pid, f"{pid}-dx", diagnostic, t0 - timedelta(days=1), tz, "MRI", rng, 0.95
        )
        if rng.random() < 0.05:
            coding = dict(LOCAL_ORDER)
        repeat = _orders_with_studies(pid, f"{pid}-r1", coding, order_day, tz, modality, rng)
        for resource in repeat:  # the example's order as written: its priority and reason
            if resource["resourceType"] == "ServiceRequest":
                for field in ("priority", "reasonCode", "reasonReference"):
                    if field in example.draft_order:
                        resource[field] = _renamed(example.draft_order[field], pid)
        out += repeat
        if rng.random() < 0.25:
            later = order_day + timedelta(days=rng.randint(10, 40))
            out.append(self._crp(pid, f"{pid}-crp-late", later, tz, rng.randint(3, 120)))
            out += _orders_with_studies(pid, f"{pid}-r2", coding, later, tz, modality, rng)
        return out

    def _other(self, pid: str, day: date, rng: random.Random) -> list[dict[str, Any]]:
        tz = rng.choice(["Z", "+01:00", "-05:00"])
        out: list[dict[str, Any]] = [
            {
                "resourceType": "Patient",
                "id": pid,
                "gender": rng.choice(["female", "male"]),
                "birthDate": f"{rng.randint(1930, 2000)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
            }
        ]
        for n in range(rng.randint(0, 3)):
            lab_day = day - timedelta(days=rng.randint(0, 60))
            out.append(self._crp(pid, f"{pid}-crp{n}", lab_day, tz, rng.randint(1, 60)))
        if rng.random() < 0.05:
            out.append(
                {
                    "resourceType": "Condition",
                    "id": f"{pid}-disc",
                    "code": {"coding": [DISC_DEGENERATION]},
                    "subject": {"reference": f"Patient/{pid}"},
                    "recordedDate": (day - timedelta(days=30)).isoformat(),
                }
            )
        roll = rng.random()
        if roll < 0.3:
            code = rng.choice(PLAIN_SPINE)
            display, modality = self.imaging[code]
            coding = {"system": CPT, "code": code, "display": display}
            out += _orders_with_studies(pid, f"{pid}-img", coding, day, tz, modality, rng)
        elif roll < 0.4:
            out += _orders_with_studies(pid, f"{pid}-img", dict(BRAIN_MRI), day, tz, "MRI", rng)
        return out

    def _crp(self, pid: str, oid: str, day: date, tz: str, value: int) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "id": oid,
            "status": "final",
            "category": [_LAB],
            "code": {"coding": [CRP], "text": CRP["display"]},
            "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": _when(day, "08:00", tz),
            "issued": _when(day, "09:00", tz),
            "valueQuantity": {"value": value, "unit": "mg/L", "system": UCUM, "code": "mg/L"},
        }

    def _antibiotic(
        self, pid: str, oid: str, t0: date, tz: str, rng: random.Random
    ) -> dict[str, Any]:
        coding = rng.choice(self.antibiotics)
        start = _when(t0, "14:00", tz)
        return {
            "resourceType": "MedicationRequest",
            "id": oid,
            "status": "completed",
            "intent": "order",
            "medicationCodeableConcept": {"coding": [coding], "text": coding["display"]},
            "subject": {"reference": f"Patient/{pid}"},
            "authoredOn": start,
            "dosageInstruction": [
                {
                    "text": "IV",
                    "timing": {"repeat": {"boundsPeriod": {"start": start}}},
                    "route": {"text": "intravenous"},
                }
            ],
        }


def patient_resources(spec: PopulationSpec) -> Iterator[list[dict[str, Any]]]:
    """Each patient's resources in turn (the Patient first)."""
    generator = _Generator(spec)
    for index in range(spec.patients):
        yield generator.patient(index)


def generate(spec: PopulationSpec, out_dir: Path) -> dict[str, int]:
    """Write the population as ``<Type>.ndjson`` files in ``out_dir``; lines per type."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(RESOURCE_TYPES, 0)
    with ExitStack() as stack:
        handles: dict[str, IO[str]] = {
            t: stack.enter_context(open(out_dir / f"{t}.ndjson", "w", encoding="utf-8"))
            for t in RESOURCE_TYPES
        }
        for resources in patient_resources(spec):
            for resource in resources:
                rtype = resource["resourceType"]
                handles[rtype].write(json.dumps(resource, separators=(",", ":")) + "\n")
                counts[rtype] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spine_cds_dev.population",
        description="Write a synthetic population as Bulk Data NDJSON for spine-cds replay.",
    )
    parser.add_argument("out_dir", type=Path, help="directory for the <Type>.ndjson files")
    parser.add_argument("--patients", type=int, default=1000, help="how many [1000]")
    parser.add_argument("--seed", type=int, default=1, help="random seed [1]")
    parser.add_argument(
        "--first-day",
        type=date.fromisoformat,
        default=date(2024, 1, 1),
        help="first day orders may fall on [2024-01-01]",
    )
    parser.add_argument("--days", type=int, default=730, help="days the orders spread over [730]")
    args = parser.parse_args(argv)
    if args.patients < 1 or args.days < 1:
        parser.error("--patients and --days must be at least 1")
    started = datetime.now()
    counts = generate(
        PopulationSpec(args.patients, args.seed, args.first_day, args.days), args.out_dir
    )
    seconds = (datetime.now() - started).total_seconds()
    lines = ", ".join(f"{t} {n}" for t, n in counts.items())
    print(f"{args.patients} patients written to {args.out_dir} in {seconds:.1f} s: {lines}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
