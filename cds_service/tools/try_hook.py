"""``spine-cds try``: act as the EHR for one order and show what the service answers.

The steps are the ones an EHR takes: it knows the patient (checked with a read), it
discovers the service and its prefetch templates, fills them against its own FHIR
server with its own token (or sends no prefetch), passes that server and token on in
``fhirServer``/``fhirAuthorization``, and calls the hook.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from time import perf_counter
from typing import Any

from cds_service.ehr_requests import (
    build_request,
    code_order,
    file_order,
    masked,
    parse_order_code,
)
from cds_service.fhir.prefetch import render_queries
from cds_service.hook_declarations import DEFAULT_HOOK
from cds_service.tools.errors import InputError
from cds_service.tools.fhir_http import FhirEndpoint
from cds_service.tools.services import (
    Answer,
    CdsService,
    InProcessService,
    RemoteService,
    ServiceEntry,
    find_service,
    shadow_mode_of,
)

ALGORITHM_BY_CURVE = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


class ClientSigner:
    """Signs the client JWT a secure-mode service requires (CDS Hooks 2.0 security).

    The private key is a PEM file (EC P-256/P-384/P-521, or RSA); its public half goes in
    the JWKS the service's trusted-clients entry names (``spine-cds client-jwks``).
    """

    def __init__(
        self,
        key_file: str,
        issuer: str,
        kid: str | None = None,
        jku: str | None = None,
        tenant: str | None = None,
    ) -> None:
        """``jku``: the header an entry with ``jku_list_url`` or ``jku_allowlist`` needs
        (Oracle Health's shape); ``tenant``: the claim an entry with ``tenant`` needs."""
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(Path(key_file).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise InputError(
                f"--client-key {key_file}: not a readable PEM private key ({exc})"
            ) from None
        if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in ALGORITHM_BY_CURVE:
            self.algorithm = ALGORITHM_BY_CURVE[key.curve.name]
        elif isinstance(key, rsa.RSAPrivateKey):
            self.algorithm = "RS384"
        else:
            raise InputError(f"--client-key {key_file}: use an EC (P-256/384/521) or RSA key")
        self.key = key
        self.issuer = issuer
        self.kid = kid or public_jwk(key)["kid"]
        self.jku = jku
        self.tenant = tenant

    def token(self, audience: str, lifetime_seconds: int = 300) -> str:
        import time as clock

        import jwt

        now = int(clock.time())
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "iat": now,
            "exp": now + lifetime_seconds,
            "jti": str(uuid.uuid4()),
        }
        if self.tenant is not None:
            claims["tenant"] = self.tenant
        headers = {"kid": self.kid, "typ": "JWT"}
        if self.jku is not None:
            headers["jku"] = self.jku
        return jwt.encode(claims, self.key, algorithm=self.algorithm, headers=headers)


def public_jwk(key: Any, kid: str | None = None) -> dict[str, Any]:
    """The public JWK of a private key, ``kid`` defaulting to its RFC 7638 thumbprint."""
    import base64
    import hashlib

    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm

    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(public, as_dict=True)
        members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
        jwk["alg"] = ALGORITHM_BY_CURVE[public.curve.name]
    else:
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        members = {k: jwk[k] for k in ("e", "kty", "n")}
        jwk["alg"] = "RS384"
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    digest = hashlib.sha256(canonical).digest()
    jwk["kid"] = kid or base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    jwk["use"] = "sig"
    return jwk


class SignedRemoteService(RemoteService):
    """A running service called with a fresh client JWT on every request (aud = the URL)."""

    def __init__(self, base_url: str, signer: ClientSigner) -> None:
        super().__init__(base_url)
        self._signer = signer

    def _exchange(self, method: str, url: str, body: Any) -> Answer:
        self._session.headers["Authorization"] = f"Bearer {self._signer.token(url)}"
        return super()._exchange(method, url, body)


@dataclass(frozen=True)
class TryOptions:
    fhir_server: str
    patient_id: str
    order: str  # SYSTEM|CODE, or the path of a ServiceRequest JSON file
    hook: str = DEFAULT_HOOK
    token: str | None = None
    service_url: str | None = None  # None: the service in process
    no_prefetch: bool = False
    authored_on: str | None = None  # --date: the draft's authoredOn (replaces a file's)
    now: str | None = None  # authoredOn when --date is not given and the order has none
    config_file: str | None = None  # in process only
    signer: ClientSigner | None = None  # signs a client JWT for a secure-mode service


@dataclass(frozen=True)
class TryResult:
    service_label: str
    service: ServiceEntry
    request: dict[str, Any]
    answer: Answer
    prefetch_counts: dict[str, int] = field(default_factory=dict)  # key -> resources sent
    left_out: dict[str, str] = field(default_factory=dict)  # key -> why not prefetched
    shadow_mode: bool | None = None  # what the service's /health says; None: unknown
    elapsed_ms: float = 0.0  # the hook call alone (in process: after a warm-up call)

    def exchange(self) -> dict[str, Any]:
        """The raw exchange, safe to print (the access token is masked)."""
        return {
            "service": self.service_label,
            "serviceId": self.service.id,
            "request": masked(self.request),
            "response": {"status": self.answer.status, "body": self.answer.body},
        }


def authored_on(value: str | datetime) -> str:
    """``--date`` as a FHIR dateTime: YYYY-MM-DD (noon, local time) or an ISO date-time;
    a date-time without offset is taken as local time."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            if len(value) == 10:
                moment = datetime.combine(date.fromisoformat(value), time(12, 0))
            else:
                moment = datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"--date {value!r}: expected YYYY-MM-DD or an ISO date-time") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.isoformat(timespec="seconds")


def read_order(
    order: str, patient_id: str, when: str | None, now: str | None = None
) -> dict[str, Any]:
    """The draft order from ``--order``: a ServiceRequest JSON file, or SYSTEM|CODE.

    ``when`` (``--date``) is its authoredOn; without it a coded order is authored ``now``
    and a file order keeps its own authoredOn (``now`` when it has none)."""
    path = Path(order)
    if path.is_file():
        try:
            resource = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"--order {order}: cannot read JSON: {exc}") from None
        try:
            return file_order(resource, patient_id, when, now)
        except ValueError as exc:
            raise InputError(f"--order {order}: {exc}") from None
    try:
        system, code = parse_order_code(order)
    except ValueError:
        raise InputError(
            f"--order {order!r}: expected SYSTEM|CODE (e.g. http://www.ama-assn.org/go/cpt|72158) "
            "or the path of a ServiceRequest JSON file"
        ) from None
    authored = when or now
    if authored is None:
        raise InputError("an order given as a code needs an authoredOn (--date)")
    return code_order(patient_id, system, code, authored)


def resources_in(value: Any) -> int:
    """How many resources a prefetch value holds: a search Bundle's entries, and 1 for a
    resource read by id (the Patient), which is no Bundle and has no entries: counted
    as entries it showed ``patient 0`` when the Patient had been read."""
    if not isinstance(value, dict):
        return 0
    if value.get("resourceType") == "Bundle":
        return len(value.get("entry") or [])
    return 1


def run_try(options: TryOptions) -> TryResult:
    """Build and send the request; raise ToolError for problems before the service answers.

    A non-200 answer of the service is returned, not raised: the caller shows it."""
    order = read_order(options.order, options.patient_id, options.authored_on, options.now)
    service: CdsService
    with FhirEndpoint(options.fhir_server, options.token) as fhir:
        if options.service_url and options.signer is not None:
            service = SignedRemoteService(options.service_url, options.signer)
        elif options.service_url:
            service = RemoteService(options.service_url)
        else:
            service = InProcessService(options.config_file)
        try:
            fhir.read_patient(options.patient_id)
            entry = find_service(
                service.discovery(),
                options.hook,
                service.label,
                signed=isinstance(service, SignedRemoteService),
            )
            request = build_request(
                options.hook,
                str(uuid.uuid4()),
                options.patient_id,
                order,
                fhir_server=fhir.base,
                access_token=options.token,
            )
            counts: dict[str, int] = {}
            left_out: dict[str, str] = {}
            if not options.no_prefetch:
                queries, problems = render_queries(entry.prefetch, request["context"])
                left_out.update({p.key: p.reason for p in problems})
                fetched = fhir.run_prefetch(queries)
                left_out.update(fetched.left_out)
                if fetched.prefetch:
                    request["prefetch"] = fetched.prefetch
                counts = {k: resources_in(v) for k, v in fetched.prefetch.items()}
            if isinstance(service, InProcessService):
                service.warm_up()  # time the service, not this process's first call
            started = perf_counter()
            answer = service.call(entry.id, request)
            elapsed_ms = (perf_counter() - started) * 1000
            shadow = shadow_mode_of(service.health()) if answer.status == 200 else None
        finally:
            service.close()
    return TryResult(service.label, entry, request, answer, counts, left_out, shadow, elapsed_ms)
