"""Tests for CDS client JWT verification, with real keys and a real JWKS server.

Keys are generated here; JWK Sets are served over HTTP on 127.0.0.1 by a real
server that counts the requests it gets.  Only the clocks are fakes, so that
expiry and the refresh rate limit can be checked without sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.warnings import InsecureKeyLengthWarning

from cds_service.auth import (
    AuthConfig,
    AuthError,
    JwtVerifier,
    TrustedClient,
    parse_trusted_clients,
    www_authenticate,
)
from cds_service.auth.errors import REASONS
from cds_service.stores.replay import MemoryReplayCache, ReplayCacheFull
from tests.support.jwks_server import JwksServer

ISS = "https://ehr.example.org"
OTHER_ISS = "https://other-ehr.example.org"
AUD = "https://cds.example.org/cds-services/spine-imaging"
T0 = 1_700_000_000.0
INTERVAL = 60.0


class FakeClock:
    """A settable clock; tests move it instead of sleeping."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Key:
    """A generated key pair with its kid and public JWK."""

    def __init__(self, private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, alg: str) -> None:
        self.private = private
        self.alg = alg
        self.kid = uuid.uuid4().hex
        if isinstance(private, ec.EllipticCurvePrivateKey):
            jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
        else:
            jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        self.jwk: dict[str, Any] = {**jwk, "kid": self.kid, "use": "sig", "alg": alg}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def ec_key() -> Key:
    return Key(ec.generate_private_key(ec.SECP384R1()), "ES384")


def rsa_key() -> Key:
    return Key(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS384")


@pytest.fixture(scope="module")
def es_key() -> Key:
    return ec_key()


@pytest.fixture(scope="module")
def rs_key() -> Key:
    return rsa_key()


def jwks(*keys: Key) -> dict[str, Any]:
    return {"keys": [k.jwk for k in keys]}


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "iat": int(T0),
        "exp": int(T0) + 300,
        "jti": str(uuid.uuid4()),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Key, payload: dict[str, Any], **header: Any) -> str:
    headers: dict[str, Any] = {"kid": key.kid, "typ": "JWT"}
    headers.update(header)
    return jwt.encode(payload, key.private, algorithm=key.alg, headers=headers)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A token PyJWT would refuse to build; ``signature`` is appended as given."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64url(signature)}"


@pytest.fixture
def server(es_key: Key, rs_key: Key) -> Iterator[JwksServer]:
    with JwksServer() as srv:
        srv.publish(jwks(es_key, rs_key))
        yield srv


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def mono() -> FakeClock:
    return FakeClock(1000.0)


_CREATED: list[JwtVerifier] = []


@pytest.fixture(autouse=True)
def _close_verifiers() -> Iterator[None]:
    yield
    while _CREATED:
        _CREATED.pop().close()


def make_verifier(
    clients: tuple[TrustedClient, ...],
    clock: FakeClock,
    mono: FakeClock,
    replay_cache: MemoryReplayCache | None = None,
    **config: Any,
) -> JwtVerifier:
    cfg = AuthConfig(clients=clients, jwks_refresh_min_interval_seconds=INTERVAL, **config)
    cache = replay_cache if replay_cache is not None else MemoryReplayCache(clock=clock)
    verifier = JwtVerifier(cfg, replay_cache=cache, clock=clock, monotonic=mono)
    _CREATED.append(verifier)
    return verifier


@pytest.fixture
def verifier(server: JwksServer, clock: FakeClock, mono: FakeClock) -> JwtVerifier:
    client = TrustedClient(iss=ISS, jwks_url=server.url())
    return make_verifier((client,), clock, mono)


def refused(verifier: JwtVerifier, header: str | None, audience: str = AUD) -> str:
    with pytest.raises(AuthError) as info:
        verifier.verify(header, audience)
    err = info.value
    # The token must never end up in the error (it is logged).
    if header:
        token = header.split()[-1]
        assert token not in str(err)
        assert all(token not in str(arg) for arg in err.args)
        assert err.__cause__ is None
    assert err.reason in REASONS  # documented (tests/auth/test_reasons_documented.py)
    return err.reason


# --------------------------------------------------------------------------
# Valid tokens


