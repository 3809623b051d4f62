"""Requests gunicorn cannot read as HTTP are refused in JSON, as the app refuses
(cds_service/http_refusals.py, worker.SyncWorker): held through gunicorn for both worker
classes, and the refusal's words held for each kind of fault the parser reports."""

from __future__ import annotations

import json
import logging
import re
import socket
from pathlib import Path

import pytest
import requests
from gunicorn.http import errors as http

from cds_service.http_refusals import INTERNAL, header_in_log, refusal
from cds_service.worker import SyncWorker, _status
from spine_cds_dev.service_process import ServiceProcess
from tests.support.raw_http import exchange

BAD_REQUESTS = {
    "Content-Length twice": (
        b"POST /cds-services HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Content-Length: 3\r\n\r\n{}",
        400,
        "malformed_header",
    ),
    "Content-Type twice": (
        b"POST /cds-services/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Type: application/json; Pat123\r\nContent-Length: 2\r\n\r\n{}",
        400,
        "malformed_header",
    ),
    "no request line": (b"GARBAGE-patient-Pat123\r\n\r\n", 400, "malformed_request_line"),
    "a header name with a space": (
        b"GET /cds-services HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
        400,
        "malformed_header",
    ),
    "too many headers": (
        b"GET /cds-services HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-%d: y\r\n" % n for n in range(200))
        + b"\r\n",
        431,
        "headers_too_large",
    ),
    "a request line too long": (
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        414,
        "request_line_too_long",
    ),
}


@pytest.mark.integration
@pytest.mark.timeout(90)
@pytest.mark.parametrize("threads", ["1", "4"])
def test_http_gunicorn_cannot_read_is_refused_in_json_and_logged_without_its_bytes(
    tmp_path: Path, threads: str
) -> None:
    log = tmp_path / "service.log"
    env = {"SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"), "SPINE_CDS_THREADS": threads}
    request_ids = []
    with ServiceProcess(env=env, workers=1, log_path=log) as service:
        for name, (raw, status, error) in BAD_REQUESTS.items():
            got, headers, body = exchange(service.port, raw)
            assert got == status, name
            assert headers["content-type"] == "application/json", name
            assert headers["x-content-type-options"] == "nosniff", name
            assert headers["connection"] == "close", name
            assert int(headers["content-length"]) == len(body), name
            answer = json.loads(body)
            assert answer["error"] == error, name
            assert answer["message"], name
            assert "Pat123" not in answer["message"]
            if name == "Content-Length twice":
                assert "Content-Length" in answer["message"]
            if name == "Content-Type twice":  # the header named, its value never
                assert answer["message"] == (
                    "the Content-Type header is sent more than once; send it once"
                )
            request_ids.append(headers["x-request-id"])
        # the worker goes on answering
        assert requests.get(f"{service.url}/health", timeout=10).status_code == 200
    text = log.read_text(encoding="utf-8")
    assert "Pat123" not in text  # the bytes that could not be read are not logged
    assert "malformed request, header Content-Type (bytes not logged)" in text
    for request_id in request_ids:  # the id the client got starts the refusal's log line
        assert re.search(rf"request_id={request_id}: Invalid request from ip=127\.0\.0\.1", text)


