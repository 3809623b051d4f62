"""The card's link to the trend app: a SMART link whose appContext says what to highlight.

Every decision card links to the SMART app the service serves under ``/trend/``
(cds_service/static/trend, source in smart_app/). The EHR launches it with ``launch``
and ``iss``; the app reads the patient's data from the EHR's FHIR server itself and
uses ``appContext`` only to highlight what the decision rested on: the treatment start
(T0) and where it came from (the first antibiotic order, with its ingredient, or the
episode's date), the findings known at diagnosis (name and date), the values each rule
used, the thresholds in force, the rule that fired and the card's one-line summary. It is
the card's machine-readable result without its orders: values, not resources, about
2-3 KB (the EHR keeps it with the launch and hands it back in the token response). The
app says the decision in the card's own words, sent with it (``cards.trend_words``): the
summary, each fired rule's short phrase and where T0 came from, made by the cards' phrase
functions; it keeps no wording of its own but a neutral one for "opened without a card".

What the app must read as the service reads it goes in the app's page, not in
appContext: it is the same for every card, is needed without a card too, and would add
about a kilobyte to every link. ``reading_facts`` gives it (routes/trend_app.py writes it
into the page): the searches the service serves for the app's keys (with the codes a
site adds through ``valueset_dir``), how each code they ask for is read, the result
statuses that count (``accept_preliminary``), the CRP and ESR units and the molar CRP
factor (``crp_molar_factor``), the pages a search is followed through
(``fhir_max_pages``), the categories of the infection (``include_other_infective``) and
the thresholds in force. So the app keeps no copy of the
settings or of the observation code lists, and with or without a card it reads the
patient's data as this service does.

The link needs the service's own public URL. The renderer knows nothing of the web: the
hook route works it out with ``base_url_for`` (``public_base_url`` when set, required
outside development mode, else, in development mode only, the URL the request came in
on) and hands it in with the card context (``CardContext.trend_base_url``). Without
either there is no link rather than a relative URL an EHR would resolve against itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cds_service.datasources import BY_KEY, PATIENT, served_prefetch
from cds_service.engine.episode import in_scope_categories
from cds_service.engine.thresholds import RuleSettings
from fhir_mappers.observations_careful import (
    CRP_MASS_TO_MG_PER_L,
    CRP_MOLAR_UNITS,
    ESR_UNITS,
    USED_STATUSES,
    MappingOptions,
)
from fhir_mappers.valuesets import ValueSets

LAUNCH_PATH = "/trend/launch"
LINK_LABEL = "See the CRP, ESR and pain trend"
APP_CONTEXT_VERSION = 1
# The thresholds the app draws with (the baseline and its window, the fall line, the
# normal limit, the day-28 mark, the values' windows), and only those:
# tests/cards/test_trend_app_config.py holds them to what the app reads.
THRESHOLDS = {
    "plateauMinFallPct": "plateau_min_fall_pct",
    "plateauAfterDays": "plateau_after_days",
    "crpNormalMgL": "crp_normal_mg_l",
    "baselineWindowDays": "baseline_window_days",
    "dataLookbackDays": "data_lookback_days",
}
# The searches the app runs and reads by key (smart_app/src/app.js: the conditions for T0
# and the red flags, then the three series); the service's other prefetch keys are its own.
APP_SEARCHES = ("conditions", "crp", "esr", "pain")
# The app's placeholder for the patient in a search (hooks.json's is PATIENT).
APP_PATIENT = "{patient}"


def thresholds(settings: RuleSettings) -> dict[str, Any]:
    """The thresholds the app draws, by the app's names."""
    return {key: getattr(settings, name) for key, name in THRESHOLDS.items()}


