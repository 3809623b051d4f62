"""One partition of an export replayed through the service's own pipeline.

For each patient with an NVO episode (a Condition the value sets place in scope, at any
time), each spine MRI/CT ServiceRequest with a readable authoredOn is sent, as the EHR
would have sent it when the order was drafted, through ``cds_service.pipeline.run_hook``
(the same read, check and handle a live call takes) with a prefetch built from the
as-of view (``asof``) by the service's own templates (``ehr_requests.local_prefetch``).
The order's authoredOn is the evaluation time, as in a live call, so the answer is the
one the service would have given then.

Runs where the partition is: a local process or a Dask worker. Each process builds one
Runtime from the settings it is given (development mode, an in-memory database, no
audit: nothing is recorded, no secret travels) and keeps it for the partitions it gets.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from cds_service.discovery import Service
from cds_service.ehr_requests import build_request, local_prefetch
from cds_service.engine import Assessment
from cds_service.engine.episode import in_scope_categories
from cds_service.errors import ApiError
from cds_service.hook_declarations import DEFAULT_HOOK
from cds_service.impact.asof import (
    VIEW_TYPES,
    as_of,
    is_before,
    order_time,
    rules_problem,
    when_of,
)
from cds_service.impact.export import ORDER_TYPE, PERFORMED_TYPES, Problem
from cds_service.impact.partition import read_partition
from cds_service.impact.rowparts import write_part
from cds_service.impact.summary import ReplayRow, Summary
from cds_service.invocation import Outcome
from cds_service.pipeline import run_hook
from cds_service.runtime import Runtime, build_runtime
from cds_service.settings import Settings
from fhir_mappers.model import Measurement, When
from fhir_mappers.valuesets import ValueSets

__all__ = ["PartitionResult", "PartitionTask", "Replayer", "replay_partition", "worker_settings"]

HOOK = DEFAULT_HOOK
# A study with no basedOn counts as the order's when it is a spine study done this soon.
UNLINKED_STUDY_DAYS = 30
_ENTERED_IN_ERROR = "entered-in-error"


def worker_settings(settings: Settings) -> Settings:
    """The settings a replay worker runs the pipeline with: the decision's own (rules,
    value sets, hooks file, mapping options) as configured; development mode, an
    in-memory database, no audit, no metrics; no database URL, Redis URL or hash key,
    so nothing secret is sent to a worker."""
    return settings.model_copy(
        update={
            "dev_mode": True,
            "database_path": ":memory:",
            "database_url": "",
            "redis_url": "",
            "audit_enabled": False,
            "audit_hash_key": "",
            "metrics_enabled": False,
        }
    )


@dataclass(frozen=True)
class PartitionTask:
    """What a worker needs for one partition (all of it picklable); ``rows_dir`` is
    where it writes the partition's rows (``rowparts``)."""

    partition: int
    path: Path
    medications: Path
    file_names: tuple[str, ...]
    settings: Settings
    rows_dir: Path


@dataclass
class PartitionResult:
    """What a worker sends back: counts only, its rows are in ``rows_dir``."""

    partition: int
    summary: Summary = field(default_factory=Summary)
    problems: list[Problem] = field(default_factory=list)
    patients: int = 0


def _codes(resource: Mapping[str, Any]) -> list[tuple[str, str]]:
    concept = resource.get("code")
    codings = concept.get("coding") if isinstance(concept, Mapping) else None
    out = []
    for coding in codings or []:
        if isinstance(coding, Mapping):
            out.append((str(coding.get("system") or ""), str(coding.get("code") or "")))
    return out


