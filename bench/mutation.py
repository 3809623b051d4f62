"""Mutation testing of the decision core: summarise a mutmut run and judge its survivors.

Run by scripts/mutation-test.sh after ``mutmut run`` (see docs/clinical-logic.md,
"Mutation testing"). From the repository root:

    .venv/bin/python -m bench.mutation summary --out bench/results/mutation

reads mutmut's results in ``mutants/``, runs every surviving mutant through the decision
oracle and writes ``<out>.json`` and ``<out>.md``.

The oracle runs each survivor (selected with mutmut's MUTANT_UNDER_TEST switch, in a
separate process that imports the mutated copy in ``mutants/``) on the example patients
and on a fixed, seeded set of generated patients: raw FHIR orders, Conditions and
Observations, through the mappers and the engine, as a request would be. It compares with
the unmutated code:

- the *decision*: recommendation, why no card, the rules fired, the missing and unmet
  codes. A difference makes the mutant **decision-changing**, whatever else is said of it;
- the rest of the audit record and every message and summary phrase. A difference there
  alone makes it **text-only**: wording, counts, figures shown on the card;
- nothing differs: the mutant needs a reason in ``bench/mutation-judgements.toml`` to be
  **equivalent**; without one it is listed as *unjudged*.

``bench/mutation-judgements.toml`` records the judgements that need a person: equivalent
mutants (why they cannot change behaviour) and text-only ones that the oracle cannot see
(e.g. code only the cards read). Each entry names a mutant, or a whole function, with a
reason; a mutant entry also holds the mutated line, so an entry that no longer matches
the code (the function changed and mutmut renumbered its mutants) is reported as stale
instead of being applied to a different mutant.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The script passes the work tree's file, so a judgement can be added and re-checked with
# --summary-only without a new run.
JUDGEMENTS = Path(
    os.environ.get("MUTATION_JUDGEMENTS", ROOT / "bench" / "mutation-judgements.toml")
)
SURVIVING = frozenset({"survived", "no tests", "suspicious"})
KILLED = frozenset({"killed", "timeout", "caught by type check", "segfault"})

# --------------------------------------------------------------------------------------
# The corpus: example patients and seeded generated patients, as raw FHIR.
# --------------------------------------------------------------------------------------

T0 = date(2024, 3, 4)
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

CONDITION_CODES = [
    (ICD, "M46.26"),
    (ICD, "M46.26"),
    (SCT, "203241002"),
    (ICD, "M46.46"),
    (ICD, "M46.56"),
    (ICD, "A18.01"),
    (ICD, "T84.63XA"),
    (ICD, "G83.4"),
    (SCT, "192970008"),
    (ICD, "G06.1"),
    (ICD, "M48.56XA"),
    (ICD, "C79.51"),
    (ICD, "M51.36"),
    (ICD, "I10"),
]
CLINICAL_CODES = ["active", "active", "active", "recurrence", "relapse", "resolved", "inactive"]
VERIFICATION_CODES = [
    "confirmed",
    "confirmed",
    "confirmed",
    "provisional",
    "differential",
    "unconfirmed",
    "refuted",
    "entered-in-error",
]
OFFSETS = ["Z", "+01:00", "-05:00", "+09:00", "+14:00", "-11:30", "+05:30"]
STATUSES = ["final"] * 6 + [
    "amended",
    "corrected",
    "preliminary",
    "entered-in-error",
    "cancelled",
    "registered",
    "unknown",
]
CRP_VALUES = [0, 0.4, 0.8, 1, 3, 4, 9.99, 10, 12, 15, 18, 20, 24, 25, 30, 36, 40, 45, 50, 60]
CRP_VALUES += [61, 75, 90, 95, 100, 110, 120, 142, 200, -1]
# (code, unit choices, value choices)
OBSERVATION_KINDS: list[tuple[str, list[str | None], list[float]]] = [
    ("1988-5", ["mg/L", "mg/L", "mg/L", "mg/dL", "MG/L", "%", None], CRP_VALUES),
    ("1988-5", ["mg/L"], CRP_VALUES),
    ("30522-7", ["mg/L", "mg/dL"], [0, 0.5, 0.8, 1, 2, 3, 5, 9, 11]),
    ("76485-2", ["nmol/L", "nmol/L", "mg/L"], [0, 9.524, 95.24, 190, 476, 952]),
    ("4537-7", ["mm/h", "mm/hr", "mm/s"], [0, 5, 20, 40, 60, 95, 120]),
    ("72514-3", ["{score}", None], [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, -1]),
    ("72514-3", ["{score}"], [0, 2, 3, 4, 5, 7, 8]),
    ("38208-5", ["{score}"], [1, 3, 5, 7]),
    ("11039-5", ["mg/L"], [1, 20]),
]
DAYS = [-12, -8, -7, -6, -3, -1, 0, 0, 1, 5, 7, 10, 13, 14, 15, 20, 21, 22, 27, 28, 28, 29]
DAYS += [30, 35, 40]
ORDER_CODES = [(CPT, "72158"), (CPT, "72158"), (LOINC, "24968-0"), (CPT, "70551"), (CPT, "72125")]


def _when(rng: random.Random, day: int) -> str:
    d = T0 + timedelta(days=day)
    if rng.random() < 0.45:
        return d.isoformat()
    hour = rng.choice([0, 1, 2, 9, 12, 22, 23])
    return f"{d.isoformat()}T{hour:02d}:{rng.choice([0, 30]):02d}:00{rng.choice(OFFSETS)}"


def _condition(rng: random.Random, index: int, code: tuple[str, str]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": f"c{index}",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": code[0], "code": code[1], "display": f"Code {code[1]}"}]},
    }
    if rng.random() < 0.9:
        status = rng.choice(CLINICAL_CODES)
        resource["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": status}]}
    if rng.random() < 0.85:
        status = rng.choice(VERIFICATION_CODES)
        resource["verificationStatus"] = {"coding": [{"system": VERIFICATION, "code": status}]}
    start = rng.choice([-30, -20, -1, 0, 0, 0, 1, 5, 10, 20, 26])
    form = rng.random()
    if form < 0.55:
        resource["onsetDateTime"] = _when(rng, start)
    elif form < 0.65:
        resource["onsetPeriod"] = {"start": _when(rng, start)}
    if rng.random() < 0.5:
        resource["recordedDate"] = _when(rng, start + rng.choice([0, 0, 1, 3, 25]))
    if rng.random() < 0.08:
        resource["abatementDateTime"] = _when(rng, start + 10)
    if rng.random() < 0.05:
        resource["onsetDateTime"] = "not a date"
    if rng.random() < 0.04:
        resource["note"] = "not a list"  # fails full validation
    return resource


def _observation(rng: random.Random, index: int, day: int, kind: Any) -> dict[str, Any]:
    code, units, values = kind
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"o{index}",
        "status": rng.choice(STATUSES),
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": LOINC, "code": code}]},
    }
    when = _when(rng, day)
    form = rng.random()
    if form < 0.8:
        resource["effectiveDateTime"] = when
    elif form < 0.88:
        resource["effectivePeriod"] = {"start": when}
    elif form < 0.96:
        resource["issued"] = when if "T" in when else when + "T08:00:00Z"
    value = rng.choice(values)
    if code in ("72514-3", "38208-5") and rng.random() < 0.5:
        resource["valueInteger"] = int(value)
        return resource
    if rng.random() < 0.03:
        resource["valueString"] = "positive"
        return resource
    quantity: dict[str, Any] = {"value": value}
    unit = rng.choice(units)
    if unit is not None:
        quantity.update(unit=unit, system="http://unitsofmeasure.org", code=unit)
    if rng.random() < 0.06:
        quantity["comparator"] = rng.choice(["<", ">", "<=", "~"])
    resource["valueQuantity"] = quantity
    return resource


def _story_crp(rng: random.Random, index: int) -> list[dict[str, Any]]:
    """A CRP series with a shape (falling, plateau, rebound, normal), near the thresholds."""
    start = rng.choice([40, 60, 100, 142, 12, 8])
    days = sorted(rng.sample([-7, -3, 0, 0, 7, 10, 14, 15, 20, 21, 27, 28, 29], rng.randint(2, 5)))
    value = float(start)
    out = []
    for n, d in enumerate(days):
        out.append(_observation(rng, index * 100 + n, d, ("1988-5", ["mg/L"], [round(value, 2)])))
        value = max(0.0, value * rng.choice([0.3, 0.5, 0.74, 0.75, 0.76, 0.9, 1.0, 1.2, 1.21, 1.5]))
    for o in out:
        o["status"] = "final" if rng.random() < 0.9 else o["status"]
    return out


def generated_patient(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    conditions = []
    if rng.random() < 0.93:
        code = rng.choice([(ICD, "M46.26"), (SCT, "203241002"), (ICD, "M46.46"), (ICD, "M46.56")])
        nvo = _condition(rng, 0, code)
        if rng.random() < 0.7:
            nvo["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": "active"}]}
            nvo["verificationStatus"] = {"coding": [{"system": VERIFICATION, "code": "confirmed"}]}
            nvo["onsetDateTime"] = _when(rng, 0)
        conditions.append(nvo)
    for i in range(rng.choice([0, 0, 0, 1, 1, 2, 3])):
        conditions.append(_condition(rng, i + 1, rng.choice(CONDITION_CODES)))
    observations = _story_crp(rng, 1) if rng.random() < 0.6 else []
    for i in range(rng.randint(0, 9)):
        observations.append(_observation(rng, i, rng.choice(DAYS), rng.choice(OBSERVATION_KINDS)))
    for i, d in enumerate(sorted(rng.sample([0, 5, 14, 21, 28], rng.randint(0, 3)))):
        observations.append(
            _observation(rng, 900 + i, d, ("72514-3", ["{score}"], [2, 3, 4, 5, 6, 7, 8]))
        )
    orders = []
    for i in range(rng.choice([1, 1, 1, 2])):
        order_system, order_code = rng.choice(ORDER_CODES)
        order: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "id": f"sr{i}",
            "status": "draft",
            "intent": "order",
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": order_system, "code": order_code}]},
        }
        if rng.random() < 0.9:
            order["authoredOn"] = _when(rng, rng.choice([13, 14, 15, 21, 27, 28, 29, 30, 35, 36]))
        orders.append(order)
    selections = None if rng.random() < 0.5 else [f"ServiceRequest/sr{0}"]
    cut_off = frozenset(k for k in ("conditions", "crp", "esr", "pain") if rng.random() < 0.07)
    rules: dict[str, Any] = {}
    if rng.random() < 0.15:
        rules[rng.choice(["crp_normal_mg_l", "rise_pct", "plateau_min_fall_pct"])] = rng.choice(
            [0.0, 0.5, 5.0, 50.0]
        )
    if rng.random() < 0.1:
        rules["include_other_infective"] = True
    return {
        "name": f"generated-{seed}",
        "orders": orders,
        "selections": selections,
        "conditions": conditions,
        "observations": observations,
        "cut_off": sorted(cut_off),
        "rules": rules,
        "accept_preliminary": rng.random() < 0.2,
        "molar_factor": None if rng.random() < 0.15 else 9.524,
    }


def example_patients() -> Iterator[dict[str, Any]]:
    from cds_service.examples import load_examples

    for order_date in (date(2024, 5, 6), date(2024, 11, 3)):
        for example in load_examples(order_date):
            resources = [e["resource"] for e in example.bundle.get("entry", [])]
            yield {
                "name": f"{example.key}@{order_date.isoformat()}",
                "orders": [example.draft_order],
                "selections": None,
                "conditions": [r for r in resources if r.get("resourceType") == "Condition"],
                "observations": [r for r in resources if r.get("resourceType") == "Observation"],
                "cut_off": [],
                "rules": {},
                "accept_preliminary": False,
                "molar_factor": 9.524,
            }


def corpus(generated: int) -> list[dict[str, Any]]:
    return [*example_patients(), *(generated_patient(seed) for seed in range(generated))]


# --------------------------------------------------------------------------------------
# The oracle: one patient through the mappers and the engine, as two signatures.
# --------------------------------------------------------------------------------------


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


def map_patient(patient: dict[str, Any], vs: Any) -> Any:
    """The mappers' part of a request: (orders, PatientData, RuleSettings)."""
    from cds_service.engine import RuleSettings
    from fhir_mappers.conditions import map_conditions
    from fhir_mappers.model import PatientData
    from fhir_mappers.observations import MappingOptions, map_observations
    from fhir_mappers.orders import map_orders

    orders = map_orders(_bundle(patient["orders"]), patient["selections"], vs)
    conditions, c_issues = map_conditions(patient["conditions"], vs)
    options = MappingOptions(
        accept_preliminary=patient["accept_preliminary"],
        crp_molar_factor_nmol_per_mg=patient["molar_factor"],
    )
    measurements, o_issues = map_observations(patient["observations"], vs, options)
    data = PatientData(
        conditions=conditions,
        measurements=measurements,
        issues=orders.issues + c_issues + o_issues,
        cut_off=frozenset(patient["cut_off"]),
    )
    return orders.orders, data, RuleSettings.from_mapping(patient["rules"])


