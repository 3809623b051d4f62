"""A CT ordered for a new neurologic deficit is not the study (MRI is); the line beside its
rating says why, and does not contradict the card's own fallback: a CT with contrast is
what the card names when MRI is impossible, so it is called that fallback, not "cannot
exclude" (an outside clinician's review, 2026-12-07); a CT without contrast cannot exclude
an epidural abscess (clinical-rules.md, "Imaging": card wording)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cds_service.engine import Recommendation
from fhir_mappers.model import Modality
from tests.engine.builders import improving, neuro, nvo, order, run
from tests.engine.test_clinician_revision import card


@pytest.mark.parametrize(
    ("code", "contrast", "said"),
    [
        ("72132", "with", "with contrast, is the fallback only when MRI is impossible"),
        (
            "72131",
            "without",
            "cannot exclude compression of the cord or cauda equina or an epidural abscess",
        ),
    ],
)
def test_the_ct_line_fits_its_contrast(code: str, contrast: str, said: str) -> None:
    ct = replace(order(27, modality=Modality.CT, code=code), contrast=contrast)
    a = run(improving()[:4], [nvo(), neuro(onset=26)], orders=[ct])
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert a.study_gaps == {"ServiceRequest/sr1": "modality"}
    assert said in card(a)["detail"]


@pytest.mark.parametrize(
    ("deficit", "code", "modality", "contrast", "said"),
    [
        (
            "Cauda equina syndrome",
            "72131",
            Modality.CT,
            "without",
            "cannot exclude compression of the cord or cauda equina",
        ),
        (
            "Cauda equina syndrome",
            "72148",
            Modality.MRI,
            "without",
            "still shows compression of the cord or cauda equina",
        ),
        ("Paraplegia", "72131", Modality.CT, "without", "cannot exclude cord compression"),
        ("Paraplegia", "72148", Modality.MRI, "without", "still shows cord compression"),
    ],
)
def test_a_cauda_equina_card_never_says_cord_compression_alone(
    deficit: str, code: str, modality: Modality, contrast: str, said: str
) -> None:
    """A clinician reviewer: a cauda equina card read "an MRI now without it still shows
    cord compression" (clinical-rules.md: "compression of the cord or cauda equina", not
    "cord compression", on cauda equina cards); a paraplegia card keeps its words."""
    drafted = replace(order(27, modality=modality, code=code), contrast=contrast)
    a = run(improving()[:4], [nvo(), neuro(onset=26, display=deficit)], orders=[drafted])
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    detail = card(a)["detail"]
    assert said in detail, detail
    if deficit.startswith("Cauda"):
        assert "cord compression" not in detail.replace("of the cord or cauda equina", ""), detail
