"""Dates as EHRs write them, and more than one infection entry, through the service.

Each case posts an order-select request, its prefetch filled from FHIR resources the way
an EHR fills it, to the app in process, and reads the card. They are the shapes an
outside tester found answered wrongly (clinical-rules.md, "The decision", "Reading the
data", "Known at diagnosis"); the engine tests hold the rules in general.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from cds_service.discovery import load_discovery
from cds_service.ehr_requests import build_request, local_prefetch

SERVICE = "spine-imaging-followup-select"
PATIENT = "dates-p1"
DAY0 = date(2026, 9, 1)
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def at(day: int, hour: int = 8, zone: str = "Z", minute: int = 0) -> str:
    return f"{(DAY0 + timedelta(days=day)).isoformat()}T{hour:02d}:{minute:02d}:00{zone}"


class Record:
    """One synthetic patient's resources."""

    def __init__(self) -> None:
        self.resources: list[dict[str, Any]] = [
            {"resourceType": "Patient", "id": PATIENT, "birthDate": "1960-05-05"}
        ]

    def condition(self, code: str, **dates: str) -> None:
        self.resources.append(
            {
                "resourceType": "Condition",
                "id": f"c{len(self.resources)}",
                "subject": {"reference": f"Patient/{PATIENT}"},
                "code": {"coding": [{"system": ICD, "code": code}]},
                "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
                "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
                **dates,
            }
        )

    def observation(self, loinc: str, when: str, value: float, unit: str) -> None:
        self.resources.append(
            {
                "resourceType": "Observation",
                "id": f"o{len(self.resources)}",
                "status": "final",
                "subject": {"reference": f"Patient/{PATIENT}"},
                "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                "effectiveDateTime": when,
                "valueQuantity": {
                    "value": value,
                    "unit": unit,
                    "system": "http://unitsofmeasure.org",
                    "code": unit,
                },
            }
        )

    def crp(self, when: str, value: float) -> None:
        self.observation("1988-5", when, value, "mg/L")

    def pain(self, when: str, value: float) -> None:
        self.observation("72514-3", when, value, "{score}")

    def improving(self) -> None:
        """CRP 142→61→18 mg/L and pain 8→5→3 on days 0, 14 and 28."""
        for day, crp, pain in ((0, 142, 8), (14, 61, 5), (28, 18, 3)):
            self.crp(at(day), crp)
            self.pain(at(day), pain)

    def ask(self, client: Any, authored_on: str) -> dict[str, Any]:
        """The one card of an order-select for a lumbar MRI (CPT 72158) written then."""
        order = {
            "resourceType": "ServiceRequest",
            "id": "mri",
            "status": "draft",
            "intent": "order",
            "subject": {"reference": f"Patient/{PATIENT}"},
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72158"}]},
            "authoredOn": authored_on,
        }
        request = build_request(
            "order-select", "7d0c3e4a-1b2c-4d5e-8f90-a1b2c3d4e5f6", PATIENT, order
        )
        templates = load_discovery().services[SERVICE].prefetch
        request["prefetch"] = local_prefetch(templates, request["context"], self.resources)
        answer = client.post(f"/cds-services/{SERVICE}", json=request)
        assert answer.status_code == 200, answer.get_json()
        (card,) = answer.get_json()["cards"]
        return dict(card)


def result(card: dict[str, Any]) -> dict[str, Any]:
    return dict(card["extension"]["spine-cds-assessment"])


def test_an_abscess_with_a_month_onset_first_recorded_on_treatment_is_new(client: Any) -> None:
    # NVO from 10 September; an epidural abscess with onset "2026-09" first recorded on
    # 25 September (treatment day 15): the month does not show it was there at diagnosis
    # (was: "recorded at diagnosis (2026-09-01, 9 days before treatment start)", and
    # advise-against stood).
    record = Record()
    record.condition("M46.26", onsetDateTime=at(9, 7))
    record.condition("G06.2", onsetDateTime="2026-09", recordedDate=at(24, 9))
    for day, crp, pain in ((9, 120, 7), (23, 50, 4), (37, 15, 2)):
        record.crp(at(day), crp)
        record.pain(at(day), pain)
    card = record.ask(client, at(38, 10))
    assert result(card)["recommendation"] == "support"
    assert [r["id"] for r in result(card)["rulesFired"]] == ["complication"]
    assert "day 15, onset 2026-09" in card["summary"]
    assert "2026-09-01" not in card["summary"] + card["detail"]


def test_a_crp_drawn_before_an_evening_order_west_of_the_onset_s_zone_is_used(
    client: Any,
) -> None:
    # Every value and the order at -05:00, only the infection's onset in UTC. The CRP of
    # 60 at 20:00 on day 20 was drawn 3.5 hours before the order at 23:30: a rise from 20
    # after day 14 (was: left out as "dated after the order", and advise-against).
    record = Record()
    record.condition("M46.26", onsetDateTime=at(0, 7))
    for day, crp, pain in ((0, 120, 7), (14, 20, 3)):
        record.crp(at(day, 8, "-05:00"), crp)
        record.pain(at(day, 8, "-05:00"), pain)
    record.crp(at(20, 20, "-05:00"), 60)
    record.pain(at(20, 20, "-05:00"), 3)
    card = record.ask(client, at(20, 23, "-05:00", minute=30))
    assert result(card)["recommendation"] == "support"
    assert [r["id"] for r in result(card)["rulesFired"]] == ["markers-not-responding"]
    assert "20→60 mg/L" in card["summary"]
    assert "dated after the order" not in card["detail"]