def test_valid_es384_token_passes(verifier: JwtVerifier, es_key: Key) -> None:
    payload = claims()
    result = verifier.verify(bearer(sign(es_key, payload)), AUD)
    assert (result.iss, result.jti, result.kid, result.tenant) == (
        ISS,
        payload["jti"],
        es_key.kid,
        None,
    )


def test_valid_rs384_token_passes(verifier: JwtVerifier, rs_key: Key) -> None:
    payload = claims()
    result = verifier.verify(bearer(sign(rs_key, payload)), AUD)
    assert result.jti == payload["jti"]
    assert result.kid == rs_key.kid


def test_aud_may_be_a_list_containing_the_endpoint(verifier: JwtVerifier, es_key: Key) -> None:
    token = sign(es_key, claims(aud=["https://elsewhere.example.org/x", AUD]))
    assert verifier.verify(bearer(token), AUD).iss == ISS


def test_small_clock_skew_is_tolerated(verifier: JwtVerifier, es_key: Key) -> None:
    token = sign(es_key, claims(iat=int(T0) + 20, exp=int(T0) + 320))
    assert verifier.verify(bearer(token), AUD).iss == ISS


def test_keys_are_cached_between_calls(
    verifier: JwtVerifier, server: JwksServer, es_key: Key, rs_key: Key
) -> None:
    for key in (es_key, rs_key, es_key):
        verifier.verify(bearer(sign(key, claims())), AUD)
    assert server.request_count() == 1


# --------------------------------------------------------------------------
# Algorithm attacks


def test_alg_none_is_refused(verifier: JwtVerifier, es_key: Key) -> None:
    token = hand_made({"alg": "none", "typ": "JWT", "kid": es_key.kid}, claims())
    assert refused(verifier, bearer(token)) == "alg-not-allowed"


def test_hs256_signed_with_the_public_key_is_refused(verifier: JwtVerifier, rs_key: Key) -> None:
    header = {"alg": "HS256", "typ": "JWT", "kid": rs_key.kid}
    unsigned = hand_made(header, claims()).rsplit(".", 1)[0]
    mac = hmac.new(rs_key.public_pem(), unsigned.encode(), hashlib.sha256).digest()
    token = f"{unsigned}.{b64url(mac)}"
    assert refused(verifier, bearer(token)) == "alg-not-allowed"


def mismatch_details(verifier: JwtVerifier, token: str) -> str:
    """The log line's values of a key-mismatch refusal (the reason is checked too)."""
    assert refused(verifier, bearer(token)) == "key-mismatch"
    with pytest.raises(AuthError) as info:
        verifier.verify(bearer(token), AUD)
    return info.value.details()


def test_alg_not_matching_the_key_type_is_refused(verifier: JwtVerifier, rs_key: Key) -> None:
    # ES384 header naming an RSA key: the kid's key decides what is acceptable.
    token = hand_made({"alg": "ES384", "typ": "JWT", "kid": rs_key.kid}, claims(), b"x" * 96)
    details = mismatch_details(verifier, token)
    assert details == f'alg="ES384" kid="{rs_key.kid}" key_kty="RSA" key_alg="RS384"'


def test_alg_for_another_curve_is_refused(verifier: JwtVerifier, es_key: Key) -> None:
    # ES256 needs a P-256 key; the kid names a P-384 key.
    token = hand_made({"alg": "ES256", "typ": "JWT", "kid": es_key.kid}, claims(), b"x" * 64)
    details = mismatch_details(verifier, token)
    assert details == (
        f'alg="ES256" kid="{es_key.kid}" key_kty="EC" key_alg="ES384" key_crv="P-384"'
    )


def test_alg_for_which_the_key_is_not_declared_is_refused(
    verifier: JwtVerifier, rs_key: Key
) -> None:
    # The JWK says alg RS384; a PS384 header must not be verified with it.
    token = hand_made({"alg": "PS384", "typ": "JWT", "kid": rs_key.kid}, claims(), b"x" * 256)
    assert 'alg="PS384"' in mismatch_details(verifier, token)


