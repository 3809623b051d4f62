"""What the service builds once at startup and every request shares.

Validators, value sets, rule settings, stores, the FHIR connection pool and the JWT
verifier are all made here (performance-notes.md: build once, never per request).
Nothing here knows of Flask: the web layer (``routes/entrance.py``) turns requests
into calls on what is built here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cds_service import schemas
from cds_service.auth import AuthConfig, JwtVerifier, TrustedClient, load_trusted_clients
from cds_service.cards import OverrideReason, load_override_reasons
from cds_service.datasources import with_served_prefetch
from cds_service.discovery import Discovery, load_discovery
from cds_service.engine.thresholds import RuleSettings
from cds_service.fhir import FhirClient
from cds_service.hook_declarations import BODIES
from cds_service.hookbody import HookBodyDecoder
from cds_service.metrics import Metrics
from cds_service.settings import Settings, SettingsError
from cds_service.stores import Stores, build_stores
from cds_service.stores.patientkey import MISSING_KEY
from cds_service.turns import Turns
from cds_service.validation import SchemaCheck
from cds_service.valuesets import load_code_lists
from fhir_mappers.antibiotics import Antibiotics
from fhir_mappers.observations import MappingOptions
from fhir_mappers.valuesets import ValueSets

log = logging.getLogger("cds_service")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    discovery: Discovery
    # per body a client sends (hook_declarations.BODIES: each hook, and feedback)
    validators: dict[str, SchemaCheck]
    value_sets: ValueSets
    # the systemic antibacterials, for T0 from the first antibiotic order
    antibiotics: Antibiotics
    rules: RuleSettings
    mapping: MappingOptions
    stores: Stores
    fhir_client: FhirClient
    verifier: JwtVerifier | None
    metrics: Metrics
    override_reasons: tuple[OverrideReason, ...]
    # per service id: the typed decoder of its hook bodies (hookbody.py)
    hook_decoders: dict[str, HookBodyDecoder]
    # One hook call computes at a time; a call waiting on FHIR gives its turn away.
    turns: Turns
    # Set once this process has run its warm-up (cds_service.warmup); /readyz waits for it.
    warm: threading.Event = field(default_factory=threading.Event)
    # The clock a call is decided at when its order has no authoredOn (a test sets its own).
    now: Callable[[], datetime] = utc_now
    # The clients the verifier was built with (none in development mode): /readyz counts them.
    trusted_clients: tuple[TrustedClient, ...] = ()

    def close(self) -> None:
        """Release connections and threads (tests, tools, and the pre-fork check)."""
        self.fhir_client.close()
        if self.verifier is not None:
            self.verifier.close()
        self.stores.close()


NO_PUBLIC_BASE_URL = (
    "public_base_url must be set outside development mode (SPINE_CDS_PUBLIC_BASE_URL, "
    "e.g. https://cds.example.org): it is the URL clients put in the JWT aud, and "
    "the service never takes it from the request's Host header"
)
DEV_MODE_HINT = (
    "For a local trial without client JWTs, start in development mode instead: "
    "spine-cds serve --dev (or SPINE_CDS_DEV_MODE=true)."
)


def secure_mode_gaps(settings: Settings) -> list[str]:
    """Every setting secure mode (the default) needs and lacks, so a first start names them
    all at once with the way out to development mode (a newcomer met them one restart at a
    time)."""
    if settings.dev_mode:
        return []
    gaps = []
    if not settings.public_base_url:
        gaps.append(NO_PUBLIC_BASE_URL)
    if settings.audit_patient_id == "hash" and not settings.audit_hash_key:
        gaps.append(MISSING_KEY)
    return gaps


def _load_verifier(
    settings: Settings, stores: Stores
) -> tuple[JwtVerifier | None, tuple[TrustedClient, ...]]:
    """The verifier and the trusted clients it was built with; none in development mode."""
    if settings.dev_mode:
        return None, ()
    try:
        parsed = load_trusted_clients(settings.trusted_clients_file or None)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    if not parsed:
        log.warning(
            "no trusted CDS clients are configured (trusted_clients_file): every request "
            "will be refused with 401; set SPINE_CDS_DEV_MODE=true for local development"
        )
    for client in parsed:
        if client.fhir_servers is None:
            log.warning(
                "trusted client %s has no fhir_servers: the EHR's access token goes to any "
                "public https server its calls name (plain http, loopback and private "
                "addresses are refused), and since names are not resolved its calls can "
                "probe internal https names and ports; list its FHIR servers in "
                "trusted_clients_file",
                client.iss,
            )
    config = AuthConfig(
        clients=parsed,
        leeway_seconds=settings.jwt_leeway_seconds,
        jwks_refresh_min_interval_seconds=settings.jwks_refresh_min_interval_seconds,
        jwks_max_age_seconds=settings.jwks_max_age_seconds,
    )
    return JwtVerifier(config, stores.replay), parsed


def build_runtime(settings: Settings) -> Runtime:
    """Everything shared by requests; a configuration error stops startup with its reason."""
    gaps = secure_mode_gaps(settings)
    if gaps:
        said = (
            gaps[0]
            if len(gaps) == 1
            else "secure mode needs " + " ".join(f"({n}) {g}" for n, g in enumerate(gaps, 1))
        )
        raise SettingsError(f"{said} {DEV_MODE_HINT}")
    discovery = load_discovery(settings.hooks_file)
    validators = {body.name: schemas.check(body.schema) for body in BODIES.values()}
    lists = load_code_lists(Path(settings.valueset_dir) if settings.valueset_dir else None)
    value_sets = lists.value_sets
    discovery = with_served_prefetch(discovery, lists.shipped, value_sets)
    mapping = MappingOptions(
        accept_preliminary=settings.accept_preliminary,
        crp_molar_factor_nmol_per_mg=settings.crp_molar_factor or None,
    )
    rules = settings.rules
    metrics = Metrics()
    stores = build_stores(settings, count=metrics.count_audit_records)
    try:
        verifier, trusted_clients = _load_verifier(settings, stores)
    except BaseException:
        stores.close()
        raise
    turns = Turns()
    return Runtime(
        settings=settings,
        discovery=discovery,
        validators=validators,
        value_sets=value_sets,
        antibiotics=lists.antibiotics,
        rules=rules,
        mapping=mapping,
        stores=stores,
        fhir_client=FhirClient(settings.fhir, calls_at_once=settings.threads, turns=turns),
        verifier=verifier,
        metrics=metrics,
        override_reasons=load_override_reasons(),
        hook_decoders={sid: HookBodyDecoder(s) for sid, s in discovery.services.items()},
        turns=turns,
        trusted_clients=trusted_clients,
    )