class Replayer:
    """The service's runtime in this process, and the replay of one patient at a time."""

    def __init__(self, settings: Settings) -> None:
        problem = rules_problem()
        if problem:  # data the pipeline reads that the replay could not date: refuse
            raise RuntimeError(problem)
        self.runtime: Runtime = build_runtime(settings)
        self.service: Service = next(
            s for s in self.runtime.discovery.services.values() if s.hook == HOOK
        )
        self.value_sets: ValueSets = self.runtime.value_sets
        self.in_scope = in_scope_categories(self.runtime.rules)

    def close(self) -> None:
        self.runtime.close()

    def has_episode(self, conditions: list[dict[str, Any]]) -> bool:
        for condition in conditions:
            for system, code in _codes(condition):
                entry = self.value_sets.condition_entry(system, code)
                if entry is not None and entry.category in self.in_scope:
                    return True
        return False

    def spine_code(self, resource: Mapping[str, Any]) -> tuple[str, str] | None:
        for system, code in _codes(resource):
            if self.value_sets.imaging_entry(system, code) is not None:
                return system, code
        return None

    def replay_patient(
        self,
        patient_id: str,
        resources: list[dict[str, Any]],
        medications: Mapping[str, dict[str, Any]],
        summary: Summary,
        outcomes: dict[str, Outcome] | None = None,
    ) -> list[ReplayRow]:
        """One row per spine order of the patient, when the patient has an NVO episode;
        with ``outcomes``, each order's whole answer (cards and assessment) by order id,
        for what a row does not hold (the notes a prior study or operation gives)."""
        by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for resource in resources:
            by_type[str(resource.get("resourceType"))].append(resource)
        if not self.has_episode(by_type["Condition"]):
            return []
        summary.patients_with_episode += 1
        orders: list[tuple[When, dict[str, Any], tuple[str, str]]] = []
        for order in by_type[ORDER_TYPE]:
            if order.get("status") == _ENTERED_IN_ERROR:
                continue
            code = self.spine_code(order)
            if code is None:
                for system, value in _codes(order) or [("", "(no code)")]:
                    summary.count_unrecognised(f"{system}|{value}")
                continue
            when = order_time(order)
            if when is None:
                summary.count_gap("spine order without a readable authoredOn")
                continue
            orders.append((when, order, code))
        orders.sort(key=lambda item: (item[0].instant, str(item[1].get("id"))))
        studies = [r for rtype in PERFORMED_TYPES for r in by_type[rtype]]
        dated = [r for r in resources if r.get("resourceType") in VIEW_TYPES]
        rows = []
        for position, (when, order, code) in enumerate(orders):
            later = orders[position + 1][0] if position + 1 < len(orders) else None
            row, outcome = self._replay_order(patient_id, order, code, when, dated, medications)
            if outcomes is not None and outcome is not None:
                outcomes[row.order_id] = outcome
            row.performed_after = self._performed(order, when, later, studies)
            summary.add(row)
            rows.append(row)
        return rows

    def _replay_order(
        self,
        patient_id: str,
        order: dict[str, Any],
        code: tuple[str, str],
        when: When,
        dated: list[dict[str, Any]],
        medications: Mapping[str, dict[str, Any]],
    ) -> tuple[ReplayRow, Outcome | None]:
        view = as_of(dated, when, medications)
        # The order as recorded (its priority, stated reason, body site: all the rules
        # read), as the EHR sent it while it was a draft.
        draft = {
            **order,
            "resourceType": "ServiceRequest",
            "id": str(order.get("id") or "replayed-order"),
            "status": "draft",
            "intent": order.get("intent") or "order",
            "subject": {"reference": f"Patient/{patient_id}"},
            "authoredOn": order["authoredOn"],
        }
        request = build_request(HOOK, str(uuid.uuid4()), patient_id, draft)
        request["prefetch"] = local_prefetch(
            self.service.prefetch, request["context"], view.resources
        )
        row = ReplayRow(
            patient=patient_id,
            order_id=draft["id"],
            order_code=f"{code[0]}|{code[1]}",
            authored_on=str(order["authoredOn"]),
            order_day=when.day,
        )
        row.gaps.update(view.undated)
        try:
            outcome = run_hook(self.runtime, self.service, orjson.dumps(request))
        except ApiError as exc:
            row.decision = "error"
            row.error = f"{exc.status}: {exc.message}"
            return row, None
        row.decision = outcome.decision
        if outcome.assessment is not None:
            _fill(row, outcome.assessment)
        return row, outcome

    def _performed(
        self,
        order: Mapping[str, Any],
        when: When,
        next_order: When | None,
        studies: list[dict[str, Any]],
    ) -> bool:
        """Whether a study followed the order: one whose basedOn names it, or a spine
        study with no basedOn done within UNLINKED_STUDY_DAYS and before the next order."""
        reference = f"ServiceRequest/{order.get('id')}"
        for study in studies:
            based_on = study.get("basedOn") or []
            refs = [b.get("reference") for b in based_on if isinstance(b, Mapping)]
            if reference in refs:
                return True
            if refs:
                continue
            done = study.get("started") or study.get("performedDateTime")
            if done is None and isinstance(study.get("performedPeriod"), Mapping):
                done = study["performedPeriod"].get("start")
            done_when = when_of(done)
            if done_when is None or is_before(done, when) is not False:
                continue
            if done_when.day > when.day + timedelta(days=UNLINKED_STUDY_DAYS):
                continue
            if next_order is not None and is_before(done, next_order) is False:
                continue
            concept = study.get("procedureCode")
            codes = (
                [{"code": c} for c in concept if isinstance(c, Mapping)]
                if isinstance(concept, list)
                else [study]
            )
            if any(self.spine_code(c) for c in codes):
                return True
        return False