def test_a_key_mismatch_says_what_mismatched_and_nothing_of_the_key(
    verifier: JwtVerifier, rs_key: Key
) -> None:
    """An integration review: an RS256 token signed with the right RSA key, whose JWK says
    RS384 (a site that moved from RS384 to RS256), was logged as a bare key-mismatch."""
    token = jwt.encode(
        claims(), rs_key.private, algorithm="RS256", headers={"kid": rs_key.kid, "typ": "JWT"}
    )
    details = mismatch_details(verifier, token)
    assert details == f'alg="RS256" kid="{rs_key.kid}" key_kty="RSA" key_alg="RS384"'
    assert rs_key.jwk["n"] not in details  # the kind of key, never its material


def test_algorithm_outside_the_configured_subset_is_refused(
    server: JwksServer, clock: FakeClock, mono: FakeClock, rs_key: Key
) -> None:
    client = TrustedClient(iss=ISS, jwks_url=server.url())
    verifier = make_verifier((client,), clock, mono, algorithms=("ES384",))
    assert refused(verifier, bearer(sign(rs_key, claims()))) == "alg-not-allowed"


def test_only_asymmetric_algorithms_can_be_configured() -> None:
    with pytest.raises(ValueError, match="algorithms"):
        AuthConfig(clients=(), algorithms=("HS256",))


# --------------------------------------------------------------------------
# Signature and claims


def test_tampered_payload_is_refused(verifier: JwtVerifier, es_key: Key) -> None:
    header_b64, _, signature_b64 = sign(es_key, claims()).split(".")
    forged = b64url(json.dumps(claims(tenant="someone-else")).encode())
    assert refused(verifier, bearer(f"{header_b64}.{forged}.{signature_b64}")) == "bad-signature"


def test_signature_by_another_key_with_a_known_kid_is_refused(
    verifier: JwtVerifier, es_key: Key
) -> None:
    impostor = ec_key()
    token = sign(impostor, claims(), kid=es_key.kid)
    assert refused(verifier, bearer(token)) == "bad-signature"


def test_expired_token_is_refused(verifier: JwtVerifier, es_key: Key, clock: FakeClock) -> None:
    token = sign(es_key, claims())
    clock.advance(300 + 31)
    assert refused(verifier, bearer(token)) == "expired"


def test_token_issued_in_the_future_is_refused(verifier: JwtVerifier, es_key: Key) -> None:
    token = sign(es_key, claims(iat=int(T0) + 120, exp=int(T0) + 400))
    assert refused(verifier, bearer(token)) == "iat-in-future"


def test_token_not_yet_valid_is_refused(verifier: JwtVerifier, es_key: Key) -> None:
    token = sign(es_key, claims(nbf=int(T0) + 120))
    assert refused(verifier, bearer(token)) == "not-yet-valid"


def _signed_by_hand(key: Key, payload: dict[str, Any]) -> str:
    """Signed as PyJWT signs, with claims it would not build (numbers beyond a float)."""
    header = {"alg": key.alg, "kid": key.kid, "typ": "JWT"}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = ECAlgorithm(ECAlgorithm.SHA384).sign(signing_input.encode(), key.private)
    return f"{signing_input}.{b64url(signature)}"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": 10**400}, "invalid-claim:exp"),
        ({"iat": -(10**400)}, "invalid-claim:iat"),
        ({"nbf": 10**400}, "invalid-claim:nbf"),
        ({"exp": 1e308, "iat": -1e308}, "invalid-claim:exp"),
        ({"exp": 253_402_300_800}, "invalid-claim:exp"),
    ],
)
def test_numeric_dates_beyond_any_date_are_refused_not_a_crash(
    verifier: JwtVerifier, es_key: Key, overrides: dict[str, Any], reason: str
) -> None:
    """They once overflowed (a 500) where a 401 was due."""
    token = _signed_by_hand(es_key, claims(**overrides))
    assert refused(verifier, bearer(token)) == reason


def test_overlong_lifetime_is_refused(verifier: JwtVerifier, es_key: Key) -> None:
    token = sign(es_key, claims(exp=int(T0) + 3600 + 1))
    assert refused(verifier, bearer(token)) == "lifetime-too-long"


def test_wrong_audience_is_refused(verifier: JwtVerifier, es_key: Key) -> None:
    token = sign(es_key, claims(aud="https://cds.example.org/cds-services/other"))
    assert refused(verifier, bearer(token)) == "wrong-audience"


