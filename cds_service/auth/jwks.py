"""Clients' public key sets (JWKS): parsed strictly, fetched only from configured places."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from cds_service.auth.algorithms import _MAX_JWKS_BYTES, _PRIVATE_JWK_FIELDS
from cds_service.auth.clients import _check_url
from cds_service.auth.errors import AuthError


def _parse_jwks(raw: bytes) -> dict[str, list[dict[str, Any]]]:
    """Public signing keys by ``kid``; anything else in the set is skipped.

    Symmetric (``oct``) keys, keys carrying private material, keys without a
    ``kid`` and keys not meant for signatures are dropped, so they can never
    be selected. One ``kid`` may name keys of different types (RFC 7517 section
    4.5: an EC and an RSA key, say): each is kept, in order, for the token's
    ``alg`` to choose from (an integration review found only the first ever used).
    """
    data = json.loads(raw)
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise FetchError("not a JWK Set")
    keys: dict[str, list[dict[str, Any]]] = {}
    for jwk in data["keys"]:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        if jwk.get("kty") not in ("EC", "RSA"):
            continue
        if _PRIVATE_JWK_FIELDS & jwk.keys():
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        keys.setdefault(kid, []).append(jwk)
    return keys


def failure_of(exc: BaseException) -> str:
    """What went wrong with a fetch, in words fit for a log line: our own checks say it
    ("HTTP 404", "JWKS too large"), anything else by its kind (``ConnectTimeout``);
    never an exception's own text, which may quote what was received."""
    if isinstance(exc, FetchError):
        return str(exc)
    if isinstance(exc, json.JSONDecodeError):
        return "not JSON"
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    return type(exc).__name__


class FetchError(ValueError):
    """A fetch answered, but not with what we can use; the message is ours and safe."""


@contextmanager
def _unless_busy(lock: threading.Lock) -> Iterator[bool]:
    """Hold ``lock`` for the block when it is free (True); when another thread holds it
    (a fetch under way), False at once: readiness reports that rather than wait."""
    if not lock.acquire(blocking=False):
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


class _KeySource:
    """One place keys come from (URL or file), with its cache and rate limit.

    ``where`` names it in log lines and readiness (``jwks_url=...``/``jwks_file=...``);
    the last failure is kept so an operator is told the HTTP status or error.
    """

    def __init__(self, fetch: Callable[[], bytes], kind: str = "url", where: str = "") -> None:
        self._fetch = fetch
        self.kind = kind
        self.where = where
        self._lock = threading.Lock()
        self._keys: dict[str, list[dict[str, Any]]] | None = None
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self.last_error: str | None = None

    def _unavailable(self) -> AuthError:
        return AuthError(
            "jwks-unavailable",
            **{f"jwks_{self.kind}": self.where, "jwks_error": self.last_error or "not fetched"},
        )

    def _load(self, now: float) -> None:
        """Fetch now; on failure keep what we had and remember why (raises nothing)."""
        self._attempted_at = now
        try:
            self._keys = _parse_jwks(self._fetch())
            self._loaded_at = now
            self.last_error = None
        except Exception as exc:
            # Any failure (network, status, JSON, size) is an outage of this source,
            # never a leaked exception.
            self.last_error = failure_of(exc)

    def status(self, now: float, min_interval: float) -> str | None:
        """None when keys are at hand, else why not. Fetches when it never has (at most
        once per ``min_interval``): a readiness probe learns of a broken URL before the
        first call does, without hammering it. Never waits for a fetch under way on
        another thread: a slow key server must not hold readiness probes."""
        with _unless_busy(self._lock) as held:
            if not held:
                return None if self._keys is not None else "keys being fetched"
            if self._keys is None and (
                self._attempted_at is None or not (0 <= now - self._attempted_at < min_interval)
            ):
                self._load(now)
            if self._keys is None:
                return self.last_error or "not fetched"
            if self.last_error is not None:
                return f"{self.last_error} (keys fetched earlier still in use)"
            return None

    def get(
        self, kid: str, now: float, min_interval: float, max_age: float | None
    ) -> list[dict[str, Any]]:
        """The keys ``kid`` names (one or more, of different types), fetched again when
        the cache is too old or does not hold it, at most once per ``min_interval``."""
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
                    self._load(now)
                    # Keep any keys we had (availability); a kid we cannot resolve
                    # after a failed fetch is reported as an outage.
                    if self.last_error is not None and (
                        self._keys is None or kid not in self._keys
                    ):
                        raise self._unavailable()
            if self._keys is None:
                raise self._unavailable()
            named = self._keys.get(kid)
            if named is None:
                raise AuthError("unknown-kid", kid=kid, **{f"jwks_{self.kind}": self.where})
            return named


