"""Verification of the JWT bearer token that CDS clients send on every call.

CDS Hooks 2.0 has the client sign a short-lived JWT with its private key; the
service checks it against the client's published public keys.  This module is
a library: it knows nothing of Flask.  The web layer calls
``JwtVerifier.verify(request.headers.get("Authorization"), endpoint_url)`` and
turns an ``AuthError`` into a bare 401 with ``www_authenticate(err.reason)``.

Design choices (why):

* Only asymmetric algorithms are accepted, and the algorithm must match the
  type (and curve) of the key selected by ``kid``; ``none`` and HMAC are never
  accepted, so a public key can never be used as an HMAC secret.
* The signature is checked by PyJWT, but the time and audience claims are
  checked here against an injected clock, so they are testable and the leeway
  is explicit.
* Keys are fetched only from configured places: the client's ``jwks_url`` or
  ``jwks_file``, or a header ``jku`` that is on that client's allowlist.
  Header ``jwk``/``x5u``/``x5c`` are ignored.
* Key sets are cached per source and refreshed when an unknown ``kid`` shows
  up (key rotation) or the cache is older than ``jwks_max_age_seconds`` (key
  removal), at most once per ``jwks_refresh_min_interval_seconds`` per source,
  so a stream of forged ``kid`` values cannot make the service hammer a JWKS
  URL.  A failed fetch counts as an attempt too.
* ``AuthError.reason`` is a short machine code for logs; it never contains the
  token.  Clients only ever see a bare 401.
"""

from __future__ import annotations

import heapq
import ipaddress
import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import jwt
import requests

from cds_service.fhir_client import connect_origin  # the parser that connects

ALLOWED_ALGORITHMS: tuple[str, ...] = (
    "ES256",
    "ES384",
    "ES512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
)

# Curve required for each ECDSA algorithm (RFC 7518 section 3.4).
_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}

# Sanity limits on untrusted input.
_MAX_TOKEN_CHARS = 16_384
_MAX_JWKS_BYTES = 512 * 1024
_PRIVATE_JWK_FIELDS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

REALM = "cds-services"


class AuthError(Exception):
    """Authentication failed; ``reason`` is a short code safe to log.

    The message is the reason only: the token is never part of it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------
# Configuration


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: Any, name: str) -> None:
    """Key URLs must be https; plain http is allowed only on loopback (tests, sidecars)."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"{name}: must be a non-empty string")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return
    raise ValueError(f"{name}: must be an https URL (http only on loopback)")


@dataclass(frozen=True)
class TrustedClient:
    """One CDS client we accept tokens from.

    Keys come from ``jwks_url`` or ``jwks_file`` (not both), or from a header
    ``jku`` that is listed in ``jku_allowlist`` (exact string match).  A client
    with only an allowlist must send ``jku`` on every token.
    """

    iss: str
    jwks_url: str | None = None
    jwks_file: str | None = None
    jku_allowlist: tuple[str, ...] = ()
    tenant: str | None = None
    # FHIR server base URLs this client may name in fhirServer; None: any (not advised,
    # the EHR's token goes wherever fhirServer points).
    fhir_servers: tuple[str, ...] | None = None

    def allows_fhir_server(self, url: str) -> bool:
        """``url`` is one of ``fhir_servers`` (scheme and host case-insensitive, a trailing
        slash ignored); always True when the client has no such list."""
        if self.fhir_servers is None:
            return True
        wanted = _base_key(url)
        return wanted is not None and wanted in {_base_key(u) for u in self.fhir_servers}

    def __post_init__(self) -> None:
        if not isinstance(self.iss, str) or not self.iss:
            raise ValueError("iss: must be a non-empty string")
        if self.jwks_url is not None:
            _check_url(self.jwks_url, "jwks_url")
        if self.jwks_file is not None and (
            not isinstance(self.jwks_file, str) or not self.jwks_file
        ):
            raise ValueError("jwks_file: must be a non-empty string")
        if self.jwks_url is not None and self.jwks_file is not None:
            raise ValueError("jwks_url/jwks_file: give one, not both")
        if not isinstance(self.jku_allowlist, tuple):
            raise ValueError("jku_allowlist: must be a tuple of URLs")
        for i, url in enumerate(self.jku_allowlist):
            _check_url(url, f"jku_allowlist[{i}]")
        if self.jwks_url is None and self.jwks_file is None and not self.jku_allowlist:
            raise ValueError("jwks_url: one of jwks_url, jwks_file or jku_allowlist is required")
        if self.tenant is not None and (not isinstance(self.tenant, str) or not self.tenant):
            raise ValueError("tenant: must be a non-empty string when given")
        for i, url in enumerate(self.fhir_servers or ()):
            if not isinstance(url, str) or _base_key(url) is None:
                raise ValueError(
                    f"fhir_servers[{i}]: must be a plain http(s) base URL without query, "
                    "fragment or credentials"
                )


