"""After spine surgery in the episode (clinical-rules.md, "Imaging", 2026-12-06): a CT is
not advised against, and the card offers "Post-operative or hardware assessment"; an MRI
keeps its decision and the card names the operation. The Procedure goes through the
mapper and the shipped value set."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from cds_service.cards import CardContext, render_response
from cds_service.cards.context import load_override_reasons
from cds_service.engine import Assessment, Recommendation, RuleSettings, assess
from cds_service.valuesets import load_value_sets
from fhir_mappers.model import Modality, PatientData
from fhir_mappers.procedures import map_spine_surgery
from tests.engine.builders import CPT, T0, improving, nvo, order, pain

VS = load_value_sets()
CTX = CardContext(patient_id="p1", override_reasons=load_override_reasons())
OVERRIDE = "Post-operative or hardware assessment"


def procedure(day: int | None, code: str = "22612", status: str = "completed") -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": f"proc-{code}",
        "status": status,
        "code": {"coding": [{"system": CPT, "code": code}]},
        "subject": {"reference": "Patient/p1"},
    }
    if day is not None:
        out["performedDateTime"] = T0.fromordinal(T0.toordinal() + day).isoformat()
    return out


def decide(procedures: list[dict[str, Any]], modality: Modality = Modality.CT) -> Assessment:
    surgery, issues = map_spine_surgery(procedures, VS)
    assert not issues
    the_order = replace(
        order(29, code="72131" if modality is Modality.CT else "72158"), modality=modality
    )
    data = PatientData(conditions=(nvo(),), measurements=tuple(improving()), spine_surgery=surgery)
    return assess([the_order], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))


def test_without_surgery_the_ct_is_advised_against() -> None:
    assert decide([]).recommendation is Recommendation.ADVISE_AGAINST


@pytest.mark.parametrize("day", [0, 10, 28, None])
def test_a_ct_after_spine_surgery_in_the_episode_is_not_advised_against(day: int | None) -> None:
    a = decide([procedure(day)])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    card = render_response(a, CTX)["cards"][0]
    assert OVERRIDE in [r["display"] for r in card["overrideReasons"]]
    assert "Lumbar fusion recorded" in card["detail"]


@pytest.mark.parametrize(
    ("code", "named"),
    [
        ("22015", "Spinal abscess drainage"),
        ("63267", "Laminectomy for an epidural collection"),
        ("63090", "Vertebral corpectomy"),
    ],
)
def test_a_debridement_counts_as_spine_surgery(code: str, named: str) -> None:
    a = decide([procedure(10, code=code)])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert named in render_response(a, CTX)["cards"][0]["detail"]


@pytest.mark.parametrize(
    "proc",
    [
        procedure(-1),  # before the episode: not this episode's surgery
        procedure(10, status="not-done"),
        procedure(10, status="preparation"),
        procedure(10, code="99213"),  # not a spine operation
    ],
)
def test_what_is_not_spine_surgery_in_the_episode_changes_nothing(proc: dict[str, Any]) -> None:
    assert decide([proc]).recommendation is Recommendation.ADVISE_AGAINST


def test_an_mri_after_surgery_keeps_its_decision_and_names_the_operation() -> None:
    a = decide([procedure(10)], Modality.MRI)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    card = render_response(a, CTX)["cards"][0]
    assert OVERRIDE in [r["display"] for r in card["overrideReasons"]]
    assert "a CT may answer it" in card["detail"]


@pytest.mark.parametrize(
    ("modality", "said"),
    [
        (Modality.MRI, "Lumbar fusion recorded, day 5: if the question is the hardware or"),
        (Modality.CT, "Lumbar fusion recorded, day 5: a CT after spine surgery also shows"),
    ],
)
def test_a_support_card_after_surgery_names_the_operation(modality: Modality, said: str) -> None:
    # an outside clinician's review: worse pain after a fusion on day 5 gave a support
    # card that did not name the operation (the rules: "the card names the operation")
    surgery, _ = map_spine_surgery([procedure(5)], VS)
    the_order = replace(
        order(29, code="72131" if modality is Modality.CT else "72158"), modality=modality
    )
    values = (
        *[m for m in improving() if m.kind.value == "crp"],
        pain(0, 6),
        pain(14, 3),
        pain(28, 6),
    )
    data = PatientData(conditions=(nvo(),), measurements=values, spine_surgery=surgery)
    a = assess([the_order], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert a.recommendation is Recommendation.SUPPORT
    assert said in render_response(a, CTX)["cards"][0]["detail"]


def test_a_known_abscess_drained_in_the_episode_names_the_drainage() -> None:
    # an outside clinician's review: an epidural abscess at diagnosis, open drainage on
    # day 1, still read "If the abscess was not drained"
    from tests.engine.builders import complication

    surgery, _ = map_spine_surgery([procedure(1, code="22010")], VS)
    data = PatientData(
        conditions=(nvo(), complication(0, name="epidural abscess")),
        measurements=tuple(improving()),
        spine_surgery=surgery,
    )
    a = assess([order(29)], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    detail = render_response(a, CTX)["cards"][0]["detail"]
    assert "recorded (day 1): if the drainage was incomplete, an MRI before stopping" in detail
    assert "If the abscess was not drained" not in detail
    undrained = PatientData(
        conditions=data.conditions, measurements=data.measurements, spine_surgery=()
    )
    b = assess([order(29)], undrained, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert "If the abscess was not drained" in render_response(b, CTX)["cards"][0]["detail"]


def abscess_card(abscess_day: int, drainage_day: int | None) -> str:
    """The detail for an epidural abscess dated ``abscess_day`` with an open drainage
    (CPT 22010) on ``drainage_day`` (none when None), order on day 29."""
    from tests.engine.builders import complication

    procedures = [] if drainage_day is None else [procedure(drainage_day, code="22010")]
    surgery, _ = map_spine_surgery(procedures, VS)
    data = PatientData(
        conditions=(nvo(), complication(abscess_day, name="epidural abscess")),
        measurements=tuple(improving()),
        spine_surgery=surgery,
    )
    a = assess([order(29)], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    return str(render_response(a, CTX)["cards"][0]["detail"])


def test_a_new_abscess_drained_after_it_is_not_told_to_be_drained() -> None:
    # an outside clinician's review (h95): an abscess of day 20, drained on day 22, was
    # told "consider drainage ...; if undrained, at least 8 weeks" beside the drainage's
    # own line
    detail = abscess_card(20, 22)
    assert (
        "A new abscess on treatment, drained day 22 (spinal abscess drainage), raises "
        "suspicion of failure: review the organism and the antibiotic" in detail
    )
    assert "consider drainage" not in detail
    assert "if undrained" not in detail
    # without one, or with one before the abscess (it drained something else), as before
    for before in (None, 10):
        said = "A new abscess on treatment raises suspicion of failure: consider drainage"
        assert said in abscess_card(20, before)


def test_a_known_abscess_is_not_called_drained_by_a_drainage_before_it() -> None:
    # the known-at-diagnosis line judged as the new abscess's: a drainage on day 1 of an
    # abscess dated day 2 (inside the diagnosis window) did not drain it
    detail = abscess_card(2, 1)
    assert "If the abscess was not drained, an MRI before stopping" in detail
    assert "Spinal abscess drainage recorded (day 1): if the drainage" not in detail
    assert "Spinal abscess drainage recorded (day 2): if the drainage" in abscess_card(2, 2)


def test_a_spine_drainage_is_never_called_the_drainage_of_a_psoas_abscess() -> None:
    """A re-check: a new psoas abscess read "drained day 22 (vertebral corpectomy)" and
    lost the advice to drain it; the drainages the service reads are of the spinal canal
    and the posterior spine."""
    from tests.engine.builders import complication

    for code in ("63081", "22015"):
        surgery, _ = map_spine_surgery([procedure(22, code=code)], VS)
        psoas = complication(20, name="psoas abscess", display="Psoas muscle abscess")
        data = PatientData(
            conditions=(nvo(), psoas), measurements=tuple(improving()), spine_surgery=surgery
        )
        a = assess([order(29)], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
        detail = render_response(a, CTX)["cards"][0]["detail"]
        assert "consider drainage" in detail, code
        assert "drained day 22" not in detail, code


def test_the_words_of_abscesses_no_spine_drainage_drains_name_value_set_entries() -> None:
    from cds_service.engine.findings import NOT_DRAINED_BY_SPINE_SURGERY

    complications = {
        e.name for e in VS.condition_exact.values() if e.category.value == "complication"
    }
    for word in NOT_DRAINED_BY_SPINE_SURGERY:  # each names a complication of the value sets
        assert any(word in (name or "") for name in complications), (word, complications)
