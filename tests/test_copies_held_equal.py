"""Facts that live in two places for a reason, held equal: a change to one fails here
until the other follows."""

from __future__ import annotations

import re

from cds_service.cards.actions import MARKER_ORDERS
from cds_service.engine.series import USABLE_STATUSES
from cds_service.valuesets import load_value_sets, shipped_files
from fhir_mappers.observations_careful import CRP_MASS_TO_MG_PER_L, USED_STATUSES
from fhir_mappers.valuesets import ObservationKind

LOINC = "http://loinc.org"


def test_the_lab_orders_a_card_suggests_are_the_crp_and_esr_the_rules_read() -> None:
    # the card suggests the CRP first and alone when a recent ESR is on record; each
    # kind the engine asks for is ordered by a code the rules read as that kind
    observations = load_value_sets(None).observations
    read = [(k.value, observations[(LOINC, code)].kind) for k, code in MARKER_ORDERS.items()]
    assert read == [("crp", ObservationKind.CRP), ("esr", ObservationKind.ESR)]


def test_the_engine_rechecks_the_statuses_the_mapper_counts() -> None:
    # the engine's safety net takes what the mapper counts, and a preliminary value the
    # mapper counts only when the site accepts them
    assert USABLE_STATUSES == USED_STATUSES | {"preliminary"}


def test_the_value_sets_note_names_every_crp_mass_unit() -> None:
    note = dict(shipped_files())["observations.json"]["note"]
    found = re.search(r"crp \(mass concentration, ([^)]*)\)", note)
    assert found is not None
    named = re.split(r", | or ", found.group(1))
    assert sorted(u.lower() for u in named) == sorted(CRP_MASS_TO_MG_PER_L)
