"""A red flag "seen on the MRI" of the last days (clinical-rules.md, "Imaging", 2026-12-06:
"a new MRI is needed only if the exam changed"). An outside review found it said from
dates alone (an MRI that morning, a deficit that evening; a CT without contrast), and the
new MRI rated appropriate on the card that says it is not needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from msgspec.structs import replace as replace_record

from cds_service.cards import CardContext, load_override_reasons, render_response
from cds_service.engine import Assessment, Recommendation, RuleSettings, assess
from cds_service.valuesets import load_value_sets
from fhir_mappers.model import PatientData
from fhir_mappers.prior_imaging import map_prior_imaging
from tests.engine.builders import CPT, T0, complication, crp, day, neuro, nvo, order, pain
from tests.support.ratings import ratings_by_id

VS = load_value_sets()
CTX = CardContext(patient_id="p1", value_sets=VS, override_reasons=load_override_reasons())
MARKERS = [crp(0, 142), crp(14, 61), pain(0, 8), pain(14, 5)]


def card(a: Assessment) -> dict[str, Any]:
    (only,) = render_response(a, CTX)["cards"]
    result: dict[str, Any] = only
    return result


def ratings(a: Assessment) -> dict[str, str]:
    return ratings_by_id(render_response(a, CTX))


def lumbar_study(time: str, code: str = "72158") -> dict[str, Any]:
    return {
        "resourceType": "ImagingStudy",
        "id": f"s-{code}-{time[:2]}",
        "status": "available",
        "started": f"{(T0 + timedelta(days=26)).isoformat()}T{time}:00Z",
        "procedureCode": [{"coding": [{"system": CPT, "code": code}]}],
    }


def with_study(study: dict[str, Any], finding: Any) -> Assessment:
    studies, _ = map_prior_imaging([study], VS)
    data = PatientData(
        conditions=(nvo(region="lumbar"), finding),
        measurements=tuple(MARKERS),
        prior_studies=studies,
    )
    return assess([order(27)], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))


def cauda_equina() -> Any:
    """New on day 26 at 18:00 (UTC)."""
    deficit = neuro(26, name="cauda equina syndrome", region="lumbosacral")
    return replace_record(deficit, onset=day(26, 18))


def test_an_mri_done_that_morning_did_not_see_an_evening_deficit() -> None:
    c = card(with_study(lumbar_study("07:15"), cauda_equina()))
    assert "seen on" not in c["summary"]
    assert "emergency MRI of the whole spine with gadolinium now" in c["summary"]
    assert "only if the exam changed" not in c["detail"]
    assert "Last spine study: the lumbar MRI of day 26 (1 day ago)." in c["detail"]


def test_a_ct_without_contrast_did_not_see_the_deficit() -> None:
    c = card(with_study(lumbar_study("21:15", code="72131"), cauda_equina()))
    assert "seen on" not in c["summary"]
    assert "Last spine study: the lumbar CT of day 26 (1 day ago)." in c["detail"]


def test_a_deficit_seen_on_the_evening_mri_leaves_the_new_mri_unrated() -> None:
    a = with_study(lumbar_study("21:15"), cauda_equina())
    c = card(a)
    # the study in the detail's first line; the summary keeps the surgeon (a clinician
    # reader: a cauda equina syndrome card without "urgent spine surgery review")
    assert c["summary"].endswith(
        "seen on a recent MRI: a new MRI only if the exam changed; urgent spine surgery review"
    )
    assert c["detail"].startswith("**Seen on the lumbar MRI of day 26 (1 day ago): a new MRI")
    assert ratings(a) == {}  # not "appropriate" beside "a new MRI only if the exam changed"


def whole_spine_study(time: str) -> dict[str, Any]:
    """A whole-spine MRI without and with gadolinium (LOINC 30855-1)."""
    study = lumbar_study(time)
    study["procedureCode"] = [{"coding": [{"system": "http://loinc.org", "code": "30855-1"}]}]
    return study


def test_an_abscess_seen_on_a_recent_whole_spine_mri_says_so_and_is_not_rated() -> None:
    abscess = replace_record(complication(26, name="epidural abscess"), onset=day(26, 18))
    a = with_study(whole_spine_study("21:15"), abscess)
    assert a.recommendation is Recommendation.SUPPORT
    c = card(a)
    assert (
        "seen on the whole-spine MRI of day 26 (1 day ago): a new MRI only if the exam"
        in (c["summary"])
    )
    assert "MRI reasonable" not in c["summary"]
    assert c["detail"].startswith("**Seen on the whole-spine MRI of day 26 (1 day ago): a new")
    assert c["detail"].count("only if the exam changed") == 1
    assert ratings(a) == {}


def test_an_abscess_on_a_recent_lumbar_mri_still_asks_for_the_whole_spine() -> None:
    # "Abscess: MRI of the whole spine ... if not just done": a lumbar study has not looked
    # for its extent (an outside clinician saw "seen on the lumbar MRI: a new MRI only if
    # the exam changed" end the whole-spine advice of the same card)
    abscess = replace_record(complication(26, name="epidural abscess"), onset=day(26, 18))
    a = with_study(lumbar_study("21:15"), abscess)
    assert a.recommendation is Recommendation.SUPPORT
    assert "flag-seen-on-study" not in {n.code for n in a.notes}
    c = card(a)
    assert "only if the exam changed" not in c["summary"] + c["detail"]
    assert "whole spine" in c["detail"]


def test_a_deficit_seen_beside_rising_markers_stays_urgent_with_no_emergency_mri() -> None:
    """A cauda equina syndrome seen on the evening MRI, beside a CRP rising again and not
    imaged since: the deficit keeps the card urgent and the surgeon (a clinician reader:
    the study changes whether a new MRI is needed, not the urgency), but asks no
    emergency MRI for it and offers no STAT order; the markers keep the MRI ordered
    appropriate."""
    rising = (crp(0, 142), crp(14, 40), crp(26, 90), pain(0, 8), pain(26, 5))
    studies, _ = map_prior_imaging([lumbar_study("21:15")], VS)
    data = PatientData(
        conditions=(nvo(region="lumbar"), cauda_equina()),
        measurements=rising,
        prior_studies=studies,
    )
    a = assess([order(27)], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    c = card(a)
    assert c["indicator"] == "critical"
    assert c["summary"] == (
        "New cauda equina syndrome (day 26), seen on a recent MRI: a new MRI for it only if "
        "the exam changed; urgent spine surgery review"
    )
    assert c["detail"].startswith(
        "**The new deficit was seen on the lumbar MRI of day 26 (1 day ago): a new MRI for it "
        "only if the exam changed.**"
    )
    assert "CRP rising again" in c["detail"]
    assert c.get("suggestions", []) == []
    assert ratings(a) == {"sr1": "appropriate"}


def test_an_abscess_seen_on_a_whole_spine_mri_recorded_as_three_studies() -> None:
    # an outside clinician's re-run: 72156, 72157 and 72158 done the same evening were
    # not read as the whole spine, and the card asked to extend the MRI ordered to it
    studies, _ = map_prior_imaging(
        [lumbar_study("21:15", code) for code in ("72156", "72157", "72158")], VS
    )
    abscess = replace_record(complication(26, name="epidural abscess"), onset=day(26, 18))
    data = PatientData(
        conditions=(nvo(region="lumbar"), abscess),
        measurements=tuple(MARKERS),
        prior_studies=studies,
    )
    a = assess([order(27)], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert a.recommendation is Recommendation.SUPPORT
    c = card(a)
    assert "seen on the whole-spine MRI of day 26 (1 day ago)" in c["summary"]
    assert "extend it to the whole spine" not in c["detail"]
    # two of the three are not the whole spine
    two, _ = map_prior_imaging([lumbar_study("21:15", code) for code in ("72157", "72158")], VS)
    data_two = PatientData(
        conditions=data.conditions, measurements=data.measurements, prior_studies=two
    )
    b = assess([order(27)], data_two, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert "flag-seen-on-study" not in {n.code for n in b.notes}
