"""The one redaction of passwords: in a URL of any form, and in any message that quotes one.

A password reaches a URL setting in more than one way: ``postgresql://user:pw@host/db``,
``redis://:pw@host``, ``postgresql://host/db?password=pw`` (libpq) or
``redis://host?password=pw`` (redis-py), encoded well or badly. Parsers disagree about
where a badly encoded userinfo ends (libpq stops at the first ``@`` or ``/``; Python's
``urlsplit`` at the last ``@`` before ``/ ? #``; a raw ``/`` in a password moves it to the
last ``@`` before ``?``), so every reading's password is hidden.
A driver's error may quote the password itself (libpq: ``invalid percent-encoded token:
"p%zz..."``): ``redact_text`` hides every password of the configured URLs, as written and
decoded, wherever it appears in a message, and every URL in it too.

Used for the startup configuration line, the stores' names in their errors, and every
error that ``serve``, ``report`` and ``audit-purge`` print.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

MASK = "***"
# Shorter secrets are hidden inside a URL but not searched for in free text, where they
# would mangle ordinary words; a password that short is a problem of its own.
MIN_SECRET_IN_TEXT = 4

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
# Query parameters that carry a secret: password, sslpassword, passwd, pwd, secret, token...
_SECRET_PARAM = re.compile(
    r"(?i)[?&;][A-Za-z_\-]*(?:password|passwd|pwd|secret|token)[A-Za-z_\-]*=([^&;#]*)"
)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]+")


def _secret_spans(url: str) -> list[tuple[int, int]]:
    """Where ``url`` holds a password, as (start, end) spans, under every reading."""
    spans: list[tuple[int, int]] = []
    scheme = _SCHEME.match(url)
    if scheme:
        start = scheme.end()
        # libpq: the userinfo ends at the first "@" met before any "/".
        stop = next((i for i in range(start, len(url)) if url[i] in "@/"), len(url))
        if stop < len(url) and url[stop] == "@":
            colon = url.find(":", start, stop)
            if colon >= 0:
                spans.append((colon + 1, stop))
        # urlsplit: the netloc ends at "/", "?" or "#", its userinfo at its last "@"; and
        # a password with a raw "/" in it (badly encoded): up to the last "@" before "?".
        for netloc_stops in ("/?#", "?#"):
            end = next((i for i in range(start, len(url)) if url[i] in netloc_stops), len(url))
            at = url.rfind("@", start, end)
            if at >= 0:
                colon = url.find(":", start, at)
                if colon >= 0:
                    spans.append((colon + 1, at))
    spans += [m.span(1) for m in _SECRET_PARAM.finditer(url) if m.end(1) > m.start(1)]
    return spans


def url_secrets(url: str) -> list[str]:
    """The passwords ``url`` carries, as written and percent-decoded, longest first."""
    found: set[str] = set()
    for a, b in _secret_spans(url):
        raw = url[a:b]
        found |= {raw, unquote(raw)}
    return sorted((s for s in found if s), key=len, reverse=True)


def redact_url(url: str) -> str:
    """``url`` with every password it carries replaced by ``***``, in whatever form:
    postgresql://user:***@host/db, redis://host?password=***."""
    merged: list[list[int]] = []
    for a, b in sorted(_secret_spans(url)):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out, pos = [], 0
    for a, b in merged:
        out += [url[pos:a], MASK]
        pos = b
    out.append(url[pos:])
    return "".join(out)


def redact_text(text: str, urls: Iterable[str] = (), secrets: Iterable[str] = ()) -> str:
    """A message safe to print: the passwords of ``urls`` (as written and decoded) and the
    other ``secrets`` hidden wherever they appear, then every URL in it redacted."""
    hidden: set[str] = {s for s in secrets if len(s) >= MIN_SECRET_IN_TEXT}
    for url in urls:
        hidden |= {s for s in url_secrets(url) if len(s) >= MIN_SECRET_IN_TEXT}
    for secret in sorted(hidden, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _URL_IN_TEXT.sub(lambda m: redact_url(m[0]), text)
