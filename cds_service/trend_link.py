"""The card's link to the trend app: a SMART link whose appContext says what to highlight.

Every decision card links to the SMART app the service serves under ``/trend/``
(cds_service/static/trend, source in smart_app/). The EHR launches it with ``launch``
and ``iss``; the app reads the patient's data from the EHR's FHIR server itself and
uses ``appContext`` only to highlight what the decision rested on: the treatment start
(T0) and where it came from (the first antibiotic order, with its ingredient, or the
episode's date), the findings known at diagnosis (name and date), the values each rule
used, the thresholds in force, the rule that fired and the card's one-line summary. It is
the card's machine-readable result without its orders: values, not resources, about
2-3 KB (the EHR keeps it with the launch and hands it back in the token response).

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

from cds_service.engine.thresholds import RuleSettings

LAUNCH_PATH = "/trend/launch"
LINK_LABEL = "See the CRP, ESR and pain trend"
APP_CONTEXT_VERSION = 1
# The thresholds the app draws (baseline, the fall line, the normal limit, the day marks).
THRESHOLDS = {
    "plateauMinFallPct": "plateau_min_fall_pct",
    "risePct": "rise_pct",
    "riseAfterDays": "rise_after_days",
    "plateauAfterDays": "plateau_after_days",
    "painWorsePoints": "pain_worse_points",
    "crpNormalMgL": "crp_normal_mg_l",
    "baselineWindowDays": "baseline_window_days",
    "dataLookbackDays": "data_lookback_days",
    "crpMaxAgeDays": "crp_max_age_days",
    "antibioticBeforeDays": "antibiotic_before_days",
    "antibioticAfterDays": "antibiotic_after_days",
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
    assessment: Mapping[str, Any], summary: str, patient_id: str, settings: RuleSettings
) -> dict[str, Any]:
    """What the app highlights: the card's machine-readable result (T0 with its source and
    antibiotic, the findings known at diagnosis, the values the rules used), its summary
    (the one-line reason), the patient it is about (the app ignores a context for another
    patient) and the thresholds in force."""
    return {
        "v": APP_CONTEXT_VERSION,
        "patient": patient_id,
        "reason": summary,
        "thresholds": {key: getattr(settings, name) for key, name in THRESHOLDS.items()},
        **{k: v for k, v in assessment.items() if k != "orders"},
    }


def trend_link(
    assessment: Mapping[str, Any],
    summary: str,
    patient_id: str,
    settings: RuleSettings,
    base_url: str,
) -> dict[str, Any] | None:
    """The CDS Hooks ``smart`` link, or None when the service's URL is not known ("")."""
    if not base_url:
        return None
    context = app_context(assessment, summary, patient_id, settings)
    return {
        "label": LINK_LABEL,
        "url": launch_url(base_url),
        "type": "smart",
        # compact UTF-8 JSON, as the answer itself is written (orjson: a tenth of the
        # stdlib's time, about 1.5% of a card's rendering)
        "appContext": orjson.dumps(context).decode(),
    }


def add_trend_link(
    card: dict[str, Any],
    assessment: Mapping[str, Any],
    patient_id: str,
    settings: RuleSettings,
    base_url: str,
) -> None:
    """Put the link on a rendered card (``card["links"]``) when the base URL is known."""
    link = trend_link(assessment, str(card["summary"]), patient_id, settings, base_url)
    if link is not None:
        card["links"] = [link]
