"""The JWS algorithms a CDS client may sign with: asymmetric only (CDS Hooks 2.0)."""

from __future__ import annotations

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