def _value(measurement: Measurement | None) -> float | None:
    return None if measurement is None else round(float(measurement.value), 2)


def _fill(row: ReplayRow, assessment: Assessment) -> None:
    figures = assessment.figures
    row.rules_fired = tuple(f.rule_id for f in assessment.rules_fired)
    if assessment.not_applicable_reason is not None:
        row.not_applicable_reason = assessment.not_applicable_reason.value
    row.days_since_t0 = figures.days_since_t0
    row.crp_baseline = _value(figures.crp_baseline)
    row.crp_latest = _value(figures.crp_latest)
    row.crp_change_pct = (
        None if figures.crp_percent_change is None else round(figures.crp_percent_change, 1)
    )
    row.pain_first = _value(figures.pain_first)
    row.pain_latest = _value(figures.pain_latest)
    row.esr_latest = _value(figures.esr_latest)
    for remark in assessment.missing:
        row.gaps[remark.code] = row.gaps.get(remark.code, 0) + 1
    for kind in sorted(assessment.unavailable):
        row.gaps[f"{kind}-unavailable"] = row.gaps.get(f"{kind}-unavailable", 0) + 1


_REPLAYERS: dict[int, Replayer] = {}


def _replayer(settings: Settings) -> Replayer:
    """This process's Replayer for these settings, built on first use."""
    key = hash(settings.model_dump_json())
    found = _REPLAYERS.get(key)
    if found is None:
        found = _REPLAYERS[key] = Replayer(settings)
    return found


def replay_partition(task: PartitionTask) -> PartitionResult:
    """Replay every patient of one partition file and write its rows to the task's
    ``rows_dir``; a patient whose lines fail to parse here (they did in the first pass)
    or whose replay fails is a Problem, never a stop.

    The partition's lines are kept as bytes, grouped by patient (the first pass wrote
    each line's patient id beside it), and parsed one patient at a time: the worker
    holds one patient's resources as dicts, not the whole partition's."""
    replayer = _replayer(task.settings)
    medications: dict[str, dict[str, Any]] = {}
    if task.medications.is_file():
        with task.medications.open("rb") as handle:
            for raw in handle:
                medication = orjson.loads(raw)
                rtype = medication.get("resourceType")
                medications[f"{rtype}/{medication.get('id')}"] = medication
    patients: dict[str, list[bytes]] = {}
    where: dict[str, tuple[int, int]] = {}
    for file_index, number, patient, line in read_partition(task.path):
        lines = patients.get(patient)
        if lines is None:
            lines = patients[patient] = []
            where[patient] = (file_index, number)
        lines.append(line)
    result = PartitionResult(task.partition, patients=len(patients))
    rows: list[ReplayRow] = []
    for patient, lines in patients.items():
        try:
            resources = [orjson.loads(line) for line in lines]
            rows += replayer.replay_patient(patient, resources, medications, result.summary)
        except Exception as exc:  # one patient's bad data must not stop the run
            file_index, number = where[patient]
            result.problems.append(
                Problem(
                    task.file_names[file_index],
                    number,
                    f"the patient of this line could not be replayed ({type(exc).__name__})",
                )
            )
    write_part(task.rows_dir, task.partition, rows)
    return result
