"""Who may call: verification of the JWT bearer token CDS clients send on every call.

The package follows the questions in turn: which clients are trusted (``clients``),
where their keys come from (``jwks``), whether a token holds (``verifier``), and how a
refusal is said (``errors``). The replay caches live with the other stores
(``cds_service.stores.replay``); turning a request into a verified client is the web
layer's job (``cds_service.routes.entrance``).


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

from cds_service.auth.algorithms import ALLOWED_ALGORITHMS
from cds_service.auth.clients import (
    AuthConfig,
    TrustedClient,
    load_trusted_clients,
    parse_trusted_clients,
)
from cds_service.auth.errors import REALM, AuthError, www_authenticate
from cds_service.auth.verifier import JwtVerifier, VerifiedClient

__all__ = [
    "ALLOWED_ALGORITHMS",
    "REALM",
    "AuthConfig",
    "AuthError",
    "JwtVerifier",
    "TrustedClient",
    "VerifiedClient",
    "load_trusted_clients",
    "parse_trusted_clients",
    "www_authenticate",
]