def signatures(patient: dict[str, Any], vs: Any, mapped: Any = None) -> tuple[Any, Any]:
    """(decision, everything else) for one patient; an exception is its own signature.

    ``mapped`` (from map_patient on the unmutated mappers) skips the mappers when only
    the engine is mutated.
    """
    from cds_service.cards.phrasebook import phrase
    from cds_service.engine import assess

    try:
        orders, data, settings = mapped if mapped is not None else map_patient(patient, vs)
        a = assess(orders, data, settings, datetime(2030, 1, 1, tzinfo=UTC))
        decision = (
            a.recommendation.value,
            a.not_applicable_reason.value if a.not_applicable_reason else None,
            tuple(f.rule_id for f in a.rules_fired),
            tuple(r.code for r in a.missing),
            tuple(r.code for r in a.unmet),
        )
        text = json.dumps(
            {
                "audit": a.to_dict(),
                "findings": [(f.rule_id, *phrase(f)) for f in a.rules_fired],
                "remarks": [(r.code, *phrase(r)) for r in (*a.missing, *a.unmet, *a.notes)],
                "issues": [(i.reference, i.reason, i.kind, i.plain) for i in a.issues],
                "orders": [(o.reference, o.modality, o.region, o.contrast) for o in a.orders],
            },
            sort_keys=True,
            default=str,
        )
    except Exception as exc:  # a crash anywhere is a 500 instead of a card: a decision change
        return ("error", type(exc).__name__), ("error", str(exc))
    return decision, text


