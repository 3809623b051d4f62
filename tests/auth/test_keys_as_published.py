"""Keys as EHRs publish them, and refusals that say what differed.

Real keys, a real JWKS server on 127.0.0.1; only the clocks are fakes (see
test_verifier.py, whose helpers these tests share).
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cds_service.auth import AuthError, JwtVerifier, TrustedClient, parse_trusted_clients
from cds_service.auth.jwks import MAX_JKU_LIST_ENTRIES
from cds_service.logs import shown
from tests.auth.test_verifier import (
    AUD,
    INTERVAL,
    ISS,
    FakeClock,
    Key,
    bearer,
    claims,
    clock,
    ec_key,
    es_key,
    jwks,
    make_verifier,
    mono,
    refused,
    rs_key,
    rsa_key,
    server,
    sign,
)
from tests.support.jwks_server import JwksServer

# The fixtures this module shares with test_verifier.py (imported, so pytest sees them).
FIXTURES = (clock, es_key, mono, rs_key, server)


def error_of(verifier: JwtVerifier, token: str, audience: str = AUD) -> AuthError:
    with pytest.raises(AuthError) as info:
        verifier.verify(bearer(token), audience)
    return info.value


def test_a_jku_equal_to_the_clients_jwks_url_is_accepted(
    server: JwksServer, clock: FakeClock, mono: FakeClock, rs_key: Key
) -> None:
    """Epic sends the URL its keys are published at as jku; the entry names it as jwks_url."""
    verifier = make_verifier((TrustedClient(iss=ISS, jwks_url=server.url()),), clock, mono)
    token = sign(rs_key, claims(), jku=server.url())
    assert verifier.verify(bearer(token), AUD).iss == ISS
    # The same URL in another spelling is another URL: still refused, and said so.
    err = error_of(verifier, sign(rs_key, claims(), jku=server.url() + "?"))
    assert err.reason == "jku-not-allowed"
    assert f'jku_allowed=["{server.url()}"]' in err.details()


def test_the_published_jku_list_is_fetched_cached_and_reread_for_a_new_jku(
    server: JwksServer, clock: FakeClock, mono: FakeClock, es_key: Key
) -> None:
    server.publish([server.url()], "/list.json")
    client = TrustedClient(iss=ISS, jku_list_url=server.url("/list.json"))
    verifier = make_verifier((client,), clock, mono)
    assert verifier.verify(bearer(sign(es_key, claims(), jku=server.url())), AUD).iss == ISS
    assert verifier.verify(bearer(sign(es_key, claims(), jku=server.url())), AUD).iss == ISS
    assert server.request_count("/list.json") == 1  # cached

    rotated = ec_key()
    server.publish(jwks(rotated), "/k2.json")
    server.publish([server.url(), server.url("/k2.json")], "/list.json")
    token = sign(rotated, claims(), jku=server.url("/k2.json"))
    # Within the refresh interval a new jku cannot make it fetch again (no hammering) ...
    err = error_of(verifier, token)
    assert err.reason == "jku-not-allowed"
    # ... and the refusal says what the published list held when it was read
    assert f'jku_listed=["{server.url()}"]' in err.details()
    assert server.request_count("/list.json") == 1
    # ... after it, the list is re-read and the new jku accepted without a restart.
    mono.advance(INTERVAL)
    assert verifier.verify(bearer(sign(rotated, claims(), jku=server.url("/k2.json"))), AUD)
    assert server.request_count("/list.json") == 2


def test_a_jku_list_is_bounded_and_keeps_only_https_urls(
    server: JwksServer, clock: FakeClock, mono: FakeClock, es_key: Key
) -> None:
    server.publish(["http://keys.example.org/jwks.json", server.url()], "/list.json")
    verifier = make_verifier(
        (TrustedClient(iss=ISS, jku_list_url=server.url("/list.json")),), clock, mono
    )
    token = sign(es_key, claims(), jku="http://keys.example.org/jwks.json")
    assert refused(verifier, bearer(token)) == "jku-not-allowed"

    too_long = [f"https://keys.example.org/{i}.json" for i in range(MAX_JKU_LIST_ENTRIES + 1)]
    server.publish(too_long, "/long.json")
    verifier = make_verifier(
        (TrustedClient(iss=ISS, jku_list_url=server.url("/long.json")),), clock, mono
    )
    err = error_of(verifier, sign(es_key, claims(), jku="https://keys.example.org/1.json"))
    assert err.reason == "jku-list-unavailable"
    assert f"more than {MAX_JKU_LIST_ENTRIES} entries" in err.details()
    assert verifier.key_sources_status() == {
        server.url("/long.json"): f"more than {MAX_JKU_LIST_ENTRIES} entries"
    }


def test_refusals_carry_the_values_that_differed(
    server: JwksServer, clock: FakeClock, mono: FakeClock, es_key: Key
) -> None:
    client = TrustedClient(iss=ISS, jwks_url=server.url(), tenant="t-1")
    verifier = make_verifier((client,), clock, mono)
    err = error_of(verifier, sign(es_key, claims(aud=AUD + "/", tenant="t-1")))
    assert err.values == {"aud_presented": AUD + "/", "aud_expected": AUD}
    err = error_of(verifier, sign(es_key, claims()))
    assert err.reason == "missing-claim:tenant"
    assert err.values["tenant_expected"] == "t-1"
    err = error_of(verifier, sign(es_key, claims(iss="https://unknown.example")))
    assert err.values == {"iss": "https://unknown.example"}
    err = error_of(verifier, sign(es_key, claims(tenant="t-1", nbf=int(clock.now) + 300)))
    assert err.reason == "not-yet-valid"
    assert err.values["leeway_s"] == 30

    server.fail("/jwks.json", 502)
    other = make_verifier((TrustedClient(iss=ISS, jwks_url=server.url()),), clock, mono)
    err = error_of(other, sign(es_key, claims()))
    assert err.values == {"jwks_url": server.url(), "jwks_error": "HTTP 502"}
    assert other.key_sources_status() == {server.url(): "HTTP 502"}


def test_a_jku_list_url_is_a_field_of_the_clients_file() -> None:
    (client,) = parse_trusted_clients(
        [{"iss": ISS, "jku_list_url": "https://ehr.example.org/jku-list.json"}]
    )
    assert client.jku_list_url == "https://ehr.example.org/jku-list.json"
    with pytest.raises(ValueError, match=r"\[0\]\.jku_list_url: must be an https URL"):
        parse_trusted_clients([{"iss": ISS, "jku_list_url": "http://ehr.example.org/l.json"}])


def test_shown_quotes_escapes_and_bounds() -> None:
    assert shown("a b=c") == '"a b=c"'
    assert shown('x"\ny') == '"x\\"\\ny"'
    assert "\u2028" not in shown("a\u2028b")
    assert shown("z" * 300) == '"' + "z" * 200 + '"...(300 chars)'
    assert shown(["u", 1]) == '["u", 1]'
    assert shown(30) == "30"


def test_the_example_clients_file_in_the_docs_is_one_the_service_reads() -> None:
    from pathlib import Path

    from cds_service.auth import load_trusted_clients

    example = Path(__file__).resolve().parents[2] / "docs/examples/trusted-clients.example.json"
    clients = load_trusted_clients(str(example))
    assert {c.jku_list_url is not None for c in clients} == {True, False}


def test_one_kid_may_name_an_ec_and_an_rsa_key_and_the_alg_chooses(
    server: JwksServer, clock: FakeClock, mono: FakeClock
) -> None:
    """RFC 7517 section 4.5 lets keys of different types share a kid; an integration
    review published an EC and an RSA key as "shared" and every RS384 token was refused
    as a key mismatch, the first key alone being kept."""
    ec_shared, rsa_shared = ec_key(), rsa_key()
    ec_shared.kid = rsa_shared.kid = "shared"
    ec_shared.jwk["kid"] = rsa_shared.jwk["kid"] = "shared"
    server.publish(jwks(ec_shared, rsa_shared))
    verifier = make_verifier((TrustedClient(iss=ISS, jwks_url=server.url()),), clock, mono)
    for key in (ec_shared, rsa_shared):
        assert verifier.verify(bearer(sign(key, claims())), AUD).iss == ISS, key.alg
    # an alg neither key is for is still a mismatch, shown with the first key's facts
    stranger = Key(ec.generate_private_key(ec.SECP256R1()), "ES256")
    stranger.kid = "shared"
    err = error_of(verifier, sign(stranger, claims()))
    assert err.reason == "key-mismatch"
    assert 'key_kty="EC"' in err.details() and 'key_alg="ES384"' in err.details()


def test_one_kid_may_name_two_rsa_keys_and_the_signature_chooses(
    server: JwksServer, clock: FakeClock, mono: FakeClock
) -> None:
    """The re-check: a token signed with the second of two RSA keys under one kid was
    refused, and a malformed first key hid a valid second one."""
    first, second = rsa_key(), rsa_key()
    for key in (first, second):
        key.kid = key.jwk["kid"] = "shared"
    broken = {**first.jwk, "n": "AQAB"}  # no usable RSA modulus
    for published in ([first.jwk, second.jwk], [broken, second.jwk]):
        server.publish({"keys": published})
        verifier = make_verifier((TrustedClient(iss=ISS, jwks_url=server.url()),), clock, mono)
        assert verifier.verify(bearer(sign(second, claims())), AUD).iss == ISS
    # a token neither key signed is still a bad signature
    stranger = rsa_key()
    stranger.kid = "shared"
    server.publish(jwks(first, second))
    verifier = make_verifier((TrustedClient(iss=ISS, jwks_url=server.url()),), clock, mono)
    assert error_of(verifier, sign(stranger, claims())).reason == "bad-signature"