def test_a_deficit_found_with_the_current_diagnosis_is_not_new_under_an_old_open_entry(
    client: Any,
) -> None:
    # An NVO entry from 900 days before, never closed; the current one from day 0; cauda
    # equina syndrome from day 1, improving since (was: "New cauda equina syndrome (day
    # 901): emergency MRI ... now", counted from the old entry).
    record = Record()
    record.condition("M46.26", onsetDateTime=at(-900, 7))
    record.condition("M46.26", onsetDateTime=at(0, 7))
    record.condition("G83.4", onsetDateTime=at(1, 7))
    for day, crp, pain in ((0, 120, 7), (14, 50, 4), (28, 15, 2)):
        record.crp(at(day), crp)
        record.pain(at(day), pain)
    card = record.ask(client, at(29, 10))
    assert result(card)["recommendation"] == "insufficient-data"
    assert "known-deficit" in result(card)["missing"]
    assert card["indicator"] != "critical"
    assert "day 901" not in card["summary"] + card["detail"]
    assert "order on day 29" in card["detail"]


def test_new_diagnoses_no_value_set_reads_reach_the_card_and_the_removal_is_only_offered(
    client: Any,
) -> None:
    # A lumbar infection improving by its markers and pain, and on day 24 a neurogenic
    # bladder (N31.9) and a foot drop (M21.372), codes no value set of the service holds:
    # an outside clinician's review found them dropped before the engine saw them, so
    # the card read "no red flag recorded" and recommended deleting the MRI.
    record = Record()
    record.condition("M46.26", onsetDateTime=at(0, 7))
    record.condition("N31.9", onsetDateTime=at(24, 9))
    record.condition("M21.372", onsetDateTime=at(24, 9))
    record.improving()
    card = record.ask(client, at(29, 10))
    text = card["summary"] + card["detail"]
    assert "not among the diagnoses this service reads" in text
    assert "(day 24)" in text
    assert "no red flag recorded among the diagnoses read" in text
    # the summary a busy clinician acts on says it too (a second review saw it only in
    # the detail)
    assert card["summary"].endswith("; new diagnoses not read"), card["summary"]
    assert len(card["summary"]) <= 140
    removals = [
        s for s in card.get("suggestions", []) if any(a["type"] == "delete" for a in s["actions"])
    ]
    assert removals, card.get("suggestions")
    assert all(s.get("isRecommended") is False for s in removals)


def test_a_new_diagnosis_dated_only_to_the_month_of_treatment_is_named(client: Any) -> None:
    # A re-check: a urinary retention with onset "2026-10" (the month treatment began)
    # was left out, the card read "no red flag recorded" and recommended the removal.
    record = Record()
    record.condition("M46.26", onsetDateTime=at(0, 7))
    month = at(0, 7)[:7]
    record.condition("R33.9", onsetDateTime=month, recordedDate=at(20, 9)[:10])
    record.improving()
    card = record.ask(client, at(29, 10))
    assert card["summary"].endswith("; new diagnoses not read"), card["summary"]
    assert "not among the diagnoses this service reads" in card["detail"]
    assert "R33.9" in card["detail"], card["detail"]


def test_an_abscess_of_an_earlier_infection_still_open_is_not_called_recorded_at_diagnosis(
    client: Any,
) -> None:
    # An epidural abscess of an infection three years before (its entry resolved), never
    # closed, beside a new lumbar infection that improves: an outside clinician saw it
    # called "recorded at diagnosis" with this infection's undrained-abscess advice.
    record = Record()
    resolved = {"coding": [{"system": CLINICAL, "code": "resolved"}]}
    record.condition("M46.26", onsetDateTime="2023-10-20T08:00:00Z", clinicalStatus=resolved)
    record.condition("G06.2", onsetDateTime="2023-11-04T08:00:00Z")
    record.condition("M46.26", onsetDateTime=at(0, 7))
    record.improving()
    card = record.ask(client, at(29, 10))
    assert result(card)["recommendation"] == "advise-against"
    text = card["summary"] + card["detail"]
    assert "Recorded before this infection and still active" in text
    assert "(2023-11-04," in text
    assert "Recorded at diagnosis" not in text
    assert "If the abscess was not drained" not in text


def test_an_abscess_dated_weeks_before_the_only_infection_is_read_as_found_with_it(
    client: Any,
) -> None:
    # With no earlier infection on record, an abscess dated 15 days before the infection's
    # entry is this infection's (diagnosis often comes late: the clinician's re-run).
    record = Record()
    record.condition("G06.2", onsetDateTime=at(-15, 8))
    record.condition("M46.26", onsetDateTime=at(0, 7))
    record.improving()
    said = record.ask(client, at(29, 10))
    text = said["summary"] + said["detail"]
    assert "Recorded at diagnosis, not a new red flag" in text
    assert "Recorded before this infection" not in text
    assert "If the abscess was not drained" in text