def test_unknown_issuer_is_refused_without_fetching_keys(
    verifier: JwtVerifier, server: JwksServer, es_key: Key
) -> None:
    token = sign(es_key, claims(iss="https://attacker.example.net"))
    assert refused(verifier, bearer(token)) == "unknown-issuer"
    assert server.request_count() == 0


@pytest.mark.parametrize("claim", ["iss", "aud", "exp", "iat", "jti"])
def test_each_missing_claim_is_refused(verifier: JwtVerifier, es_key: Key, claim: str) -> None:
    token = sign(es_key, claims(**{claim: None}))
    assert refused(verifier, bearer(token)) == f"missing-claim:{claim}"


@pytest.mark.parametrize(
    ("claim", "value"),
    [("exp", "tomorrow"), ("iat", True), ("jti", 42), ("jti", ""), ("aud", 7)],
)
def test_claims_of_the_wrong_type_are_refused(
    verifier: JwtVerifier, es_key: Key, claim: str, value: Any
) -> None:
    token = sign(es_key, claims(**{claim: value}))
    assert refused(verifier, bearer(token)) == f"invalid-claim:{claim}"


def test_missing_kid_is_refused(verifier: JwtVerifier, es_key: Key) -> None:
    token = jwt.encode(claims(), es_key.private, algorithm="ES384", headers={"typ": "JWT"})
    assert refused(verifier, bearer(token)) == "missing-kid"


def test_wrong_typ_is_refused(verifier: JwtVerifier, es_key: Key) -> None:
    token = sign(es_key, claims(), typ="at+jwt")
    assert refused(verifier, bearer(token)) == "bad-typ"
    for typ in ("application/at+jwt", "JWS", "JWT ", "application/", {"x": 1}):
        assert refused(verifier, bearer(sign(es_key, claims(), typ=typ))) == "bad-typ"


@pytest.mark.parametrize("typ", ["JWT", "jwt", "application/jwt", "APPLICATION/JWT"])
def test_every_way_rfc_7515_writes_jwt_is_accepted(
    verifier: JwtVerifier, es_key: Key, typ: str
) -> None:
    # RFC 7515 section 4.1.9: a typ without "/" is read with "application/" before it;
    # media types are compared without regard to case.
    assert verifier.verify(bearer(sign(es_key, claims(), typ=typ)), AUD).iss == ISS


# --------------------------------------------------------------------------
# Replay


def test_replayed_jti_is_refused(verifier: JwtVerifier, es_key: Key) -> None:
    token = sign(es_key, claims())
    verifier.verify(bearer(token), AUD)
    assert refused(verifier, bearer(token)) == "replayed-jti"


def test_same_jti_in_a_new_token_is_refused(verifier: JwtVerifier, es_key: Key) -> None:
    verifier.verify(bearer(sign(es_key, claims(jti="fixed-id"))), AUD)
    token = sign(es_key, claims(jti="fixed-id", exp=int(T0) + 200))
    assert refused(verifier, bearer(token)) == "replayed-jti"


def test_refused_token_does_not_use_up_its_jti(verifier: JwtVerifier, es_key: Key) -> None:
    bad = sign(es_key, claims(jti="id-1", aud="https://cds.example.org/other"))
    assert refused(verifier, bearer(bad)) == "wrong-audience"
    assert verifier.verify(bearer(sign(es_key, claims(jti="id-1"))), AUD).jti == "id-1"


def test_same_jti_from_two_issuers_is_not_a_replay(
    server: JwksServer, clock: FakeClock, mono: FakeClock, es_key: Key
) -> None:
    clients = (
        TrustedClient(iss=ISS, jwks_url=server.url()),
        TrustedClient(iss=OTHER_ISS, jwks_url=server.url()),
    )
    verifier = make_verifier(clients, clock, mono)
    verifier.verify(bearer(sign(es_key, claims(jti="shared"))), AUD)
    result = verifier.verify(bearer(sign(es_key, claims(iss=OTHER_ISS, jti="shared"))), AUD)
    assert result.iss == OTHER_ISS


