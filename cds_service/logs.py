"""Log output in which no client can forge a line, and which holds no request bytes.

Two formats (setting ``log_format``):

- ``plain``: one line per record; every control character of the finished text is
  escaped (a newline becomes ``\\n``, NUL ``\\x00``), so a value a client chose (a path
  with ``%0A``, a hookInstance with a newline) can never start a line of its own;
- ``json``: one JSON object per line (python-json-logger), which log pipelines parse
  without guessing; JSON escapes control characters itself.

Either way exceptions are logged with their traceback and type only: an exception's
message can quote the data it choked on (gunicorn's ``InvalidChunkSize`` quotes the
body, access token included).

Every line carries the id of the request it was written for (``request_id``, also sent
to the client in the ``X-Request-Id`` header), ``-`` outside a request, so an integrator
who quotes the header finds every line of their call.

Values a client chose that a log line must show to be useful (an ``aud`` that did not
match, an unknown ``iss``) go through ``shown``: quoted, escaped and cut to a bound, so
they can neither forge a line nor fill the log.

Third-party loggers are held to what we promise: urllib3 writes whole URLs (FHIR query
strings, so patient ids) at debug and is held at WARNING at every level; gunicorn's error
log is reduced to the kind of error for malformed requests (``GunicornLogger``).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import traceback
from types import TracebackType
from typing import Any

from gunicorn.glogging import Logger as _GunicornBaseLogger
from pythonjsonlogger.json import JsonFormatter

from cds_service.http_refusals import header_in_log

PLAIN_FORMAT = (
    "%(asctime)s %(levelname)s [%(process)d] %(name)s request_id=%(request_id)s: %(message)s"
)
JSON_FIELDS = "%(asctime)s %(levelname)s %(process)d %(name)s %(request_id)s %(message)s"
# The request a line is written for; set by the web layer for the length of a request.
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# How many characters of a client-chosen value a log line shows.
SHOWN_MAX_CHARS = 200
# Loggers that would write request data (URLs with query strings) at debug or info.
QUIET_LOGGERS = ("urllib3", "requests", "charset_normalizer")

# Controls, line separators, lone surrogates and the format characters (Unicode category
# Cf: bidi overrides, zero-width ones) that change how a line reads on screen without
# showing themselves; also Unicode's other default-ignorable code points (fillers,
# variation selectors, tags: drawn as nothing) and private-use ones (Co: drawn as the
# terminal's font pleases). One character class, so a line is scanned once.
# tests/shell/test_log_escapes.py holds the list against unicodedata.
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff"
    "\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160"
    "\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164"
    "\ue000-\uf8ff\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff\U000f0000-\U000ffffd"
    "\U00100000-\U0010fffd]"
)
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(char: str) -> str:
    code = ord(char)
    if char in _ESCAPES:
        return _ESCAPES[char]
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def escape_controls(text: str) -> str:
    """``text`` with every control and invisible format character (and Unicode line
    separators) escaped."""
    return _CONTROL.sub(lambda m: _escaped(m.group()), text)


def shown(value: object, limit: int = SHOWN_MAX_CHARS) -> str:
    """A value a client chose, fit for a log line: as JSON (a string quoted, so a space or
    ``=`` in it cannot pass for another field; a list or number as it is), control
    characters escaped, and at most ``limit`` characters of it, followed by how many
    there were when it was cut."""
    if isinstance(value, str):
        text = json.dumps(value[:limit], ensure_ascii=False)
        size = len(value)
    else:
        whole = json.dumps(value, ensure_ascii=False, default=str)
        text, size = whole[:limit], len(whole)
    text = escape_controls(text)
    return text if size <= limit else f"{text}...({size} chars)"


def _with_request_id(record: logging.LogRecord) -> None:
    if not getattr(record, "request_id", None):
        record.request_id = request_id_var.get()


def exception_without_message(ei: Any) -> str:
    """The traceback and the exception's type, never its message (it may quote data)."""
    exc_type, _exc, tb = ei
    lines = ["Traceback (most recent call last):\n", *traceback.format_tb(tb)]
    name = getattr(exc_type, "__qualname__", "Exception")
    module = getattr(exc_type, "__module__", "")
    lines.append(f"{module}.{name} (message not logged)" if module else name)
    return "".join(lines).rstrip("\n")


class PlainFormatter(logging.Formatter):
    """The plain format: one record, one line, whatever the record holds."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT)

    def formatException(self, ei: Any) -> str:
        return exception_without_message(ei)

    def format(self, record: logging.LogRecord) -> str:
        _with_request_id(record)
        return super().format(record)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))


class JsonLogFormatter(JsonFormatter):
    """The json format: one object per line with time, level, process, logger, message."""

    def __init__(self) -> None:
        super().__init__(
            JSON_FIELDS,
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )

    def format(self, record: logging.LogRecord) -> str:
        _with_request_id(record)
        return super().format(record)

    def formatException(self, ei: Any) -> str:
        return exception_without_message(ei)


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonLogFormatter() if log_format == "json" else PlainFormatter()


def configure(level: str, log_format: str = "plain") -> None:
    """Root logging for the service process and its workers (stderr)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(log_format))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class _RequestBytesFilter(logging.Filter):
    """gunicorn quotes what it could not parse (request line, header, chunk-size line:
    the body) and the URI of a request that failed; keep only the kind of event."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else str(record.msg)
        if message.startswith("Invalid request from ip="):
            ip = message[len("Invalid request from ip=") :].split(": ", 1)[0]
            if record.args:
                ip = "?"
            header = header_in_log(message)  # a known header's name, never its value
            what = f"malformed request, header {header}" if header else "malformed request"
            record.msg = f"Invalid request from ip={ip}: {what} (bytes not logged)"
            record.args = ()
        elif message.startswith("Error handling request"):
            record.msg = "Error handling request (URI not logged)"
            record.args = ()
        elif isinstance(record.args, tuple) and any(
            isinstance(a, BaseException | bytes | bytearray) for a in record.args
        ):
            record.args = tuple(
                type(a).__name__ if isinstance(a, BaseException | bytes | bytearray) else a
                for a in record.args
            )
        return True


class GunicornLogger(_GunicornBaseLogger):  # type: ignore[misc]
    """gunicorn's logger with our format, and without request bytes in its error log."""

    log_format = "plain"  # set by the server from the settings before gunicorn starts

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = make_formatter(self.log_format)
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter)
        self.error_log.addFilter(_RequestBytesFilter())
