"""Clients' public key sets (JWKS): parsed strictly, fetched only from configured places."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from cds_service.auth.algorithms import _MAX_JWKS_BYTES, _PRIVATE_JWK_FIELDS
from cds_service.auth.errors import AuthError


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
