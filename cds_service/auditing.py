"""Turning one invocation into an audit record (no tokens; the patient id as configured).

The audit answers "what did the service say, to whom, on what data, how fast" for
every invocation by a client it let in (a call refused before authentication is only
counted: ``routes/entrance.py``), so that a pilot can be reviewed afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cds_service.cards.phrasebook import card_data, phrase
from cds_service.engine import Assessment
from cds_service.errors import ApiError
from cds_service.invocation import Outcome
from cds_service.schemas import uuid_pattern
from cds_service.stores.audit import AuditRecord

MAX_ID_LENGTH = 64
# How many of a decision's data issues ``detail.issues`` lists: a body of 25,000 CRP
# results no subject could be checked on stored 25,000 issues, a 2 MB row, per call (an
# attack review). The first ones say what went wrong; ``counts.issues`` and
# ``detail.issuesTotal`` keep how many there were.
MAX_AUDITED_ISSUES = 100
# How many entries each list of the decision's inputs keeps (``crp``, ``esr``, ``pain``,
# ``knownAtDiagnosis``): the first and the last half, with ``<list>Total`` when there
# were more. A 746-byte call naming a FHIR server that answered 15,000 CRPs stored a
# 2.6 MB row (an attack review); the decision's own figures (baseline, latest, lowest)
# are in ``figures`` and the findings whatever the cut.
MAX_AUDITED_ENTRIES = 200
_CAPPED_LISTS = ("crp", "esr", "pain", "knownAtDiagnosis")


def hook_instance_of(body: Mapping[str, Any] | None) -> str | None:
    """The hookInstance of a body that may be invalid, when it is a UUID as the schema
    asks: any other string a client sent there went to the log line and the audit
    as it was (an attack review put "status=200 decision=support-urgent", and a name and
    record number, there)."""
    value = body.get("hookInstance") if isinstance(body, Mapping) else None
    if isinstance(value, str) and len(value) <= MAX_ID_LENGTH and uuid_pattern().match(value):
        return value
    return None


def _patient_id_of(body: Mapping[str, Any] | None) -> str | None:
    context = body.get("context") if isinstance(body, Mapping) else None
    value = context.get("patientId") if isinstance(context, Mapping) else None
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH else None


@dataclass(frozen=True)
class AuditCall:
    """What is known of an invocation when it arrives; it makes the record when it ends."""

    service_id: str
    hook: str
    received_at: datetime
    started: float  # time.perf_counter() at arrival
    shadow: bool
    patient_key: Callable[[str], str | None]
    client: str | None = None  # the trusted issuer that called (None: development mode)

    def record(
        self,
        body: Mapping[str, Any] | None,
        outcome: Outcome | None = None,
        error: ApiError | None = None,
    ) -> AuditRecord:
        """The record for an answered call (``outcome``) or a refused one (``error``)."""
        patient_id = _patient_id_of(body)
        common: dict[str, Any] = {
            "hook_instance": hook_instance_of(body) or "-",
            "service_id": self.service_id,
            "hook": self.hook,
            "received_at": self.received_at,
            "patient_key": self.patient_key(patient_id) if patient_id else None,
            "latency_ms": (time.perf_counter() - self.started) * 1000,
            "shadow": self.shadow,
            "client": self.client,
        }
        if outcome is not None:
            return AuditRecord(**common, **_outcome_fields(outcome))
        assert error is not None, "a record needs an outcome or an error"
        return AuditRecord(**common, **_error_fields(error))


def _outcome_fields(outcome: Outcome) -> dict[str, Any]:
    assessment = outcome.assessment
    reason = outcome.no_card_reason
    counts: dict[str, int] = {"ordersInQuestion": outcome.orders_in_question}
    detail: dict[str, Any] = {}
    if assessment is not None:
        counts.update({k: int(v) for k, v in assessment.counts.items()})
        detail = assessment_record(assessment)
    if outcome.data_notes:
        detail["dataNotes"] = list(outcome.data_notes)
    if outcome.unrecognised:  # what a site can teach the service (cds_service.unrecognised)
        detail["unrecognised"] = dict(outcome.unrecognised)
    if outcome.orders_not_read:
        detail["ordersNotRead"] = [
            {"reference": i.reference, "reason": i.reason} for i in outcome.orders_not_read
        ]
    cards = outcome.response.get("cards", [])
    return {
        "decision": outcome.decision,
        "reason": reason,
        "rules_fired": tuple(f.rule_id for f in assessment.rules_fired) if assessment else (),
        "counts": counts,
        "data_sources": dict(outcome.data_sources),
        "card_uuids": tuple(c["uuid"] for c in cards if "uuid" in c),
        "status": 200,
        "fhir_ms": outcome.fhir_ms,
        "detail": detail,
    }


def assessment_record(a: Assessment) -> dict[str, Any]:
    """The engine's record of the decision, with each finding and remark in the words
    the card said it (the phrasebook's message) and each finding's data as published;
    its data issues at most MAX_AUDITED_ISSUES, with ``issuesTotal`` when there were
    more, and each list of its inputs at most MAX_AUDITED_ENTRIES."""
    record = a.to_dict()
    record["rulesFired"] = [
        {
            "id": f.rule_id,
            "recommendation": f.recommendation.value,
            "message": phrase(f).message,
            "data": card_data(f),
        }
        for f in a.rules_fired
    ]
    for key, remarks in (("missing", a.missing), ("unmet", a.unmet), ("notes", a.notes)):
        record[key] = [{"code": r.code, "message": phrase(r).message} for r in remarks]
    if len(record["issues"]) > MAX_AUDITED_ISSUES:
        record["issuesTotal"] = len(record["issues"])
        record["issues"] = record["issues"][:MAX_AUDITED_ISSUES]
    for key in _CAPPED_LISTS:
        entries = record.get(key, ())
        if len(entries) > MAX_AUDITED_ENTRIES:
            half = MAX_AUDITED_ENTRIES // 2
            record[f"{key}Total"] = len(entries)
            record[key] = [*entries[:half], *entries[-half:]]
    return record


def _error_fields(error: ApiError) -> dict[str, Any]:
    detail: dict[str, Any] = {"message": error.message}
    if error.details:
        detail["details"] = [d.to_dict() for d in error.details]
    if "missing" in error.extra:
        detail["missing"] = error.extra["missing"]
    return {
        "decision": "error",
        "reason": error.error,
        "rules_fired": (),
        "counts": {},
        "data_sources": {},
        "card_uuids": (),
        "status": error.status,
        "fhir_ms": None,
        "detail": detail,
    }