def _base_key(url: str) -> tuple[str, str, int, str] | None:
    """What two spellings of one FHIR base URL share: origin and path (no trailing /)."""
    origin = connect_origin(url)
    if origin is None:
        return None
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        return None
    return (*origin, parts.path.rstrip("/"))


_CLIENT_FIELDS = ("iss", "jwks_url", "jwks_file", "jku_allowlist", "tenant", "fhir_servers")


def parse_trusted_clients(data: Any) -> tuple[TrustedClient, ...]:
    """Build trusted clients from JSON config (a list of objects).

    Unknown fields are errors so that a typo (``"jku_alowlist"``) does not
    silently weaken the configuration.  Messages name the offending entry and
    field, e.g. ``trusted_clients[1].jwks_url: must be an https URL``.
    """
    if not isinstance(data, list):
        raise ValueError("trusted_clients: must be a list of objects")
    clients: list[TrustedClient] = []
    seen: set[str] = set()
    for i, item in enumerate(data):
        where = f"trusted_clients[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: must be an object")
        unknown = sorted(str(k) for k in item if k not in _CLIENT_FIELDS)
        if unknown:
            raise ValueError(f"{where}.{unknown[0]}: unknown field")
        allow = item.get("jku_allowlist", [])
        if not isinstance(allow, list):
            raise ValueError(f"{where}.jku_allowlist: must be a list of URLs")
        servers = item.get("fhir_servers")
        if servers is not None and not isinstance(servers, list):
            raise ValueError(f"{where}.fhir_servers: must be a list of URLs")
        for name in ("iss", "jwks_url", "jwks_file", "tenant"):
            value = item.get(name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{where}.{name}: must be a string")
        try:
            client = TrustedClient(
                iss=item.get("iss", ""),
                jwks_url=item.get("jwks_url"),
                jwks_file=item.get("jwks_file"),
                jku_allowlist=tuple(allow),
                tenant=item.get("tenant"),
                fhir_servers=tuple(servers) if servers is not None else None,
            )
        except ValueError as exc:
            raise ValueError(f"{where}.{exc}") from None
        if client.iss in seen:
            raise ValueError(f"{where}.iss: duplicate issuer")
        seen.add(client.iss)
        clients.append(client)
    return tuple(clients)


@dataclass(frozen=True)
class AuthConfig:
    """Verifier settings.

    ``max_lifetime_seconds`` caps ``exp - iat``: CDS client tokens are meant
    to be short-lived, and the cap also bounds how long replay-cache entries
    live.  ``None`` disables the cap.  ``jwks_max_age_seconds`` makes cached
    keys be re-read now and then so a key removed by the client stops being
    trusted; ``None`` keeps keys until an unknown ``kid`` forces a refresh.
    """

    clients: tuple[TrustedClient, ...]
    leeway_seconds: int = 30
    max_lifetime_seconds: int | None = 3600
    jwks_refresh_min_interval_seconds: float = 60.0
    jwks_timeout_seconds: float = 2.0
    jwks_max_age_seconds: float | None = 3600.0
    algorithms: tuple[str, ...] = ALLOWED_ALGORITHMS
    _by_iss: Mapping[str, TrustedClient] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_iss: dict[str, TrustedClient] = {}
        for client in self.clients:
            if client.iss in by_iss:
                raise ValueError(f"clients: duplicate issuer {client.iss!r}")
            by_iss[client.iss] = client
        object.__setattr__(self, "_by_iss", by_iss)
        if self.leeway_seconds < 0:
            raise ValueError("leeway_seconds: must be >= 0")
        if self.max_lifetime_seconds is not None and self.max_lifetime_seconds <= 0:
            raise ValueError("max_lifetime_seconds: must be > 0")
        if self.jwks_refresh_min_interval_seconds < 0:
            raise ValueError("jwks_refresh_min_interval_seconds: must be >= 0")
        if self.jwks_timeout_seconds <= 0:
            raise ValueError("jwks_timeout_seconds: must be > 0")
        if self.jwks_max_age_seconds is not None and self.jwks_max_age_seconds <= 0:
            raise ValueError("jwks_max_age_seconds: must be > 0")
        bad = [a for a in self.algorithms if a not in ALLOWED_ALGORITHMS]
        if bad or not self.algorithms:
            raise ValueError("algorithms: only asymmetric JWS algorithms are allowed")

    def client_for(self, iss: str) -> TrustedClient | None:
        return self._by_iss.get(iss)


# --------------------------------------------------------------------------
# Replay cache


class ReplayCache(Protocol):
    def add_if_new(self, key: str, expires_at: float) -> bool:
        """Store ``key`` until ``expires_at``; False if it is already stored (a replay)."""
        ...


class ReplayCacheFull(Exception):
    """The cache holds ``max_entries`` live entries; refusing beats forgetting."""


class MemoryReplayCache:
    """In-process replay cache: thread-safe, expired entries evicted, bounded.

    When full of live entries it raises ``ReplayCacheFull`` rather than drop a
    live entry (which would re-open a replay window); the verifier turns that
    into a refusal.  With several worker processes each has its own cache, so
    a replay to another worker is not caught: use a shared store there.
    """

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        if max_entries <= 0:
            raise ValueError("max_entries: must be > 0")
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def _evict_expired(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            expires_at, key = heapq.heappop(self._heap)
            if self._expiry.get(key) == expires_at:
                del self._expiry[key]

    def add_if_new(self, key: str, expires_at: float) -> bool:
        with self._lock:
            self._evict_expired(self._clock())
            if key in self._expiry:
                return False
            if len(self._expiry) >= self._max:
                raise ReplayCacheFull()
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))
            return True