def reading_facts(
    value_sets: ValueSets, mapping: MappingOptions, max_pages: int, rules: RuleSettings
) -> dict[str, Any]:
    """What the app reads as the service does (the module's docstring), from the value
    sets, the mapping options and the settings in force:

    - ``queries``: the prefetch template the service serves for each of the app's keys
      (``datasources.served_prefetch``: a site's codes included), the patient written
      ``{patient}``;
    - ``codes``: for each search that asks for codes, each code (``system|code``) with the
      value-set kind it is read as (``crp``, ``crp-hs``, ``crp-molar``, ``esr``, ``pain``);
    - ``statuses``: the Observation statuses that count (``preliminary`` too when the
      setting ``accept_preliminary`` is on);
    - ``crpMassToMgL``, ``crpMolarUnits``, ``esrUnits``: the units read (lower case, UCUM
      annotations dropped, as the mapper compares them), the mass ones with their factor
      to mg/L;
    - ``crpMolarFactor``: nmol/L per mg/L, null when molar CRP is not read;
    - ``maxPages``: the pages of a search followed before it is said to be cut off;
    - ``episodeCategories``: the condition categories of an infection the service
      treats (``include_other_infective``), for T0 when the app has no card;
    - ``thresholds``: the thresholds in force, drawn when the app has no card."""
    served = served_prefetch(value_sets)
    codes = {
        key: {
            f"{system}|{code}": entry.kind.value
            for (system, code), entry in value_sets.observations.items()
            if entry.kind in BY_KEY[key].codes_of
        }
        for key in APP_SEARCHES
        if BY_KEY[key].codes_of
    }
    statuses = set(USED_STATUSES) | ({"preliminary"} if mapping.accept_preliminary else set())
    return {
        "queries": {key: served[key].replace(PATIENT, APP_PATIENT) for key in APP_SEARCHES},
        "codes": codes,
        "statuses": sorted(statuses),
        "crpMassToMgL": dict(CRP_MASS_TO_MG_PER_L),
        "crpMolarUnits": sorted(CRP_MOLAR_UNITS),
        "esrUnits": sorted(ESR_UNITS),
        "crpMolarFactor": mapping.crp_molar_factor_nmol_per_mg,
        "maxPages": max_pages,
        "episodeCategories": sorted(c.value for c in in_scope_categories(rules)),
        "thresholds": thresholds(rules),
    }


def base_url_for(public_base_url: str, dev_mode: bool, request_url_root: str) -> str:
    """The service's base URL for links: the configured one, else (dev mode) the request's."""
    if public_base_url:
        return public_base_url.rstrip("/")
    if dev_mode and request_url_root.startswith(("http://", "https://")):
        return request_url_root.rstrip("/")
    return ""


def launch_url(base_url: str) -> str:
    return base_url.rstrip("/") + LAUNCH_PATH


def app_context(
    assessment: Mapping[str, Any],
    patient_id: str,
    settings: RuleSettings,
    words: Mapping[str, Any],
) -> dict[str, Any]:
    """What the app highlights: the card's machine-readable result (T0 with its source and
    antibiotic, the findings known at diagnosis, the values the rules used), the card's
    ``words`` (``cards.trend_words.card_words``: its summary as plain text, the one-line
    reason, and its rule and T0 lines), the patient it is about (the app ignores a
    context for another patient) and the thresholds in force."""
    return {
        "v": APP_CONTEXT_VERSION,
        "patient": patient_id,
        "reason": words.get("reason", ""),
        "thresholds": thresholds(settings),
        **{k: v for k, v in words.items() if k != "reason"},
        **{k: v for k, v in assessment.items() if k != "orders"},
    }


def trend_link(
    assessment: Mapping[str, Any],
    patient_id: str,
    settings: RuleSettings,
    words: Mapping[str, Any],
    base_url: str,
) -> dict[str, Any]:
    """The CDS Hooks ``smart`` link to the app under ``base_url``, the service's URL (the
    renderer gives none when it is not known: a relative URL would be resolved against
    the EHR)."""
    context = app_context(assessment, patient_id, settings, words)
    return {
        "label": LINK_LABEL,
        "url": launch_url(base_url),
        "type": "smart",
        # compact UTF-8 JSON, as the answer itself is written (orjson: a tenth of the
        # stdlib's time, about 1.5% of a card's rendering)
        "appContext": orjson.dumps(context).decode(),
    }
