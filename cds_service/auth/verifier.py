"""The JWT verifier: signature, algorithm, claims, audience, replay."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
import requests

from cds_service.auth.algorithms import _EC_CURVES, _MAX_TOKEN_CHARS
from cds_service.auth.clients import AuthConfig, TrustedClient
from cds_service.auth.errors import AuthError, bad_typ
from cds_service.auth.jwks import JkuList, _fetch_url, _KeySource, _read_file
from cds_service.stores.replay import MemoryReplayCache, ReplayCache


@dataclass(frozen=True)
class VerifiedClient:
    """Who called: the trusted issuer, the token id, the tenant, the key id."""

    iss: str
    jti: str
    tenant: str | None
    kid: str | None
    client: TrustedClient | None = None


_REQUIRED_CLAIMS = ("aud", "exp", "iat", "jti")


# The last second of year 9999: a NumericDate beyond it names no date, and differences
# of such values (a lifetime) overflowed into a 500 instead of a 401.
_LAST_NUMERIC_DATE = 253_402_300_799


def _number_claim(payload: Mapping[str, Any], name: str) -> float:
    value = payload[name]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not -_LAST_NUMERIC_DATE <= value <= _LAST_NUMERIC_DATE  # also refuses NaN
    ):
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


def _key_facts(jwk: Mapping[str, Any]) -> dict[str, Any]:
    """What a key-mismatch line shows of the key the kid selected: its ``kty``, ``alg``
    and ``crv`` as published (public facts of a key, never its material), each only when
    the JWK has it."""
    return {f"key_{name}": jwk[name] for name in ("kty", "alg", "crv") if name in jwk}


def _names_jwt(typ: object) -> bool:
    """Whether a header ``typ`` says JWT. RFC 7515 section 4.1.9 lets ``application/`` be
    left out and media types are compared without regard to case, so ``JWT``, ``jwt`` and
    ``application/jwt`` are one type (an outside review saw the last refused)."""
    return isinstance(typ, str) and typ.isascii() and typ.lower() in {"jwt", "application/jwt"}


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
        self._jku_lists: dict[str, JkuList] = {}
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

                source = _KeySource(fetch, kind, where)
                self._sources[name] = source
            return source

    def _jku_list(self, url: str) -> JkuList:
        with self._sources_lock:
            found = self._jku_lists.get(url)
            if found is None:
                timeout = self._config.jwks_timeout_seconds
                session = self._session

                def fetch() -> bytes:
                    return _fetch_url(session, url, timeout)

                found = JkuList(fetch, url)
                self._jku_lists[url] = found
            return found

    def _jku_allowed(self, client: TrustedClient, jku: str) -> bool:
        """On the allowlist, the client's own ``jwks_url``, or its published list."""
        if jku in client.jku_allowlist or jku == client.jwks_url:
            return True
        if client.jku_list_url is None:
            return False
        return self._jku_list(client.jku_list_url).allows(
            jku,
            self._monotonic(),
            self._config.jwks_refresh_min_interval_seconds,
            self._config.jwks_max_age_seconds,
        )

    def key_sources_status(self) -> dict[str, str | None]:
        """Each configured place keys (or a jku list) come from, and None when it can be
        had or why not ("HTTP 404", "ConnectTimeout"), for readiness. A place never
        fetched is fetched now (at most once per refresh interval)."""
        now = self._monotonic()
        interval = self._config.jwks_refresh_min_interval_seconds
        found: dict[str, str | None] = {}
        for client in self._config.clients:
            if client.jwks_url is not None:
                found[client.jwks_url] = self._source("url", client.jwks_url).status(now, interval)
            if client.jwks_file is not None:
                found[client.jwks_file] = self._source("file", client.jwks_file).status(
                    now, interval
                )
            if client.jku_list_url is not None:
                found[client.jku_list_url] = self._jku_list(client.jku_list_url).status(
                    now, interval
                )
        return found

    def _keys_for(
        self, client: TrustedClient, header: Mapping[str, Any], kid: str
    ) -> list[dict[str, Any]]:
        jku = header.get("jku")
        if jku is not None:
            if not isinstance(jku, str) or not self._jku_allowed(client, jku):
                allowed = [*client.jku_allowlist, *([client.jwks_url] if client.jwks_url else [])]
                # the published list's entries too: "jku_allowed=[]" alone read as if the
                # list allowed nothing (an integration review at 3 a.m.)
                listed: dict[str, Any] = {}
                if client.jku_list_url:
                    published = self._jku_list(client.jku_list_url).listed()
                    listed = {"jku_list_url": client.jku_list_url, "jku_listed": published}
                raise AuthError("jku-not-allowed", jku=jku, jku_allowed=allowed, **listed)
            source = self._source("url", jku)
        elif client.jwks_url is not None:
            source = self._source("url", client.jwks_url)
        elif client.jwks_file is not None:
            source = self._source("file", client.jwks_file)
        else:  # an entry with only jku_allowlist or jku_list_url: say so, and what is missing
            named = {"jku_list_url": client.jku_list_url, "jku_allowlist": client.jku_allowlist}
            raise AuthError(
                "jku-required",
                why="this client's entry names no jwks_url or jwks_file, only where a jku may "
                "point: each token must carry a jku header",
                **{name: value for name, value in named.items() if value},
            )
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
            raise AuthError("alg-not-allowed", alg=alg, allowed=list(self._config.algorithms))
        if "crit" in header or "b64" in header:
            raise AuthError("malformed")
        typ = header.get("typ")
        if typ is not None and not _names_jwt(typ):
            raise bad_typ(typ)
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
            raise AuthError("unknown-issuer", iss=iss)

        named = self._keys_for(client, header, kid)
        # The keys of the kind the token's alg needs, among those the kid names; else the
        # token's alg and the key's kind side by side: what mismatched (a site that moved
        # from RS384 to RS256 with its JWK still saying RS384 sees it here).
        fitting = [k for k in named if _key_matches_alg(k, alg)]
        if not fitting:
            raise AuthError("key-mismatch", alg=alg, kid=kid, **_key_facts(named[0]))
        verified = _verified(token, fitting, alg, kid)
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
            raise AuthError("wrong-audience", aud_presented=aud, aud_expected=audience)

        exp = _number_claim(claims, "exp")
        iat = _number_claim(claims, "iat")
        if now >= exp + leeway:
            raise AuthError("expired", exp=int(exp), now=int(now), leeway_s=leeway)
        if iat > now + leeway:
            raise AuthError("iat-in-future", iat=int(iat), now=int(now), leeway_s=leeway)
        if "nbf" in claims and (nbf := _number_claim(claims, "nbf")) > now + leeway:
            raise AuthError("not-yet-valid", nbf=int(nbf), now=int(now), leeway_s=leeway)
        max_lifetime = self._config.max_lifetime_seconds
        if exp < iat:
            raise AuthError("invalid-claim:exp")
        if max_lifetime is not None and exp - iat > max_lifetime:
            raise AuthError(
                "lifetime-too-long", lifetime_s=int(exp - iat), max_lifetime_s=max_lifetime
            )

        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise AuthError("invalid-claim:jti")

        tenant = claims.get("tenant")
        if tenant is not None and not isinstance(tenant, str):
            raise AuthError("invalid-claim:tenant")
        if client.tenant is not None:
            if tenant is None:
                raise AuthError(
                    "missing-claim:tenant",
                    tenant_expected=client.tenant,
                    why="this client's entry names a tenant and the token carries none: "
                    "remove tenant from the entry or have the client send it",
                )
            if tenant != client.tenant:
                raise AuthError(
                    "wrong-tenant", tenant_expected=client.tenant, tenant_presented=tenant
                )

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