def oracle_main(names_file: Path, out_file: Path, generated: int) -> None:
    """In ``mutants/``: run every named mutant on the corpus; write what each changed."""
    sys.path.insert(0, str(Path.cwd()))
    os.environ["MUTANT_UNDER_TEST"] = ""
    from cds_service.valuesets import load_value_sets
    from fhir_mappers import timeutil

    vs = load_value_sets()
    patients = corpus(generated)
    mapped: list[Any] = []
    for p in patients:
        try:
            mapped.append(map_patient(p, vs))
        except Exception:  # the unmutated mappers never raise; let signatures() say so
            mapped.append(None)
    baseline = [signatures(p, vs, m) for p, m in zip(patients, mapped, strict=True)]
    results: dict[str, Any] = {}
    for name in json.loads(names_file.read_text("utf-8")):
        os.environ["MUTANT_UNDER_TEST"] = name
        timeutil._zone.cache_clear()
        decision_diff: list[dict[str, Any]] = []
        text_diffs = 0
        engine_only = name.startswith("cds_service.engine.")
        # value set mutants act when the lists are built: build them again under the mutant
        vs_now = load_value_sets() if name.startswith("fhir_mappers.valuesets.") else vs
        for patient, premapped, (decision, text) in zip(patients, mapped, baseline, strict=True):
            got_decision, got_text = signatures(patient, vs_now, premapped if engine_only else None)
            if got_decision != decision:
                if len(decision_diff) < 3:
                    decision_diff.append(
                        {"patient": patient["name"], "expected": decision, "got": got_decision}
                    )
                else:
                    decision_diff.append({"patient": patient["name"]})
            elif got_text != text:
                text_diffs += 1
        os.environ["MUTANT_UNDER_TEST"] = ""
        timeutil._zone.cache_clear()
        results[name] = {
            "decisionChanges": len(decision_diff),
            "examples": decision_diff[:3],
            "textChanges": text_diffs,
        }
    out_file.write_text(json.dumps({"patients": len(patients), "mutants": results}), "utf-8")