# --------------------------------------------------------------------------
# Key sets


def _parse_jwks(raw: bytes) -> dict[str, dict[str, Any]]:
    """Public signing keys by ``kid``; anything else in the set is skipped.

    Symmetric (``oct``) keys, keys carrying private material, keys without a
    ``kid`` and keys not meant for signatures are dropped, so they can never
    be selected.
    """
    data = json.loads(raw)
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("not a JWK Set")
    keys: dict[str, dict[str, Any]] = {}
    for jwk in data["keys"]:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid or kid in keys:
            continue
        if jwk.get("kty") not in ("EC", "RSA"):
            continue
        if _PRIVATE_JWK_FIELDS & jwk.keys():
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        keys[kid] = jwk
    return keys


class _KeySource:
    """One place keys come from (URL or file), with its cache and rate limit."""

    def __init__(self, fetch: Callable[[], bytes]) -> None:
        self._fetch = fetch
        self._lock = threading.Lock()
        self._keys: dict[str, dict[str, Any]] | None = None
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None

    def get(
        self, kid: str, now: float, min_interval: float, max_age: float | None
    ) -> dict[str, Any]:
        # The lock is held across the fetch so a burst of requests with
        # unknown kids results in a single fetch, not one per request.
        with self._lock:
            fresh = (
                self._keys is not None
                and self._loaded_at is not None
                and (max_age is None or now - self._loaded_at < max_age)
            )
            if not (fresh and self._keys is not None and kid in self._keys):
                may_fetch = self._attempted_at is None or not (
                    0 <= now - self._attempted_at < min_interval
                )
                if may_fetch:
                    self._attempted_at = now
                    try:
                        self._keys = _parse_jwks(self._fetch())
                        self._loaded_at = now
                    except Exception:
                        # Any failure (network, status, JSON, size) is an
                        # outage of this source, never a leaked exception.
                        # Keep any keys we had (availability); a kid we
                        # cannot resolve is then reported as an outage.
                        if self._keys is None or kid not in self._keys:
                            raise AuthError("jwks-unavailable") from None
            if self._keys is None:
                raise AuthError("jwks-unavailable")
            jwk = self._keys.get(kid)
            if jwk is None:
                raise AuthError("unknown-kid")
            return jwk


def _read_file(path: str) -> bytes:
    with Path(path).open("rb") as fh:
        raw = fh.read(_MAX_JWKS_BYTES + 1)
    if len(raw) > _MAX_JWKS_BYTES:
        raise ValueError("JWKS file too large")
    return raw