def test_replay_cache_full_refuses_instead_of_forgetting(
    server: JwksServer, clock: FakeClock, mono: FakeClock, es_key: Key
) -> None:
    client = TrustedClient(iss=ISS, jwks_url=server.url())
    cache = MemoryReplayCache(max_entries=1, clock=clock)
    verifier = make_verifier((client,), clock, mono, replay_cache=cache)
    verifier.verify(bearer(sign(es_key, claims())), AUD)
    assert refused(verifier, bearer(sign(es_key, claims()))) == "replay-cache-unavailable"


def test_memory_replay_cache_evicts_expired_entries(clock: FakeClock) -> None:
    cache = MemoryReplayCache(max_entries=2, clock=clock)
    assert cache.add_if_new("a", T0 + 10)
    assert not cache.add_if_new("a", T0 + 10)
    assert cache.add_if_new("b", T0 + 100)
    with pytest.raises(ReplayCacheFull):
        cache.add_if_new("c", T0 + 100)
    clock.advance(11)
    assert cache.add_if_new("c", T0 + 100)
    assert len(cache) == 2
    with pytest.raises(ReplayCacheFull):
        cache.add_if_new("a", T0 + 200)


def test_memory_replay_cache_is_thread_safe(clock: FakeClock) -> None:
    cache = MemoryReplayCache(clock=clock)
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(32)

    def add() -> None:
        barrier.wait()
        stored = cache.add_if_new("same-key", T0 + 60)
        with lock:
            results.append(stored)

    threads = [threading.Thread(target=add) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 31 + [True]


# --------------------------------------------------------------------------
# Tenant


def test_tenant_is_checked_when_configured(
    server: JwksServer, clock: FakeClock, mono: FakeClock, es_key: Key
) -> None:
    client = TrustedClient(iss=ISS, jwks_url=server.url(), tenant="hospital-a")
    verifier = make_verifier((client,), clock, mono)
    assert verifier.verify(bearer(sign(es_key, claims(tenant="hospital-a"))), AUD).tenant == (
        "hospital-a"
    )
    assert refused(verifier, bearer(sign(es_key, claims(tenant="hospital-b")))) == "wrong-tenant"
    assert refused(verifier, bearer(sign(es_key, claims()))) == "missing-claim:tenant"


# --------------------------------------------------------------------------
# jku


def test_jku_not_on_the_allowlist_is_refused_without_fetching(
    server: JwksServer, clock: FakeClock, mono: FakeClock
) -> None:
    attacker = ec_key()
    server.publish(jwks(attacker), path="/attacker.json")
    client = TrustedClient(
        iss=ISS, jwks_url=server.url(), jku_allowlist=(server.url("/rotating.json"),)
    )
    verifier = make_verifier((client,), clock, mono)
    token = sign(attacker, claims(), jku=server.url("/attacker.json"))
    assert refused(verifier, bearer(token)) == "jku-not-allowed"
    assert server.request_count("/attacker.json") == 0


def test_jku_on_the_allowlist_passes_with_keys_from_that_url(
    server: JwksServer, clock: FakeClock, mono: FakeClock, es_key: Key
) -> None:
    other = ec_key()
    server.publish(jwks(other), path="/client-keys.json")
    client = TrustedClient(
        iss=ISS, jwks_url=server.url(), jku_allowlist=(server.url("/client-keys.json"),)
    )
    verifier = make_verifier((client,), clock, mono)
    token = sign(other, claims(), jku=server.url("/client-keys.json"))
    assert verifier.verify(bearer(token), AUD).kid == other.kid
    assert server.request_count("/client-keys.json") == 1
    assert server.request_count() == 0
    # The jku decides the key set: a key only in the client's jwks_url is not found there.
    token = sign(es_key, claims(), jku=server.url("/client-keys.json"))
    assert refused(verifier, bearer(token)) == "unknown-kid"


def test_client_with_only_an_allowlist_needs_a_jku(
    server: JwksServer, clock: FakeClock, mono: FakeClock, es_key: Key
) -> None:
    client = TrustedClient(iss=ISS, jku_allowlist=(server.url(),))
    verifier = make_verifier((client,), clock, mono)
    assert refused(verifier, bearer(sign(es_key, claims()))) == "jku-required"
    with pytest.raises(AuthError) as info:
        verifier.verify(bearer(sign(es_key, claims())), AUD)
    assert info.value.values["jku_allowlist"] == (server.url(),)
    assert "each token must carry a jku header" in info.value.details()
    assert verifier.verify(bearer(sign(es_key, claims(), jku=server.url())), AUD).iss == ISS


# --------------------------------------------------------------------------
# Keys: unknown kid, rotation, rate limit, outages, files


def test_unknown_kid_is_refused(verifier: JwtVerifier) -> None:
    stranger = ec_key()
    assert refused(verifier, bearer(sign(stranger, claims()))) == "unknown-kid"


def test_rotated_key_is_picked_up_without_a_new_verifier(
    verifier: JwtVerifier, server: JwksServer, mono: FakeClock, clock: FakeClock, es_key: Key
) -> None:
    verifier.verify(bearer(sign(es_key, claims())), AUD)
    new_key = ec_key()
    server.publish(jwks(es_key, new_key))
    mono.advance(INTERVAL + 1)
    clock.advance(INTERVAL + 1)
    fresh = claims(iat=int(clock.now), exp=int(clock.now) + 300)
    assert verifier.verify(bearer(sign(new_key, fresh)), AUD).kid == new_key.kid
    assert server.request_count() == 2


def test_removed_key_stops_being_trusted_after_max_age(
    server: JwksServer, clock: FakeClock, mono: FakeClock, es_key: Key, rs_key: Key
) -> None:
    client = TrustedClient(iss=ISS, jwks_url=server.url())
    verifier = make_verifier((client,), clock, mono, jwks_max_age_seconds=600.0)
    verifier.verify(bearer(sign(es_key, claims())), AUD)
    server.publish(jwks(rs_key))
    mono.advance(601)
    clock.advance(10)
    fresh = claims(iat=int(clock.now), exp=int(clock.now) + 300)
    assert refused(verifier, bearer(sign(es_key, fresh))) == "unknown-kid"
    assert server.request_count() == 2


def test_burst_of_unknown_kids_fetches_at_most_once_per_interval(
    verifier: JwtVerifier, server: JwksServer, mono: FakeClock, es_key: Key
) -> None:
    verifier.verify(bearer(sign(es_key, claims())), AUD)
    assert server.request_count() == 1
    attacker = ec_key()

    def forged() -> str:
        return bearer(sign(attacker, claims(), kid=uuid.uuid4().hex))

    # Within the interval after the first fetch: no fetch at all.
    for _ in range(25):
        assert refused(verifier, forged()) == "unknown-kid"
    assert server.request_count() == 1

    # Next interval: a concurrent burst causes exactly one fetch.
    mono.advance(INTERVAL + 1)
    reasons: list[str] = []
    lock = threading.Lock()
    tokens = [forged() for _ in range(25)]
    barrier = threading.Barrier(len(tokens))

    def attack(header: str) -> None:
        barrier.wait()
        try:
            verifier.verify(header, AUD)
            reason = "accepted"
        except AuthError as err:
            reason = err.reason
        with lock:
            reasons.append(reason)

    threads = [threading.Thread(target=attack, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert reasons == ["unknown-kid"] * len(tokens)
    assert server.request_count() == 2


def test_failing_jwks_url_gives_jwks_unavailable(
    server: JwksServer, clock: FakeClock, mono: FakeClock, es_key: Key
) -> None:
    server.fail("/jwks.json", 500)
    client = TrustedClient(iss=ISS, jwks_url=server.url())
    verifier = make_verifier((client,), clock, mono)
    assert refused(verifier, bearer(sign(es_key, claims()))) == "jwks-unavailable"
    # The failure counts as an attempt: no retry until the interval has passed.
    assert refused(verifier, bearer(sign(es_key, claims()))) == "jwks-unavailable"
    assert server.request_count() == 1
    server.publish(jwks(es_key))
    mono.advance(INTERVAL + 1)
    assert verifier.verify(bearer(sign(es_key, claims())), AUD).iss == ISS


def test_jwks_url_that_is_not_json_gives_jwks_unavailable(
    server: JwksServer, clock: FakeClock, mono: FakeClock, es_key: Key
) -> None:
    server.publish({"not": "a jwks"}, path="/odd.json")
    client = TrustedClient(iss=ISS, jwks_url=server.url("/odd.json"))
    verifier = make_verifier((client,), clock, mono)
    assert refused(verifier, bearer(sign(es_key, claims()))) == "jwks-unavailable"


def test_unreachable_jwks_url_gives_jwks_unavailable(
    clock: FakeClock, mono: FakeClock, es_key: Key
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = TrustedClient(iss=ISS, jwks_url=f"http://127.0.0.1:{port}/jwks.json")
    verifier = make_verifier((client,), clock, mono, jwks_timeout_seconds=1.0)
    assert refused(verifier, bearer(sign(es_key, claims()))) == "jwks-unavailable"


def test_a_jwks_url_that_sends_a_byte_at_a_time_is_given_up_at_its_timeout(
    server: JwksServer, clock: FakeClock, mono: FakeClock, es_key: Key
) -> None:
    """Once each read waited for a full chunk: a trickling server held the key source
    (and every call and readiness probe behind its lock) for minutes."""
    server.publish(jwks(es_key))
    server.trickle("/jwks.json", 0.05)  # the document would take about 20 s
    client = TrustedClient(iss=ISS, jwks_url=server.url())
    verifier = make_verifier((client,), clock, mono, jwks_timeout_seconds=0.5)
    started = time.monotonic()
    assert refused(verifier, bearer(sign(es_key, claims()))) == "jwks-unavailable"
    assert time.monotonic() - started < 2.0


def test_readiness_does_not_wait_for_a_key_fetch_under_way(
    server: JwksServer, clock: FakeClock, mono: FakeClock, es_key: Key
) -> None:
    server.publish(jwks(es_key))
    server.trickle("/jwks.json", 0.05)
    client = TrustedClient(iss=ISS, jwks_url=server.url())
    verifier = make_verifier((client,), clock, mono, jwks_timeout_seconds=1.5)
    call = threading.Thread(target=refused, args=(verifier, bearer(sign(es_key, claims()))))
    call.start()
    while server.request_count() == 0:
        time.sleep(0.01)  # the call's fetch is under way
    started = time.monotonic()
    status = verifier.key_sources_status()
    waited = time.monotonic() - started
    call.join()
    assert status == {server.url(): "keys being fetched"}
    assert waited < 0.5


def test_symmetric_keys_in_a_jwks_are_never_used(
    server: JwksServer, clock: FakeClock, mono: FakeClock
) -> None:
    secret = b"shared-secret-for-test-only-0123456789"
    oct_jwk = {"kty": "oct", "kid": "oct-1", "k": b64url(secret)}
    server.publish({"keys": [oct_jwk]}, path="/oct.json")
    client = TrustedClient(iss=ISS, jwks_url=server.url("/oct.json"))
    verifier = make_verifier((client,), clock, mono)
    token = jwt.encode(claims(), secret, algorithm="HS256", headers={"kid": "oct-1"})
    assert refused(verifier, bearer(token)) == "alg-not-allowed"
    # Even with an allowed alg in the header the oct key cannot be selected.
    forged = hand_made({"alg": "RS384", "typ": "JWT", "kid": "oct-1"}, claims(), b"x" * 256)
    assert refused(verifier, bearer(forged)) == "unknown-kid"


def test_jwks_file_client(tmp_path: Path, clock: FakeClock, mono: FakeClock) -> None:
    key = rsa_key()
    path = tmp_path / "client-jwks.json"
    path.write_text(json.dumps(jwks(key)), encoding="utf-8")
    client = TrustedClient(iss=OTHER_ISS, jwks_file=str(path))
    verifier = make_verifier((client,), clock, mono)
    assert verifier.verify(bearer(sign(key, claims(iss=OTHER_ISS))), AUD).kid == key.kid
    assert refused(verifier, bearer(sign(ec_key(), claims(iss=OTHER_ISS)))) == "unknown-kid"


def test_missing_jwks_file_gives_jwks_unavailable(
    tmp_path: Path, clock: FakeClock, mono: FakeClock, es_key: Key
) -> None:
    client = TrustedClient(iss=ISS, jwks_file=str(tmp_path / "absent.json"))
    verifier = make_verifier((client,), clock, mono)
    assert refused(verifier, bearer(sign(es_key, claims()))) == "jwks-unavailable"


def test_weak_rsa_key_is_refused(server: JwksServer, clock: FakeClock, mono: FakeClock) -> None:
    weak = Key(rsa.generate_private_key(public_exponent=65537, key_size=1024), "RS384")
    server.publish(jwks(weak), path="/weak.json")
    client = TrustedClient(iss=ISS, jwks_url=server.url("/weak.json"))
    verifier = make_verifier((client,), clock, mono)
    with pytest.warns(InsecureKeyLengthWarning):
        token = sign(weak, claims())
    assert refused(verifier, bearer(token)) == "weak-key"


# --------------------------------------------------------------------------
# Header parsing


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing-token"),
        ("", "missing-token"),
        ("Basic dXNlcjpwYXNz", "malformed"),
        ("Bearer", "malformed"),
        ("Bearer a.b", "malformed"),
        ("Bearer not.a.jwt", "malformed"),
        ("Bearer a.b.c extra", "malformed"),
        ("Bearer " + "a" * 20_000 + ".b.c", "malformed"),
    ],
)
def test_malformed_authorization_headers_are_refused(
    verifier: JwtVerifier, header: str | None, reason: str
) -> None:
    assert refused(verifier, header) == reason


def test_bearer_scheme_is_case_insensitive(verifier: JwtVerifier, es_key: Key) -> None:
    assert verifier.verify(f"bearer {sign(es_key, claims())}", AUD).iss == ISS


# --------------------------------------------------------------------------
# WWW-Authenticate


def test_www_authenticate_gives_no_details() -> None:
    assert www_authenticate() == 'Bearer realm="cds-services"'
    assert www_authenticate("missing-token") == 'Bearer realm="cds-services"'
    value = www_authenticate("jku-not-allowed")
    assert value == 'Bearer realm="cds-services", error="invalid_token"'
    assert "jku" not in value


# --------------------------------------------------------------------------
# Configuration


def test_parse_trusted_clients_reads_json_config() -> None:
    data = json.loads(
        """[
          {"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks.json",
           "jku_allowlist": ["https://ehr.example.org/jwks2.json"], "tenant": "t-1"},
          {"iss": "https://other.example.org", "jwks_file": "keys/other.json"}
        ]"""
    )
    first, second = parse_trusted_clients(data)
    assert first.jku_allowlist == ("https://ehr.example.org/jwks2.json",)
    assert first.tenant == "t-1"
    assert second.jwks_file == "keys/other.json"
    assert second.jwks_url is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"iss": "x"}, "trusted_clients: must be a list"),
        (["x"], r"trusted_clients\[0\]: must be an object"),
        ([{"jwks_url": "https://a.example/j"}], r"trusted_clients\[0\]\.iss"),
        ([{"iss": "a"}], r"trusted_clients\[0\]\.jwks_url"),
        ([{"iss": "a", "jwks_url": "http://a.example/j"}], r"\[0\]\.jwks_url: must be an https"),
        ([{"iss": "a", "jku_alowlist": []}], r"\[0\]\.jku_alowlist: unknown field"),
        (
            [{"iss": "a", "jwks_url": "https://a.example/j", "jku_allowlist": "https://b/j"}],
            r"\[0\]\.jku_allowlist: must be a list",
        ),
        (
            [{"iss": "a", "jku_allowlist": ["https://a.example/j", "ftp://a.example/j"]}],
            r"\[0\]\.jku_allowlist\[1\]",
        ),
        (
            [{"iss": "a", "jwks_url": "https://a.example/j", "jwks_file": "k.json"}],
            r"\[0\]\.jwks_url/jwks_file",
        ),
        ([{"iss": "a", "jwks_file": "k.json", "tenant": 3}], r"\[0\]\.tenant"),
        (
            [{"iss": "a", "jwks_file": "k.json"}, {"iss": "a", "jwks_file": "j.json"}],
            r"trusted_clients\[1\]\.iss: duplicate",
        ),
    ],
)
def test_parse_trusted_clients_names_the_bad_field(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_trusted_clients(data)
