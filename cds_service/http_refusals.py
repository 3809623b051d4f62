"""The words for the requests gunicorn refuses itself, before the app sees them.

A request gunicorn cannot read as HTTP (a bad request line, two ``Content-Length``
headers, headers too large, a broken chunked body) never reaches Flask: gunicorn
answers it with an HTML page. Clients of this service read JSON, so the workers
(``worker.py``) keep gunicorn's status and log line and send these words instead, in
the shape of every other refusal (``errors.py``): a stable code and what to send.

Nothing the client sent is repeated back: the bytes that could not be read may be
anything, and the log does not keep them either (``logs.py``). The one exception is the
name of a refused header, and only a name from ``_NAMED_HEADERS``: gunicorn's
``InvalidHeader`` carries a header's name, or a whole line it could not split (which
may hold anything), so only a name the service knows is repeated, in the answer and
in the log line. An integrator sent ``Content-Type`` twice and got "a header's value is
not valid", with no word of which header.
"""

from __future__ import annotations

import re

from gunicorn.http import errors as http

INTERNAL = ("internal_error", "the service failed to process this request")
_SEND_LENGTH = "send the request body with Content-Length"
_A_HEADER = "a header's value is not valid"
_HEADERS = {
    "CONTENT-LENGTH": "Content-Length must be one whole number of bytes, sent once, and not "
    "beside Transfer-Encoding",
    "TRANSFER-ENCODING": f"this Transfer-Encoding is not accepted; {_SEND_LENGTH}",
}

# The headers a refusal may name, as they are usually spelt: those a CDS client, a proxy
# or a browser sends. gunicorn refuses a second Host or Content-Type (RFC 9110 5.3: a
# singleton field cannot be combined into a list) and a value with a control character.
_NAMED_HEADERS = {
    name.upper(): name
    for name in (
        "Accept", "Accept-Encoding", "Authorization", "Connection", "Content-Encoding",
        "Content-Length", "Content-Type", "Expect", "Forwarded", "Host", "Origin",
        "Transfer-Encoding", "User-Agent", "X-Forwarded-For", "X-Forwarded-Host",
        "X-Forwarded-Proto", "X-Request-Id",
    )
}  # fmt: skip
_SINGLETONS = frozenset({"HOST", "CONTENT-TYPE"})
# gunicorn's words for an InvalidHeader, as its error log line quotes them.
_LOGGED = re.compile(r"Invalid HTTP Header: '([A-Za-z-]{1,40})'$")

# (gunicorn's exception, error code, message); the first that matches is used.
_WORDS: tuple[tuple[type[Exception] | tuple[type[Exception], ...], str, str], ...] = (
    (
        http.InvalidRequestLine,
        "malformed_request_line",
        "the request line is not 'METHOD /path HTTP/1.1'",
    ),
    (
        http.InvalidRequestMethod,
        "malformed_request_line",
        "the request method is not a valid HTTP method",
    ),
    (
        http.InvalidHTTPVersion,
        "unsupported_http_version",
        "this HTTP version is not supported; send HTTP/1.1",
    ),
    (
        http.InvalidHeaderName,
        "malformed_header",
        "a header name has characters HTTP does not allow",
    ),
    (
        http.ObsoleteFolding,
        "malformed_header",
        "a header is folded over several lines; send each header on one line",
    ),
    (
        http.LimitRequestLine,
        "request_line_too_long",
        "the request line (method, path and query) is longer than the service reads",
    ),
    (
        http.LimitRequestHeaders,
        "headers_too_large",
        "there are more headers, or a longer one, than the service reads",
    ),
    (
        http.UnsupportedTransferCoding,
        "unsupported_transfer_coding",
        f"this Transfer-Encoding is not supported; {_SEND_LENGTH}",
    ),
    (
        (http.InvalidChunkSize, http.ChunkMissingTerminator, http.InvalidChunkExtension),
        "malformed_chunked_body",
        f"the chunked request body is malformed; {_SEND_LENGTH}",
    ),
    (
        http.ExpectationFailed,
        "expectation_failed",
        "the Expect header asks for something the service does not do",
    ),
)


def refusal(exc: BaseException) -> tuple[str, str]:
    """The error code and message for a request gunicorn refused with ``exc`` (a 4xx or
    501; anything else is ``INTERNAL``)."""
    if isinstance(exc, http.InvalidHeader) and not isinstance(exc, http.InvalidResponseHeader):
        key = str(exc.hdr).upper()
        if key in _HEADERS:
            return "malformed_header", _HEADERS[key]
        name = _NAMED_HEADERS.get(key)
        if name is None:
            return "malformed_header", _A_HEADER
        if key in _SINGLETONS and exc.req is not None:  # the parser's repeat check
            return "malformed_header", f"the {name} header is sent more than once; send it once"
        return "malformed_header", f"the {name} header's value is not valid"
    for kind, error, message in _WORDS:
        if isinstance(exc, kind):
            return error, message
    if isinstance(exc, http.ParseException):
        return "malformed_http", "the request could not be read as HTTP/1.1"
    return INTERNAL


def header_in_log(message: str) -> str | None:
    """The name of the header gunicorn's log ``message`` says it refused, when it is one
    of ``_NAMED_HEADERS`` (``logs.py`` keeps it and drops the rest of the line)."""
    found = _LOGGED.search(message)
    return _NAMED_HEADERS.get(found.group(1).upper()) if found else None