_DECODE_OPTIONS: Any = {
    "verify_signature": True,
    # Claims are checked by the verifier against its own clock.
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "enforce_minimum_key_length": True,
}


def _verified(token: str, keys: Sequence[Mapping[str, Any]], alg: str, kid: str) -> Any:
    """The token decoded with the first of ``keys`` its signature verifies with: one kid
    may name several keys of the alg's kind (RFC 7517 section 4.5; an integration
    review's re-check saw a token signed with the second of two RSA keys refused, and a
    malformed first key hide a valid second one)."""
    refusal = AuthError("key-mismatch", alg=alg, kid=kid, **_key_facts(keys[0]))
    for jwk in keys:
        try:
            key = jwt.PyJWK(dict(jwk), algorithm=alg)
        except jwt.PyJWTError:
            continue  # this one cannot be used; the refusal stays a mismatch unless tried
        try:
            return jwt.api_jwt.decode_complete(
                token, key=key, algorithms=[alg], options=_DECODE_OPTIONS
            )
        except jwt.InvalidSignatureError:
            refusal = AuthError("bad-signature")
        except jwt.InvalidKeyError:
            raise AuthError("weak-key") from None
        except jwt.InvalidAlgorithmError:
            raise AuthError("alg-not-allowed") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise AuthError("malformed") from None
    raise refusal
