"""Which URLs the EHR's access token may be sent to: judged by the parser that connects.

A paging link like ``http://b:1\\@a:2/`` reads as host ``a`` to ``urlsplit`` but
connects to ``b``: so the origin is taken from urllib3's parser (the one requests
connects with), ``urlsplit`` must agree, and a URL that two parsers could read
differently (a backslash, userinfo, percent-escapes or non-ASCII in the authority,
whitespace or control characters anywhere) is never contacted at all. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from urllib.parse import unquote, urlsplit

import urllib3.exceptions
from urllib3.util import parse_url


def server_url_problem(fhir_server: object) -> str | None:
    """Why ``fhirServer`` cannot be used, or None. Only plain http(s) base URLs are accepted."""
    if not isinstance(fhir_server, str) or not fhir_server:
        return "fhirServer is missing"
    try:
        parts = urlsplit(fhir_server)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return "fhirServer is not a valid URL"
    del port
    if parts.scheme.lower() not in {"http", "https"}:
        return "fhirServer is not an http(s) URL"
    if not parts.hostname:
        return "fhirServer has no host"
    if parts.username is not None or parts.password is not None:
        return "fhirServer must not carry credentials"
    if parts.query or parts.fragment:
        return "fhirServer must be a base URL without query or fragment"
    if has_dot_segments(parts.path):
        return "fhirServer must not have '.' or '..' path segments"
    if connect_origin(fhir_server) is None:
        return "fhirServer is not a plain http(s) URL (unsafe characters in it)"
    return None


def has_dot_segments(path: str) -> bool:
    """Whether ``path`` has a ``.`` or ``..`` segment in any spelling some server or proxy
    may resolve: plain, percent-escaped (``%2e%2e``, ``..%2f``), escaped twice or more
    (``%252e%252e``), with a path parameter (Tomcat reads ``..;/`` and ``.;x`` as dot
    segments), behind a backslash, or in compatibility forms that NFKC folds to dots
    (fullwidth full stops, U+FF0E). A NUL in the decoded path counts too (servers cut
    there), and so do escapes that are not UTF-8 (overlong forms such as ``%c0%ae``,
    which legacy decoders read as ``.``, and ``%c0%af`` as ``/``). The HTTP stack removes
    plain ones before it sends, and a server may resolve the others: either way the
    request leaves the path it seemed to be under (an attack suite sent the token to
    ``/fhir/..;/admin``), so such a path is never judged to be under a base."""
    decoded = path
    try:
        for _ in range(_DECODE_ROUNDS):
            once = unquote(decoded, errors="strict")
            if once == decoded:
                break
            decoded = once
        else:
            if unquote(decoded, errors="strict") != decoded:
                return True  # still escaped after the rounds: not judged safe
    except UnicodeDecodeError:
        return True  # not UTF-8: a legacy decoder may read dots or slashes in it
    if "\x00" in decoded:
        return True
    # NFKC first, so that fullwidth slashes, backslashes and semicolons separate too
    folded = unicodedata.normalize("NFKC", decoded).replace("\\", "/")
    return any(segment.split(";", 1)[0] in {".", ".."} for segment in folded.split("/"))


_DECODE_ROUNDS = 4


Origin = tuple[str, str, int]
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Anything but printable ASCII other than backslash: whitespace and controls are dropped
# or kept by different parsers, a backslash ends the authority for some and not others,
# and non-ASCII hosts are IDNA-mapped by some.
_UNSAFE_URL = re.compile(r"[^\x21-\x5b\x5d-\x7e]")


def connect_origin(url: str) -> Origin | None:
    """(scheme, host, port) that the HTTP stack will really connect to for ``url``, or None
    when ``url`` is not one to send a token to: not absolute http(s), userinfo, characters
    that parsers treat differently, or ``urlsplit`` and urllib3 disagree about the origin.

    Hosts are compared as written (lower case, brackets off): ``127.1`` and ``127.0.0.1``
    are different origins here, which errs on the side of not sending the token.
    """
    if not isinstance(url, str) or _UNSAFE_URL.search(url):
        return None
    try:
        split = urlsplit(url)
        split_port = split.port
        parsed = parse_url(url)
    except (ValueError, urllib3.exceptions.LocationParseError):
        return None
    scheme = (parsed.scheme or "").lower()
    if scheme not in _DEFAULT_PORTS or split.scheme.lower() != scheme:
        return None
    if "@" in split.netloc or "%" in split.netloc or parsed.auth is not None:
        return None
    host = (parsed.host or "").lower().strip("[]")
    if not host or host != (split.hostname or "").lower():
        return None
    port = _DEFAULT_PORTS[scheme] if parsed.port is None else parsed.port
    if port != (_DEFAULT_PORTS[scheme] if split_port is None else split_port):
        return None
    return scheme, host, port


def is_loopback_host(host: str | None) -> bool:
    """``localhost`` or a loopback address as written (``127.1`` is not taken for one):
    where plain http is allowed for tests and sidecars."""
    if not host:
        return False
    name = host.lower().strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def private_host(host: str) -> bool:
    """Whether ``host`` (as ``connect_origin`` gives it) is written as an address a
    request from this service should not reach unless configured: any address that is not
    global (loopback, private, link-local such as cloud metadata, shared, unspecified,
    reserved) or is multicast, in every spelling the resolver accepts ("127.1",
    "2130706433", "0x7f.0.0.1", "::ffff:127.0.0.1"), and "localhost" and names under it.
    Other names are not resolved (no I/O): one that points to a private address is kept
    out only by a client's ``fhir_servers`` list."""
    name = host.lower().strip("[]").rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
            name.split("%", 1)[0]
        )
    except ValueError:
        try:  # the forms inet_aton (and so the resolver) reads as IPv4
            address = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return False
    if isinstance(address, ipaddress.IPv6Address):
        # site-local fec0::/10 (deprecated by RFC 3879, still routed inside some sites):
        # Python 3.11 counts it global (an attack review)
        if address in _NAT64_LOCAL or address.is_site_local:
            return True
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return not embedded.is_global or embedded.is_multicast
    return not address.is_global or address.is_multicast


