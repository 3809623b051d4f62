"""Which CDS clients are trusted, and with what: the trusted-clients file and its policy.

A client is an issuer (``iss``) with the places its public keys may come from and,
optionally, the FHIR servers it may name. The file is read once at startup; a mistake
in it stops the service with a message naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cds_service.auth.algorithms import ALLOWED_ALGORITHMS
from cds_service.fhir.urls import (  # the parser that connects
    connect_origin,
    has_dot_segments,
    is_loopback_host,
    may_carry_token,
    private_host,
)


def _check_url(url: Any, name: str) -> None:
    """Key URLs must be https; plain http is allowed only on loopback (tests, sidecars)."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"{name}: must be a non-empty string")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return
    raise ValueError(f"{name}: must be an https URL (http only on loopback)")


@dataclass(frozen=True)
class TrustedClient:
    """One CDS client we accept tokens from.

    Keys come from ``jwks_url`` or ``jwks_file`` (not both), or from a header
    ``jku`` that is allowed: listed in ``jku_allowlist`` (exact string match), equal to
    ``jwks_url`` (Epic sends the URL it publishes its keys at as ``jku``), or on the list
    the client publishes at ``jku_list_url`` (Oracle Health's model: a JSON array of
    URLs, fetched and cached, so its keys rotate without a restart here). A client
    with only an allowlist or a list URL must send ``jku`` on every token.
    """

    iss: str
    jwks_url: str | None = None
    jwks_file: str | None = None
    jku_allowlist: tuple[str, ...] = ()
    jku_list_url: str | None = None
    tenant: str | None = None
    # FHIR server base URLs this client may name in fhirServer; None: any public one (not
    # advised, the EHR's token goes wherever fhirServer points).
    fhir_servers: tuple[str, ...] | None = None

    def fhir_server_refusal(self, url: str) -> str | None:
        """Why this client may not name ``url`` as its fhirServer, or None when it may.

        With ``fhir_servers``: ``url`` must be one of them (scheme and host
        case-insensitive, a trailing slash ignored; the list itself is https, or http on
        loopback). Without: any https server but one written as a loopback, private or
        link-local address (``private_host``), which the EHR's token must not reach unless
        a list names it; never plain http, which would carry the token unencrypted."""
        if self.fhir_servers is not None:
            wanted = _base_key(url)
            if wanted is not None and wanted in {_base_key(u) for u in self.fhir_servers}:
                return None
            return "not in this client's fhir_servers allowlist"
        origin = connect_origin(url)
        if origin is not None and private_host(origin[1]):
            return (
                "a loopback, private or link-local address: this client may name one only "
                "when its entry in trusted_clients_file lists it in fhir_servers"
            )
        if origin is not None and origin[0] != "https":
            return (
                "plain http: the EHR's access token and the patient's data would travel "
                "unencrypted; name an https server"
            )
        return None

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
        if self.jku_list_url is not None:
            _check_url(self.jku_list_url, "jku_list_url")
        if (
            self.jwks_url is None
            and self.jwks_file is None
            and not self.jku_allowlist
            and self.jku_list_url is None
        ):
            raise ValueError(
                "jwks_url: one of jwks_url, jwks_file, jku_allowlist or jku_list_url is required"
            )
        if self.tenant is not None and (not isinstance(self.tenant, str) or not self.tenant):
            raise ValueError("tenant: must be a non-empty string when given")
        for i, url in enumerate(self.fhir_servers or ()):
            key = _base_key(url) if isinstance(url, str) else None
            if key is None:
                raise ValueError(
                    f"fhir_servers[{i}]: must be a plain http(s) base URL without query, "
                    "fragment or credentials"
                )
            if has_dot_segments(urlsplit(url).path):
                raise ValueError(
                    f"fhir_servers[{i}]: must not have '.' or '..' path segments (no call "
                    "could name it)"
                )
            if not may_carry_token(key[:3]):
                raise ValueError(
                    f"fhir_servers[{i}]: must be an https URL (http only on loopback): the "
                    "EHR's access token is sent to it"
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


_CLIENT_FIELDS = (
    "iss",
    "jwks_url",
    "jwks_file",
    "jku_allowlist",
    "jku_list_url",
    "tenant",
    "fhir_servers",
)


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
        for name in ("iss", "jwks_url", "jwks_file", "jku_list_url", "tenant"):
            value = item.get(name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{where}.{name}: must be a string")
        try:
            client = TrustedClient(
                iss=item.get("iss", ""),
                jwks_url=item.get("jwks_url"),
                jwks_file=item.get("jwks_file"),
                jku_allowlist=tuple(allow),
                jku_list_url=item.get("jku_list_url"),
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
    jwks_max_age_seconds: float | None = 300.0
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


# The CDS Hooks sandbox publishes its signing key: anyone can mint its tokens.
PUBLIC_KEY_ISSUERS = frozenset({"https://sandbox.cds-hooks.org"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origins(url: str) -> set[tuple[str, str, int]]:
    """(scheme, host, port) as each parser reads ``url`` (urllib3's, which connects, and
    ``urlsplit``): scheme and host in lower case, without a trailing dot, and the
    default port filled in, so that the spellings of one origin compare equal."""
    found: set[tuple[str, str, int]] = set()
    origin = connect_origin(url)
    if origin is not None:
        found.add((origin[0], origin[1].rstrip("."), origin[2]))
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return found
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme in _DEFAULT_PORTS and host:
        found.add((scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]))
    return found


_PUBLIC_ORIGINS = frozenset(o for iss in PUBLIC_KEY_ISSUERS for o in _origins(iss))
_PUBLIC_HOSTS = frozenset(host for _, host, _ in _PUBLIC_ORIGINS)


def _on_public_host(url: str) -> bool:
    return any(
        host == public or host.endswith("." + public)
        for _, host, _ in _origins(url)
        for public in _PUBLIC_HOSTS
    )


def public_key_problem(client: TrustedClient) -> str | None:
    """Why ``client`` would take tokens anyone can mint, or None: its ``iss`` is an
    issuer whose private key is published (the CDS Hooks sandbox's), in any spelling of
    its origin (``HTTPS://``, a trailing dot, ``:443``), or a key source (``jwks_url``,
    ``jku_allowlist``, ``jku_list_url``) is on that issuer's host, whatever ``iss`` it
    is listed under: its published key would then sign for that issuer."""
    if _origins(client.iss) & _PUBLIC_ORIGINS:
        return f"{client.iss} signs with a private key that is public"
    sources = [("jwks_url", client.jwks_url), ("jku_list_url", client.jku_list_url)]
    sources += [(f"jku_allowlist[{i}]", url) for i, url in enumerate(client.jku_allowlist)]
    for name, url in sources:
        if url is not None and _on_public_host(url):
            return (
                f"{client.iss}: {name} {url} is on a host whose signing key is public, so "
                "anyone could sign as this issuer"
            )
    return None


def load_trusted_clients(path: str | None) -> tuple[TrustedClient, ...]:
    """The trusted-clients file, parsed and checked against the issuer policy.

    No file means no trusted client (every call is refused). An issuer whose private
    key is public (the CDS Hooks sandbox's), or an entry taking keys from its host, can
    never be trusted. ValueError says what is wrong and where.
    """
    data: Any = []
    if path:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"trusted_clients_file {path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"trusted_clients_file {path} is not valid JSON: {exc}") from None
    try:
        clients = parse_trusted_clients(data)
    except ValueError as exc:
        raise ValueError(f"trusted_clients_file: {exc}") from None
    for i, client in enumerate(clients):
        problem = public_key_problem(client)
        if problem is not None:
            raise ValueError(
                f"trusted_clients_file: trusted_clients[{i}]: {problem}; it can never be "
                "trusted outside development mode (use SPINE_CDS_DEV_MODE=true)"
            )
    return clients
