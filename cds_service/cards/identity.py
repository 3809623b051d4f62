"""Card identity: a uuid over what the decision is about, stable across hooks and processes.

The card uuid is a uuid5 over patient, orders, recommendation, rules and key figures,
never the hook or hookInstance, so the same advice seen at order-select and again at
order-sign is recognisably the same (and an EHR can avoid showing it twice).
"""

from __future__ import annotations

import json
import uuid

from cds_service.engine.assessment import Assessment

# Fixed namespace so card uuids are stable across processes and releases.
CARD_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://spine-cds.invalid/card")


def card_uuid(a: Assessment, patient_id: str) -> str:
    """uuid5 over patient, orders, recommendation, rule ids and key figures."""
    basis = {
        "patient": patient_id,
        "orders": sorted(
            [o.reference, sorted(f"{c.system}|{c.code}" for c in o.codes)] for o in a.orders
        ),
        "recommendation": a.recommendation.value,
        "rules": [f.rule_id for f in a.rules_fired],
        "figures": a.figures.to_dict(),
    }
    return str(uuid.uuid5(CARD_NAMESPACE, json.dumps(basis, sort_keys=True, separators=(",", ":"))))


# The suggestions a card may offer (cards/actions.py), each with a uuid derived from the
# card's: so feedback naming an accepted suggestion can be checked against the card.
REMOVE_IMAGING = "remove-imaging"
ORDER_MARKERS = "order-markers"
REPLACE_STUDY = "replace-study"
MAKE_STAT = "make-stat"
SUGGESTION_KINDS = (REMOVE_IMAGING, ORDER_MARKERS, REPLACE_STUDY, MAKE_STAT)


def suggestion_uuid(card_id: str, kind: str) -> str:
    """The uuid of the suggestion ``kind`` on the card ``card_id``."""
    assert kind in SUGGESTION_KINDS, kind
    return str(uuid.uuid5(CARD_NAMESPACE, f"{card_id}/{kind}"))


def suggestion_uuids(card_id: str) -> frozenset[str]:
    """Every uuid a suggestion on the card ``card_id`` can have."""
    return frozenset(suggestion_uuid(card_id, kind) for kind in SUGGESTION_KINDS)