def _read_file(path: str) -> bytes:
    with Path(path).open("rb") as fh:
        raw = fh.read(_MAX_JWKS_BYTES + 1)
    if len(raw) > _MAX_JWKS_BYTES:
        raise FetchError("JWKS file too large")
    return raw


def _fetch_url(session: requests.Session, url: str, timeout: float) -> bytes:
    """GET a JWKS: no redirects (the allowlist names exact URLs), bounded size and time.

    The body is read as it comes (``read1``: whatever has arrived), so the deadline is
    checked after every read: a server that sends a byte a second is given up after
    ``timeout``, not after the whole document (a read waiting for a full chunk once
    held a key source for minutes). One read that gets nothing waits at most
    ``timeout`` more, so a fetch ends within about twice ``timeout``."""
    deadline = time.monotonic() + timeout
    with session.get(
        url,
        timeout=timeout,
        allow_redirects=False,
        stream=True,
        headers={"Accept": "application/json"},
    ) as resp:
        if resp.status_code != 200:
            raise FetchError(f"HTTP {resp.status_code}")
        body = bytearray()
        while chunk := resp.raw.read1(16_384, decode_content=True):
            body.extend(chunk)
            if len(body) > _MAX_JWKS_BYTES:
                raise FetchError(f"larger than {_MAX_JWKS_BYTES} bytes")
            if time.monotonic() > deadline:
                raise FetchError(f"slower than {timeout:g} s")
        return bytes(body)


# Bounds on a published jku list (Oracle Health's model): it is fetched from the network.
MAX_JKU_LIST_ENTRIES = 100


def _parse_jku_list(raw: bytes) -> frozenset[str]:
    """The allowed ``jku`` values of a published list: a JSON array of URLs, each https
    (http on loopback only); entries that are not are skipped, never trusted."""
    data = json.loads(raw)
    if not isinstance(data, list):
        raise FetchError("not a JSON array of jku URLs")
    if len(data) > MAX_JKU_LIST_ENTRIES:
        raise FetchError(f"more than {MAX_JKU_LIST_ENTRIES} entries")
    allowed: set[str] = set()
    for url in data:
        try:
            _check_url(url, "jku")
        except ValueError:
            continue
        allowed.add(url)
    return frozenset(allowed)


class JkuList:
    """The ``jku`` values a client may name, as it publishes them at a URL (Oracle Health
    publishes its list so that it can rotate keys without the service being redeployed).

    Cached like a key set: re-read when older than ``max_age`` or when a token names a
    ``jku`` not on it, at most once per ``min_interval``; bounded in bytes and entries.
    A failed re-read keeps the list read before (availability, as for keys).
    """

    def __init__(self, fetch: Callable[[], bytes], url: str) -> None:
        self._fetch = fetch
        self.url = url
        self._lock = threading.Lock()
        self._allowed: frozenset[str] | None = None
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self.last_error: str | None = None

    def _load(self, now: float) -> None:
        self._attempted_at = now
        try:
            self._allowed = _parse_jku_list(self._fetch())
            self._loaded_at = now
            self.last_error = None
        except Exception as exc:
            self.last_error = failure_of(exc)

    def listed(self) -> list[str]:
        """The ``jku`` values on the list as last read (none before it was read), for a
        refusal's log line."""
        with self._lock:
            return sorted(self._allowed or ())

    def _may_fetch(self, now: float, min_interval: float) -> bool:
        return self._attempted_at is None or not (0 <= now - self._attempted_at < min_interval)

    def allows(self, jku: str, now: float, min_interval: float, max_age: float | None) -> bool:
        """Whether ``jku`` is on the list; AuthError when the list was never had."""
        with self._lock:
            fresh = self._loaded_at is not None and (
                max_age is None or now - self._loaded_at < max_age
            )
            known = self._allowed is not None and jku in self._allowed
            if not (fresh and known) and self._may_fetch(now, min_interval):
                self._load(now)
            if self._allowed is None:
                raise AuthError(
                    "jku-list-unavailable",
                    jku_list_url=self.url,
                    jku_list_error=self.last_error or "not fetched",
                )
            return jku in self._allowed

    def status(self, now: float, min_interval: float) -> str | None:
        """None when the list is at hand, else why not (fetching when it never has);
        never waits for a fetch under way on another thread."""
        with _unless_busy(self._lock) as held:
            if not held:
                return None if self._allowed is not None else "list being fetched"
            if self._allowed is None and self._may_fetch(now, min_interval):
                self._load(now)
            if self._allowed is None:
                return self.last_error or "not fetched"
            if self.last_error is not None:
                return f"{self.last_error} (the list fetched earlier still in use)"
            return None
