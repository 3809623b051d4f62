"""Which URLs the FHIR client will send the EHR's token to (finding: paging-link tricks).

``connect_origin`` must name the origin that urllib3 really connects to, or refuse the
URL; the attack suite (test_attacks.py) tries the same tricks over real sockets.
"""

from __future__ import annotations

import pytest

from cds_service.fhir import connect_origin, server_url_problem
from cds_service.fhir.urls import has_dot_segments


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1:8080/fhir/Condition?page=2", ("http", "127.0.0.1", 8080)),
        ("HTTP://LocalHost:80/fhir", ("http", "localhost", 80)),
        ("http://localhost/fhir", ("http", "localhost", 80)),
        ("https://ehr.example.org/fhir", ("https", "ehr.example.org", 443)),
        ("https://ehr.example.org:443/fhir", ("https", "ehr.example.org", 443)),
        ("http://[::1]:8080/fhir", ("http", "::1", 8080)),
        ("http://h/fhir/Observation?code=http://loinc.org|1988-5", ("http", "h", 80)),
        ("http://h/fhir/x@y", ("http", "h", 80)),  # "@" in the path is only a path
    ],
)
def test_plain_urls_have_the_origin_they_connect_to(url: str, origin: tuple[str, str, int]) -> None:
    assert connect_origin(url) == origin


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:19004\\@127.0.0.1:19003/fhir/Condition?page=2",
        "http://a\\\\@b/fhir",
        "http://a@b/fhir",
        "http://u:p@b/fhir",
        "http://a%5C@b/fhir",
        "http://%31%32%37.0.0.1/fhir",
        "http://a\t@b/fhir",
        "http://a\n@b/fhir",
        "http://a @b/fhir",
        "http://\uff11\uff12\uff17.0.0.1/fhir",
        "http://ex\u0430mple.org/fhir",
        "http://[fe80::1%25eth0]/fhir",
        "http://h:99999/fhir",
        "http:\\\\h\\fhir",
        "//h/fhir",
        "ftp://h/fhir",
        "file:///etc/passwd",
        "http:///fhir",
        "http://h/fhir\x00",
    ],
)
def test_urls_that_parsers_may_read_differently_are_refused(url: str) -> None:
    assert connect_origin(url) is None


def test_a_fhir_server_url_with_a_backslash_is_refused() -> None:
    problem = server_url_problem("http://127.0.0.1:19004\\@127.0.0.1:19003/fhir")
    assert problem is not None and "fhirServer" in problem


@pytest.mark.parametrize(
    "url",
    [
        "https://ehr.example.org/fhir/../admin",
        "https://ehr.example.org/fhir/./r4",
        "https://ehr.example.org/fhir/%2e%2e/admin",
        "https://ehr.example.org/fhir/..%2Fadmin",
        # Tomcat reads a path parameter off a segment (an attack suite's spellings)
        "https://ehr.example.org/fhir/..;/admin",
        "https://ehr.example.org/fhir/%2e%2e;/admin",
        "https://ehr.example.org/fhir/.;/..;/admin",
        "https://ehr.example.org/fhir/..;jsessionid=1/admin",
        # escaped twice or more, for a proxy and a server that each decode once
        "https://ehr.example.org/fhir/%252e%252e/admin",
        "https://ehr.example.org/fhir/%25252e%25252e/admin",
        "https://ehr.example.org/fhir/..%255cadmin",
        "https://ehr.example.org/fhir/%2e%2e%5cadmin",
        # a NUL, where servers cut the path
        "https://ehr.example.org/fhir/%00/admin",
    ],
)
def test_a_fhir_server_url_with_dot_segments_is_refused(url: str) -> None:
    # the stack or the server resolves them, so the base would not be what it seems
    assert server_url_problem(url) == "fhirServer must not have '.' or '..' path segments"


def test_a_fhir_server_url_with_dots_inside_segments_is_kept() -> None:
    assert server_url_problem("https://ehr.example.org/fhir.r4/v1..2/api") is None
    assert server_url_problem("https://ehr.example.org/fhir/a;b/..c;d") is None


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/\uff0e\uff0e/admin",
        "/fhir/\uff0e/x",
        "/fhir/..\uff0fadmin",
        "/fhir/%EF%BC%8E%EF%BC%8E/admin",
        "/fhir/a%00b",
        "/fhir/\x00",
    ],
)
def test_dot_segments_in_compatibility_forms_and_nul_are_found(path: str) -> None:
    # NFKC folds fullwidth dots and slashes to ASCII ones, as some servers do
    assert has_dot_segments(path)


def test_dot_segments_escaped_past_the_decoding_rounds_are_not_judged_safe() -> None:
    assert has_dot_segments("/fhir/%252525252525252e%252525252525252e/admin")


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/%c0%ae%c0%ae/admin",  # overlong "." (two bytes): legacy decoders read ".."
        "/fhir/%e0%80%ae%e0%80%ae/admin",  # overlong "." (three bytes)
        "/fhir/..%c0%afadmin",  # overlong "/"
        "/fhir/%C0%AE/x",
        "/fhir/%25c0%25ae%25c0%25ae/admin",  # escaped once more
        "/fhir/%ff/x",  # not UTF-8 at all
        "/fhir/%e2%80/x",  # a sequence cut short
    ],
)
def test_escapes_that_are_not_utf8_are_not_judged_safe(path: str) -> None:
    """Only legacy decoders (old Tomcat, old IIS) read overlong forms as dots and
    slashes; a path that is not UTF-8 once decoded has no use in a FHIR URL, so it is
    never judged to be under a base (an attack suite had the token sent to
    ``/fhir/%C0%AE%C0%AE/admin``)."""
    assert has_dot_segments(path)


def test_escaped_utf8_is_kept() -> None:
    assert not has_dot_segments("/fhir/Patient/%C3%A9t%C3%A9/x")  # "été"
    assert not has_dot_segments("/fhir/Observation/a%2Bb%3D")
