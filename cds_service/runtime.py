"""What the service builds once at startup and every request shares.

Validators, value sets, rule settings, stores, the FHIR connection pool and the JWT
verifier are all made here (performance-notes.md: build once, never per request).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from flask import request
from jsonschema.validators import Draft202012Validator

from cds_service import schemas
from cds_service.auth import (
    AuthConfig,
    AuthError,
    JwtVerifier,
    VerifiedClient,
    parse_trusted_clients,
    www_authenticate,
)
from cds_service.discovery import Discovery, load_discovery
from cds_service.engine.settings import RuleSettings
from cds_service.errors import ApiError
from cds_service.fhir_client import FhirClient
from cds_service.metrics import Metrics
from cds_service.rulesettings import rule_settings_from
from cds_service.settings import Settings, SettingsError
from cds_service.stores import Stores, build_stores
from cds_service.stores.audit import AuditRecord
from cds_service.valuesets import load_value_sets
from fhir_mappers.observations import MappingOptions
from fhir_mappers.valuesets import ValueSets

log = logging.getLogger("cds_service")
auth_log = logging.getLogger("cds_service.auth")

# The CDS Hooks sandbox publishes its signing key: anyone can mint its tokens.
PUBLIC_KEY_ISSUERS = frozenset({"https://sandbox.cds-hooks.org"})

EndpointKind = Literal["discovery", "hook", "feedback"]


@dataclass
class Runtime:
    settings: Settings
    discovery: Discovery
    validators: dict[str, Draft202012Validator]
    value_sets: ValueSets
    rules: RuleSettings
    mapping: MappingOptions
    stores: Stores
    fhir_client: FhirClient
    verifier: JwtVerifier | None
    metrics: Metrics

    def close(self) -> None:
        """Release connections and threads (tests, tools, and the pre-fork check)."""
        self.fhir_client.close()
        if self.verifier is not None:
            self.verifier.close()
        self.stores.close()

    def require_service(self, service_id: str) -> None:
        if service_id not in self.discovery.services:
            raise ApiError(
                404,
                "unknown_service",
                f"no service with id {service_id!r}; see GET /cds-services",
            )

    def authenticate(
        self, kind: EndpointKind, service_id: str | None = None
    ) -> VerifiedClient | None:
        """The verified client, or None in development mode (and for open discovery).

        Refuses the request with a bare 401 unless it carries a valid client JWT. The
        expected ``aud`` is ``public_base_url`` + the path, never built from the request's
        Host or forwarded headers (a token minted for another deployment would pass).
        """
        if self.verifier is None:
            return None
        if kind == "discovery" and not self.settings.auth_required_for_discovery:
            return None
        audience = self.settings.public_base_url.rstrip("/") + request.path
        authorization = request.headers.get("Authorization")
        try:
            client = self.verifier.verify(authorization, audience)
        except AuthError as exc:
            issuer = self.verifier.trusted_issuer_of(authorization)
            auth_log.warning(
                "refused client JWT reason=%s endpoint=%s issuer=%s remote=%s",
                exc.reason,
                kind,
                issuer or "-",
                request.remote_addr,
            )
            self._audit_refusal(kind, service_id, exc.reason, issuer)
            raise ApiError(
                401,
                "unauthorized",
                "a valid bearer JWT from a trusted CDS client is required",
                headers={"WWW-Authenticate": www_authenticate(exc.reason)},
            ) from None
        auth_log.debug("client authenticated iss=%s", client.iss)
        return client

    def _audit_refusal(
        self, kind: EndpointKind, service_id: str | None, reason: str, issuer: str | None
    ) -> None:
        """A 401 in the audit, for security review: why, and the issuer when it is one we
        trust (a claimed issuer we do not know is attacker text: never stored)."""
        if not self.settings.audit_enabled:
            return
        service = self.discovery.services.get(service_id or "")
        detail: dict[str, Any] = {"endpoint": kind, "authReason": reason}
        if issuer is not None:
            detail["issuer"] = issuer
        try:
            self.stores.audit.record(
                AuditRecord(
                    hook_instance="-",
                    service_id=service.id if service else "-",
                    hook=service.hook if service else "-",
                    received_at=datetime.now(UTC),
                    patient_key=None,
                    decision="error",
                    reason="unauthorized",
                    rules_fired=(),
                    counts={},
                    data_sources={},
                    card_uuids=(),
                    status=401,
                    latency_ms=0.0,
                    fhir_ms=None,
                    shadow=self.settings.shadow_mode,
                    detail=detail,
                )
            )
        except Exception as exc:  # the audit never turns a 401 into a 500
            log.error("audit record of a refusal failed error=%s", type(exc).__name__)


def _load_verifier(settings: Settings, stores: Stores) -> JwtVerifier | None:
    if settings.dev_mode:
        return None
    if not settings.public_base_url:
        raise SettingsError(
            "public_base_url must be set outside development mode (SPINE_CDS_PUBLIC_BASE_URL, "
            "e.g. https://cds.example.org): it is the URL clients put in the JWT aud, and "
            "the service never takes it from the request's Host header"
        )
    clients: Any = []
    if settings.trusted_clients_file:
        path = Path(settings.trusted_clients_file)
        try:
            clients = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"trusted_clients_file {path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise SettingsError(f"trusted_clients_file {path} is not valid JSON: {exc}") from None
    try:
        parsed = parse_trusted_clients(clients)
    except ValueError as exc:
        raise SettingsError(f"trusted_clients_file: {exc}") from None
    public_keys = [c.iss for c in parsed if c.iss.rstrip("/") in PUBLIC_KEY_ISSUERS]
    if public_keys:
        raise SettingsError(
            f"trusted_clients_file: {public_keys[0]} signs with a private key that is public; "
            "it can never be trusted outside development mode (use SPINE_CDS_DEV_MODE=true)"
        )
    if not parsed:
        log.warning(
            "no trusted CDS clients are configured (trusted_clients_file): every request "
            "will be refused with 401; set SPINE_CDS_DEV_MODE=true for local development"
        )
    config = AuthConfig(
        clients=parsed,
        leeway_seconds=settings.jwt_leeway_seconds,
        jwks_refresh_min_interval_seconds=settings.jwks_refresh_min_interval_seconds,
    )
    return JwtVerifier(config, stores.replay)


def build_runtime(settings: Settings) -> Runtime:
    """Everything shared by requests; a configuration error stops startup with its reason."""
    discovery = load_discovery(settings.hooks_file)
    validators = {
        "order-select": schemas.validator(schemas.request_schema_for("order-select")),
        "order-sign": schemas.validator(schemas.request_schema_for("order-sign")),
        "feedback": schemas.validator("feedback.schema.json"),
    }
    value_sets = load_value_sets(Path(settings.valueset_dir) if settings.valueset_dir else None)
    mapping = MappingOptions(
        accept_preliminary=settings.accept_preliminary,
        crp_molar_factor_nmol_per_mg=settings.crp_molar_factor or None,
    )
    rules = rule_settings_from(settings.rules)
    stores = build_stores(settings)
    try:
        verifier = _load_verifier(settings, stores)
    except BaseException:
        stores.close()
        raise
    return Runtime(
        settings=settings,
        discovery=discovery,
        validators=validators,
        value_sets=value_sets,
        rules=rules,
        mapping=mapping,
        stores=stores,
        fhir_client=FhirClient(settings),
        verifier=verifier,
        metrics=Metrics(),
    )