@pytest.mark.parametrize(
    ("exc", "error", "words"),
    [
        (http.InvalidRequestLine("x"), "malformed_request_line", "METHOD /path HTTP/1.1"),
        (http.InvalidRequestMethod("G@T"), "malformed_request_line", "method"),
        (http.InvalidHTTPVersion((9, 9)), "unsupported_http_version", "HTTP/1.1"),
        (http.InvalidHeader("CONTENT-LENGTH"), "malformed_header", "Content-Length must be"),
        (http.InvalidHeader("TRANSFER-ENCODING"), "malformed_header", "with Content-Length"),
        (http.InvalidHeader("X-Thing"), "malformed_header", "a header's value"),
        # a name the service knows is said; a repeat only when the parser's check saw one
        (
            http.InvalidHeader("CONTENT-TYPE", req=object()),
            "malformed_header",
            "the Content-Type header is sent more than once",
        ),
        (http.InvalidHeader("HOST"), "malformed_header", "the Host header's value is not valid"),
        # a line without a colon comes as the header: it is never repeated back
        (http.InvalidHeader("GARBAGE-patient-Pat123"), "malformed_header", "a header's value"),
        (http.InvalidHeaderName("Bad Header"), "malformed_header", "header name"),
        (http.ObsoleteFolding("X-Thing"), "malformed_header", "one line"),
        (http.LimitRequestLine(9000, 8190), "request_line_too_long", "longer"),
        (http.LimitRequestHeaders("too many"), "headers_too_large", "more headers"),
        (http.UnsupportedTransferCoding("gzip"), "unsupported_transfer_coding", "Content-Length"),
        (http.InvalidChunkSize(b"zz"), "malformed_chunked_body", "Content-Length"),
        (http.ChunkMissingTerminator(b"xx"), "malformed_chunked_body", "Content-Length"),
        (http.InvalidChunkExtension("x"), "malformed_chunked_body", "Content-Length"),
        (http.ExpectationFailed("x"), "expectation_failed", "Expect"),
        (http.InvalidSchemeHeaders(), "malformed_http", "HTTP/1.1"),
        (RuntimeError("a fault in the worker"), "internal_error", "failed"),
    ],
)
def test_each_fault_the_parser_reports_has_its_own_words(
    exc: Exception, error: str, words: str
) -> None:
    got_error, message = refusal(exc)
    assert got_error == error
    assert words in message
    for said in ("G@T", "Bad Header", "gzip", "zz", "9000", "Pat123", "X-Thing"):
        assert said not in message  # nothing the client sent is repeated back


def test_a_status_line_that_cannot_be_read_is_a_500() -> None:
    assert _status(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n") == (
        431,
        "Request Header Fields Too Large",
    )
    assert _status(b"") == (500, "Internal Server Error")
    assert _status(b"<html>oops</html>") == (500, "Internal Server Error")


def _answer_to(exc: Exception) -> tuple[bytes, bytes]:
    """The head and body the worker writes for ``exc``, read from a real socket pair."""
    worker = object.__new__(SyncWorker)  # handle_error reads only its log without a request
    worker.log = logging.getLogger("gunicorn.error")
    ours, theirs = socket.socketpair()
    with ours, theirs:
        worker.handle_error(None, ours, ("127.0.0.1", 1), exc)
        ours.close()
        answer = b""
        while chunk := theirs.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


def test_a_fault_of_the_worker_itself_is_a_json_500(caplog: pytest.LogCaptureFixture) -> None:
    """Not a parse error (a bug below the app): gunicorn's 500, in JSON."""
    with caplog.at_level(logging.ERROR, logger="gunicorn.error"):
        head, body = _answer_to(RuntimeError("a fault"))
    assert head.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert json.loads(body) == {"error": INTERNAL[0], "message": INTERNAL[1]}
    assert "Error handling request" in caplog.text


def test_a_transfer_coding_the_service_does_not_do_is_a_501_that_says_so() -> None:
    """An attack suite's ``Transfer-Encoding: xchunked`` got ``501 Bad Request`` with the
    body of a failure of the service; it is a refusal of what the client sent."""
    head, body = _answer_to(http.UnsupportedTransferCoding("x"))
    assert head.startswith(b"HTTP/1.1 501 Not Implemented\r\n")
    assert json.loads(body)["error"] == "unsupported_transfer_coding"


def test_the_log_keeps_only_a_known_header_name() -> None:
    assert header_in_log("Invalid HTTP Header: 'CONTENT-TYPE'") == "Content-Type"
    assert header_in_log("Invalid HTTP Header: 'GARBAGE-patient-Pat'") is None
    assert header_in_log("Invalid HTTP Header: 'X-Thing'") is None
    assert header_in_log("Invalid HTTP header name: 'HOST'") is None
