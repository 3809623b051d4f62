"""Which FHIR servers the trend app may be launched against, and which pages may frame it.

The app (``routes/trend_app.py``, source in smart_app/) is launched with ``iss`` (or, for
an open server, ``fhirServiceUrl``): the FHIR server whose authorization server it sends
the user to, trades the authorization code and PKCE verifier with, and reads with the
user's token. Followed blindly, ``/trend/launch?iss=<anyone>`` was an open redirect from
the service's origin that handed the code and the verifier to whoever the URL named, and
drew whatever "patient data" that server chose under the service's name. So a launch is
allowed only against:

- the trusted clients' ``fhir_servers`` (secure mode): the servers the EHRs this service
  trusts may name in ``fhirServer``; a client without that list adds none;
- the setting ``trend_fhir_servers``;
- in development mode, any server on the loopback interface (the project's FHIR test
  server, ``scripts/serve.sh``).

Servers are compared as the hook route compares ``fhirServer`` (``auth/clients.py``): the
origin the HTTP stack connects to, and the path without a trailing slash.

The app's pages may be shown in a frame by ``'self'`` and the EHR origins of the setting
``trend_frame_ancestors`` (and, in development mode, loopback pages): not by any https
page, which would let any site frame the launch. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from cds_service.fhir.urls import connect_origin, is_loopback_host, server_url_problem

BaseKey = tuple[str, str, int, str]
# Loopback pages may frame the app in development mode (local EHR simulators).
DEV_FRAME_ANCESTORS = ("http://127.0.0.1:*", "http://localhost:*")
# An origin as CSP writes it: scheme, host (a name, IPv4 or bracketed IPv6), optional port.
_ORIGIN = re.compile(r"^(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?$", re.IGNORECASE)


def base_key(url: str) -> BaseKey | None:
    """What two spellings of one FHIR base URL share, or None for a URL that is not a plain
    http(s) base URL (query, fragment, credentials, characters parsers read differently)."""
    if server_url_problem(url) is not None:
        return None
    origin = connect_origin(url)
    if origin is None:
        return None
    return (*origin, urlsplit(url).path.rstrip("/"))


@dataclass(frozen=True)
class TrendServers:
    """The FHIR servers the trend app may be launched against."""

    bases: frozenset[BaseKey]
    loopback: bool  # development mode: any server on the loopback interface as well

    def problem(self, url: str) -> str | None:
        """Why the app may not be launched against ``url`` (words for the refusal page), or
        None when it may."""
        key = base_key(url)
        if key is None:
            return (
                "it is not a plain http(s) base URL (no query, fragment, credentials or "
                "unusual characters)"
            )
        if key in self.bases or (self.loopback and is_loopback_host(key[1])):
            return None
        return "it is not one of the FHIR servers this service lets the trend app connect to"


def trend_servers(
    dev_mode: bool, extra: Iterable[str], client_servers: Iterable[Sequence[str] | None]
) -> TrendServers:
    """The allowlist: ``extra`` (the setting), every trusted client's ``fhir_servers`` and,
    in development mode, the loopback interface."""
    urls = [*extra, *(url for servers in client_servers for url in servers or ())]
    keys = frozenset(key for key in map(base_key, urls) if key is not None)
    return TrendServers(bases=keys, loopback=dev_mode)


def connect_sources(dev_mode: bool, servers: TrendServers) -> str:
    """The CSP ``connect-src`` sources of the app's pages. The app reaches a FHIR server
    and its token endpoint that it learns only at launch, so any https origin; in
    development mode any http origin as well (the loopback interface included: the
    project's FHIR test server). Outside it, of plain http only the origins of the listed
    servers (``http`` is allowed there only on loopback), not the loopback interface at
    large: should a script ever be injected into the page, it could otherwise reach any
    service on the clinician's workstation (an attack review)."""
    if dev_mode:
        return "'self' https: http://127.0.0.1:* http://localhost:* http:"
    listed = {
        f"http://{f'[{host}]' if ':' in host else host}:{port}"
        for scheme, host, port, _ in servers.bases
        if scheme == "http"
    }
    return " ".join(["'self'", "https:", *sorted(listed)])


def frame_ancestors(dev_mode: bool, origins: Iterable[str]) -> str:
    """The CSP ``frame-ancestors`` sources of the app's pages."""
    return " ".join(["'self'", *origins, *(DEV_FRAME_ANCESTORS if dev_mode else ())])


def trend_setting_problems(servers: Sequence[str], ancestors: Sequence[str]) -> list[str]:
    """What is wrong with the settings ``trend_fhir_servers`` and ``trend_frame_ancestors``."""
    problems: list[str] = []
    for i, url in enumerate(servers):
        key = base_key(url)
        if key is None:
            problems.append(
                f"trend_fhir_servers[{i}] must be a plain http(s) base URL without query, "
                f"fragment or credentials, got {url!r}"
            )
        elif key[0] != "https" and not is_loopback_host(key[1]):
            # the app sends the SMART token to it, as the service's own FHIR servers
            problems.append(
                f"trend_fhir_servers[{i}] must be https (http only on loopback), got {url!r}"
            )
    for i, origin in enumerate(ancestors):
        match = _ORIGIN.match(origin)
        if match is None or (match[3] is not None and not 0 < int(match[3]) < 65536):
            problems.append(
                f"trend_frame_ancestors[{i}] must be an origin such as "
                f"https://ehr.example.org (scheme, host, optional port; no path), got {origin!r}"
            )
        elif match[1].lower() != "https" and not is_loopback_host(match[2]):
            problems.append(
                f"trend_frame_ancestors[{i}] must be https (http only on loopback), got {origin!r}"
            )
    return problems
