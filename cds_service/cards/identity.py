"""Card identity: a uuid over what the decision is about, stable across hooks and processes.

The card uuid is a uuid5 over the infection's Condition record, the orders, the
recommendation, the rules and the key figures, never the hook or hookInstance, so the same
advice seen at order-select and again at order-sign is recognisably the same (and an EHR
can avoid showing it twice), whichever worker or instance computes it, before or after a
restart; feedback names it, the audit keeps it with the client it was shown to, and each
suggestion's uuid derives from it.

It is not computed from the patient id. Each audit row keeps the card uuids beside the
orders, rules and figures they were made from, so a uuid over the patient id too let
anyone who reads the audit try patient ids until one gave the row's uuid (a security
review found a numeric id among 200,000 in 3.5 s), which undid ``audit_patient_id =
hash`` (or ``omit``). The Condition record the episode rests on tells two patients' cards
apart instead: it is one patient's, and the row already holds its reference, so the uuid
says nothing the row does not. No key is needed, so the uuid does not change with one.
"""

from __future__ import annotations

import json
import uuid

from cds_service.engine.assessment import Assessment

# Fixed namespace so card uuids are stable across processes and releases.
CARD_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://spine-cds.invalid/card")


def card_uuid(a: Assessment) -> str:
    """uuid5 over the episode's Condition, orders, recommendation, rule ids and key
    figures: what the audit row of the call holds beside it, nothing more."""
    basis = {
        "condition": a.episode.condition.reference if a.episode is not None else None,
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
ADD_STUDY = "add-study"
SUGGESTION_KINDS = (REMOVE_IMAGING, ORDER_MARKERS, REPLACE_STUDY, MAKE_STAT, ADD_STUDY)


def suggestion_uuid(card_id: str, kind: str) -> str:
    """The uuid of the suggestion ``kind`` on the card ``card_id``."""
    assert kind in SUGGESTION_KINDS, kind
    return str(uuid.uuid5(CARD_NAMESPACE, f"{card_id}/{kind}"))


def suggestion_uuids(card_id: str) -> frozenset[str]:
    """Every uuid a suggestion on the card ``card_id`` can have."""
    return frozenset(suggestion_uuid(card_id, kind) for kind in SUGGESTION_KINDS)