# --------------------------------------------------------------------------------------
# The summary.
# --------------------------------------------------------------------------------------


def module_of(mutant: str) -> str:
    return mutant.split(".x_")[0].split(".x\u01c1")[0]


def function_of(mutant: str) -> str:
    return mutant.rsplit("__mutmut_", 1)[0]


def changed_lines(diff: str) -> tuple[str, str]:
    minus = [
        ln[1:].strip()
        for ln in diff.splitlines()
        if ln.startswith("-") and not ln.startswith("---")
    ]
    plus = [
        ln[1:].strip()
        for ln in diff.splitlines()
        if ln.startswith("+") and not ln.startswith("+++")
    ]
    return " | ".join(minus), " | ".join(plus)


def load_judgements() -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    data = tomllib.loads(JUDGEMENTS.read_text("utf-8")) if JUDGEMENTS.exists() else {}
    by_mutant = {j["mutant"]: j for j in data.get("mutant", [])}
    by_function = {j["function"]: j for j in data.get("function", [])}
    for j in [*by_mutant.values(), *by_function.values()]:
        if j.get("class") not in ("equivalent", "text-only"):
            raise SystemExit(f"{JUDGEMENTS.name}: class must be equivalent or text-only: {j}")
        if not str(j.get("reason", "")).strip():
            raise SystemExit(f"{JUDGEMENTS.name}: every judgement needs a reason: {j}")
    return by_mutant, by_function