def _fetch_url(session: requests.Session, url: str, timeout: float) -> bytes:
    """GET a JWKS: no redirects (the allowlist names exact URLs), bounded size and time."""
    deadline = time.monotonic() + timeout
    with session.get(
        url,
        timeout=timeout,
        allow_redirects=False,
        stream=True,
        headers={"Accept": "application/json"},
    ) as resp:
        if resp.status_code != 200:
            raise ValueError("JWKS fetch: unexpected status")
        body = bytearray()
        for chunk in resp.iter_content(chunk_size=16_384):
            body.extend(chunk)
            if len(body) > _MAX_JWKS_BYTES:
                raise ValueError("JWKS too large")
            if time.monotonic() > deadline:
                raise ValueError("JWKS fetch too slow")
        return bytes(body)


# --------------------------------------------------------------------------
# Verifier


@dataclass(frozen=True)
class VerifiedClient:
    """Who called: the trusted issuer, the token id, the tenant, the key id."""

    iss: str
    jti: str
    tenant: str | None
    kid: str | None
    client: TrustedClient | None = None


_REQUIRED_CLAIMS = ("aud", "exp", "iat", "jti")


def _number_claim(payload: Mapping[str, Any], name: str) -> float:
    value = payload[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AuthError(f"invalid-claim:{name}")
    return float(value)


def _key_matches_alg(jwk: Mapping[str, Any], alg: str) -> bool:
    """The key selected by kid must be of the kind the header's alg needs."""
    declared = jwk.get("alg")
    if declared is not None and declared != alg:
        return False
    if alg.startswith("ES"):
        return jwk.get("kty") == "EC" and jwk.get("crv") == _EC_CURVES[alg]
    return jwk.get("kty") == "RSA"


def _bearer_token(authorization_header: str | None) -> str:
    if authorization_header is None or not authorization_header.strip():
        raise AuthError("missing-token")
    parts = authorization_header.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise AuthError("malformed")
    token = parts[1]
    if len(token) > _MAX_TOKEN_CHARS or token.count(".") != 2:
        raise AuthError("malformed")
    return token


class JwtVerifier:
    """Checks CDS client bearer tokens; safe to share between threads.

    ``clock`` gives wall-clock seconds (token times, replay expiry);
    ``monotonic`` drives JWKS refresh rate limiting and cache age.
    """

    def __init__(
        self,
        config: AuthConfig,
        replay_cache: ReplayCache | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._clock = clock
        self._monotonic = monotonic
        self._replay: ReplayCache = (
            replay_cache if replay_cache is not None else MemoryReplayCache(clock=clock)
        )
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._sources: dict[str, _KeySource] = {}
        self._sources_lock = threading.Lock()

    def close(self) -> None:
        """Close the HTTP session if this verifier created it."""
        if self._owns_session:
            self._session.close()

    def _source(self, kind: str, where: str) -> _KeySource:
        name = f"{kind}:{where}"
        with self._sources_lock:
            source = self._sources.get(name)
            if source is None:
                if kind == "url":
                    timeout = self._config.jwks_timeout_seconds
                    session = self._session

                    def fetch() -> bytes:
                        return _fetch_url(session, where, timeout)

                else:

                    def fetch() -> bytes:
                        return _read_file(where)

                source = _KeySource(fetch)
                self._sources[name] = source
            return source

    def _key_for(
        self, client: TrustedClient, header: Mapping[str, Any], kid: str
    ) -> dict[str, Any]:
        jku = header.get("jku")
        if jku is not None:
            if not isinstance(jku, str) or jku not in client.jku_allowlist:
                raise AuthError("jku-not-allowed")
            source = self._source("url", jku)
        elif client.jwks_url is not None:
            source = self._source("url", client.jwks_url)
        elif client.jwks_file is not None:
            source = self._source("file", client.jwks_file)
        else:
            raise AuthError("jku-required")
        return source.get(
            kid,
            self._monotonic(),
            self._config.jwks_refresh_min_interval_seconds,
            self._config.jwks_max_age_seconds,
        )

    def trusted_issuer_of(self, authorization_header: str | None) -> str | None:
        """The ``iss`` a token claims, only when it names a configured client (for the
        audit of refusals: any other value is attacker text and is not kept)."""
        try:
            payload = jwt.api_jwt.decode_complete(
                _bearer_token(authorization_header), options={"verify_signature": False}
            )["payload"]
        except (AuthError, jwt.PyJWTError, ValueError, TypeError, KeyError):
            return None
        iss = payload.get("iss") if isinstance(payload, dict) else None
        if isinstance(iss, str) and self._config.client_for(iss) is not None:
            return iss
        return None

    def verify(self, authorization_header: str | None, audience: str) -> VerifiedClient:
        """Return the verified caller or raise ``AuthError``.

        ``audience`` is the full URL of the endpoint invoked (no query
        string); the token's ``aud`` must equal it exactly.
        """
        token = _bearer_token(authorization_header)
        try:
            unverified = jwt.api_jwt.decode_complete(token, options={"verify_signature": False})
        except (jwt.PyJWTError, ValueError, TypeError):
            raise AuthError("malformed") from None
        header = unverified["header"]
        payload = unverified["payload"]
        if not isinstance(header, dict) or not isinstance(payload, dict):
            raise AuthError("malformed")

        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._config.algorithms:
            raise AuthError("alg-not-allowed")
        if "crit" in header or "b64" in header:
            raise AuthError("malformed")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
            raise AuthError("bad-typ")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("missing-kid")

        if "iss" not in payload:
            raise AuthError("missing-claim:iss")
        iss = payload["iss"]
        if not isinstance(iss, str):
            raise AuthError("invalid-claim:iss")
        client = self._config.client_for(iss)
        if client is None:
            raise AuthError("unknown-issuer")

        jwk = self._key_for(client, header, kid)
        if not _key_matches_alg(jwk, alg):
            raise AuthError("key-mismatch")
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
        except jwt.PyJWTError:
            raise AuthError("key-mismatch") from None

        try:
            verified = jwt.api_jwt.decode_complete(
                token,
                key=key,
                algorithms=[alg],
                # Claims are checked below against our own clock.
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_aud": False,
                    "verify_iss": False,
                    "verify_sub": False,
                    "verify_jti": False,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.InvalidSignatureError:
            raise AuthError("bad-signature") from None
        except jwt.InvalidKeyError:
            raise AuthError("weak-key") from None
        except jwt.InvalidAlgorithmError:
            raise AuthError("alg-not-allowed") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise AuthError("malformed") from None
        claims = verified["payload"]
        if not isinstance(claims, dict):
            raise AuthError("malformed")
        return self._check_claims(client, claims, audience, kid)

    def _check_claims(
        self, client: TrustedClient, claims: Mapping[str, Any], audience: str, kid: str
    ) -> VerifiedClient:
        for name in _REQUIRED_CLAIMS:
            if name not in claims:
                raise AuthError(f"missing-claim:{name}")
        leeway = self._config.leeway_seconds
        now = self._clock()

        aud = claims["aud"]
        if isinstance(aud, str):
            audiences = [aud]
        elif isinstance(aud, list) and all(isinstance(a, str) for a in aud):
            audiences = aud
        else:
            raise AuthError("invalid-claim:aud")
        if audience not in audiences:
            raise AuthError("wrong-audience")

        exp = _number_claim(claims, "exp")
        iat = _number_claim(claims, "iat")
        if now >= exp + leeway:
            raise AuthError("expired")
        if iat > now + leeway:
            raise AuthError("iat-in-future")
        if "nbf" in claims and _number_claim(claims, "nbf") > now + leeway:
            raise AuthError("not-yet-valid")
        max_lifetime = self._config.max_lifetime_seconds
        if exp < iat:
            raise AuthError("invalid-claim:exp")
        if max_lifetime is not None and exp - iat > max_lifetime:
            raise AuthError("lifetime-too-long")

        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise AuthError("invalid-claim:jti")

        tenant = claims.get("tenant")
        if tenant is not None and not isinstance(tenant, str):
            raise AuthError("invalid-claim:tenant")
        if client.tenant is not None:
            if tenant is None:
                raise AuthError("missing-claim:tenant")
            if tenant != client.tenant:
                raise AuthError("wrong-tenant")

        # Record the jti last, so a token refused for another reason does not
        # use up its id; json keeps (iss, jti) pairs unambiguous.
        replay_key = json.dumps([client.iss, jti])
        try:
            stored = self._replay.add_if_new(replay_key, exp + leeway)
        except Exception:
            raise AuthError("replay-cache-unavailable") from None
        if not stored:
            raise AuthError("replayed-jti")
        return VerifiedClient(iss=client.iss, jti=jti, tenant=tenant, kid=kid, client=client)


def www_authenticate(reason: str | None = None) -> str:
    """Value of ``WWW-Authenticate`` on a 401 (RFC 6750 section 3).

    No token at all gets the bare challenge; a presented but refused token
    adds ``error="invalid_token"``.  The specific reason is never sent: it
    would tell an attacker which check to work on.
    """
    if reason is None or reason == "missing-token":
        return f'Bearer realm="{REALM}"'
    return f'Bearer realm="{REALM}", error="invalid_token"'