# NAT64's well-known prefix (RFC 6052): the last 32 bits are the IPv4 address a translator
# connects to. The local-use prefix (RFC 8215) is a site's own translator: never global.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries and may reach: IPv4-mapped (``::ffff:a.b.c.d``),
    IPv4-compatible (``::a.b.c.d``, deprecated but still parsed), NAT64, 6to4 and Teredo's
    client; None for any other. An integration tester found ``[::127.0.0.1]`` and
    ``[64:ff9b::7f00:1]`` taken for global addresses."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    packed = address.packed
    if packed[:12] == bytes(12) and int(address) > 1:  # not :: nor ::1 (checked as IPv6)
        return ipaddress.IPv4Address(packed[12:])
    if address in _NAT64:
        return ipaddress.IPv4Address(packed[12:])
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def may_carry_token(origin: Origin | None) -> bool:
    """An origin (``connect_origin``) a bearer token may be sent to: https, or plain http
    to a loopback host only (``is_loopback_host``: ``127.1`` is not one). A client's
    ``fhir_servers`` are held to it, and the tools' ``--token``."""
    return origin is not None and (origin[0] == "https" or is_loopback_host(origin[1]))


def server_base(fhir_server: str) -> tuple[Origin | None, str]:
    """The origin and the base path ("" at the host's root, no trailing slash) of a FHIR
    server, as ``leads_under`` compares them: one reading for the fetcher and the
    prefetch checks."""
    return connect_origin(fhir_server), urlsplit(fhir_server.rstrip("/")).path


def leads_under(url: str, origin: Origin | None, base_path: str) -> bool:
    """``url`` leads to a FHIR server whose ``connect_origin`` is ``origin`` and whose base
    path is ``base_path`` ("" at the host's root): its origin as the HTTP stack connects
    (a URL two parsers could read differently has none), no dot segment in any spelling
    (``/fhir/../admin`` and ``/fhir/%2e%2e/admin`` start with the base but leave it), and
    a path under the base. The one rule for where a bearer token may go: the service's
    fetcher and the tools' FHIR endpoint both ask it."""
    if origin is None or connect_origin(url) != origin:
        return False
    path = urlsplit(url).path
    if has_dot_segments(path):
        return False
    return path == base_path or path.startswith(base_path + "/")