def mutmut_results() -> tuple[dict[str, str], dict[str, str]]:
    """{mutant: status}, {mutant: source path}, from mutants/*.meta."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    status: dict[str, str] = {}
    paths: dict[str, str] = {}
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, code in data.exit_code_by_key.items():
            status[name] = "not checked" if code is None else status_by_exit_code[code]
            paths[name] = str(path)
    return status, paths


def summary(out: Path, generated: int, label: str) -> dict[str, Any]:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    status, paths = mutmut_results()
    survivors = sorted(n for n, s in status.items() if s in SURVIVING or s == "not checked")
    diffs = {n: get_diff_for_mutant(n, path=paths[n]) for n in survivors}
    oracle: dict[str, Any] = {"patients": 0, "mutants": {}}
    if survivors:
        names_file = ROOT / "mutants" / "oracle-names.json"
        out_file = ROOT / "mutants" / "oracle-results.json"
        names_file.write_text(json.dumps(survivors), "utf-8")
        subprocess.run(  # noqa: S603 - our own interpreter and script
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "oracle",
                str(names_file),
                str(out_file),
                "--generated",
                str(generated),
            ],
            cwd=ROOT / "mutants",
            check=True,
        )
        oracle = json.loads(out_file.read_text("utf-8"))
    by_mutant, by_function = load_judgements()

    rows: list[dict[str, Any]] = []
    stale: list[str] = []
    for name in survivors:
        before, after = changed_lines(diffs[name])
        seen = oracle["mutants"].get(name, {})
        judgement = by_mutant.get(name)
        if judgement is not None and judgement.get("change") and judgement["change"] != after:
            stale.append(name)
            judgement = None
        judgement = judgement or by_function.get(function_of(name))
        if seen.get("decisionChanges"):
            verdict, reason = "decision-changing", "the oracle saw a decision change"
        elif judgement is not None:
            verdict, reason = judgement["class"], judgement["reason"]
        elif seen.get("textChanges"):
            verdict, reason = "text-only", "the oracle saw only wording, counts or figures change"
        else:
            verdict, reason = "unjudged", "no change seen by the oracle: argue it or kill it"
        rows.append(
            {
                "mutant": name,
                "module": module_of(name),
                "status": status[name],
                "class": verdict,
                "reason": reason,
                "original": before,
                "mutated": after,
                "oracle": seen,
            }
        )

    modules: dict[str, dict[str, Any]] = {}
    for name, s in status.items():
        m = modules.setdefault(module_of(name), Counter())
        m["generated"] += 1
        m["killed" if s in KILLED else "survived" if s in SURVIVING else s] += 1
    for row in rows:
        modules[row["module"]][row["class"]] += 1
    figures = {}
    for module, c in sorted(modules.items()):
        judged_out = c["text-only"] + c["equivalent"]
        non_text = c["generated"] - judged_out
        figures[module] = {
            "generated": c["generated"],
            "killed": c["killed"],
            "survived": c["survived"],
            "notChecked": c["not checked"],
            "textOnly": c["text-only"],
            "equivalent": c["equivalent"],
            "decisionChanging": c["decision-changing"],
            "unjudged": c["unjudged"],
            "killRatePct": round(100 * c["killed"] / c["generated"], 1) if c["generated"] else None,
            "nonTextKillRatePct": round(100 * c["killed"] / non_text, 1) if non_text else None,
        }
    result = {
        "label": label,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "tool": "mutmut",
        "oraclePatients": oracle["patients"],
        "modules": figures,
        "survivors": rows,
        "staleJudgements": stale,
    }
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n", "utf-8")
    out.with_suffix(".md").write_text(markdown(result), "utf-8")
    return result


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# Mutation testing of the decision core ({r['label']})",
        "",
        f"Run {r['date']} with mutmut (scripts/mutation-test.sh); survivors run through the "
        f"decision oracle on {r['oraclePatients']} patients (bench/mutation.py).",
        "Non-text kill rate: killed / (generated - text-only - equivalent).",
        "",
        "| module | generated | killed | survived | text-only | equivalent | decision-changing "
        "| unjudged | kill rate | non-text kill rate |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for module, f in r["modules"].items():
        lines.append(
            f"| {module} | {f['generated']} | {f['killed']} | {f['survived']} | {f['textOnly']} "
            f"| {f['equivalent']} | {f['decisionChanging']} | {f['unjudged']} "
            f"| {f['killRatePct']}% | {f['nonTextKillRatePct']}% |"
        )
    if r["staleJudgements"]:
        lines += [
            "",
            "Stale judgements (the mutated line changed): " + ", ".join(r["staleJudgements"]),
        ]
    for verdict in ("decision-changing", "unjudged", "equivalent", "text-only"):
        rows = [s for s in r["survivors"] if s["class"] == verdict]
        if not rows:
            continue
        lines += ["", f"## Survivors: {verdict} ({len(rows)})", ""]
        for s in rows:
            lines.append(
                f"- `{s['mutant']}` ({s['status']}): `{s['original']}` -> `{s['mutated']}`"
            )
            if verdict in ("decision-changing",):
                lines.append(f"  - oracle: {json.dumps(s['oracle'].get('examples', []))}")
            elif verdict == "equivalent":
                lines.append(f"  - {s['reason']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("summary", help="summarise mutants/ into <out>.json and <out>.md")
    s.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "mutation")
    s.add_argument("--generated", type=int, default=400, help="generated oracle patients")
    s.add_argument("--label", default="current code")
    o = sub.add_parser("oracle", help="(internal) run mutants on the corpus, in mutants/")
    o.add_argument("names", type=Path)
    o.add_argument("out", type=Path)
    o.add_argument("--generated", type=int, default=400)
    args = parser.parse_args(argv)
    if args.command == "oracle":
        oracle_main(args.names, args.out, args.generated)
        return 0
    started = time.monotonic()
    result = summary(args.out, args.generated, args.label)
    bad = sum(f["decisionChanging"] + f["unjudged"] for f in result["modules"].values())
    print(f"wrote {args.out}.json and .md in {time.monotonic() - started:.0f} s")
    for module, f in result["modules"].items():
        print(
            f"  {module}: {f['generated']} generated, {f['killed']} killed, {f['survived']} "
            f"survived (decision-changing {f['decisionChanging']}, unjudged {f['unjudged']}); "
            f"non-text kill rate {f['nonTextKillRatePct']}%"
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
