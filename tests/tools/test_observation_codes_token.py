"""The token given to `spine-cds observation-codes` (and the other tools' FHIR endpoint)
goes only where the service's own fetcher would send the EHR's: an outside review had a
next link ``/fhir/../admin`` pass a prefix test on the URL as written, a 302 to another
path of the host take the token along, and ``--token`` go over plain http to any host."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from cds_service.cli import main
from cds_service.tools.errors import InputError
from cds_service.tools.fhir_http import FhirEndpoint
from tests.tools.scripted_fhir import Answer, ScriptedFhir, Seen, observation, searchset

TOKEN = "codes-token-secret"
LOINC = "http://loinc.org"


def run(base_url: str, *extra: str, token: str | None = TOKEN) -> Any:
    args = ["observation-codes", "--fhir-server", base_url, "--patient", "p1", *extra]
    if token is not None:
        args += ["--token", token]
    return CliRunner().invoke(main, args, env={"FHIR_ACCESS_TOKEN": None})


def off_base(seen: list[Seen]) -> list[Seen]:
    return [s for s in seen if not s.path.startswith("/fhir/Observation?")]


@pytest.mark.parametrize(
    "link",
    [
        "/fhir/../admin?page=2",
        "/fhir/%2e%2e/admin?page=2",
        "/fhir/%2E%2E/admin?page=2",
        "/fhir/..;/admin?page=2",
        "/fhir/Observation/../../admin?page=2",
    ],
)
def test_a_next_link_that_climbs_out_of_the_base_is_not_followed(link: str) -> None:
    def answer(seen: Seen) -> Answer:
        if seen.path.startswith("/fhir/Observation?"):
            found = observation("o1", LOINC, "1988-5", "CRP")
            return Answer(body=searchset(found, next_url=f"{fhir.origin}{link}"))
        return Answer(body=searchset())

    with ScriptedFhir(answer) as fhir:
        result = run(fhir.base_url)
        seen = fhir.seen
    assert off_base(seen) == [], "the token left the FHIR base"
    assert result.exit_code == 3, result.output
    assert "next link that leads away from the FHIR server" in result.output
    assert "not followed" in result.output and TOKEN not in result.output


def test_a_redirect_is_not_followed_with_a_token_and_says_so() -> None:
    def answer(seen: Seen) -> Answer:
        if seen.path.startswith("/fhir/"):
            return Answer(302, b"", {"Location": "/admin/export?all=1"})
        return Answer(body=searchset(observation("o1", LOINC, "1988-5", "CRP")))

    with ScriptedFhir(answer) as fhir:
        result = run(fhir.base_url)
        seen = fhir.seen
    assert off_base(seen) == [], "the token followed the redirect"
    assert result.exit_code == 3, result.output
    said = " ".join(result.output.split())
    assert f"answered 302, a redirect to {fhir.origin}/admin/export?all=1" in said
    assert "it was not followed" in said and "never sent along a redirect" in said


def test_without_a_token_a_redirect_is_followed_as_before() -> None:
    """Nothing to leak: a server that moved (http to https, a new path) still answers."""

    def answer(seen: Seen) -> Answer:
        if seen.path.startswith("/old/"):
            return Answer(302, b"", {"Location": seen.path.replace("/old/", "/fhir/", 1)})
        return Answer(body=searchset(observation("o1", LOINC, "1988-5", "CRP")))

    with ScriptedFhir(answer) as fhir:
        result = run(f"{fhir.origin}/old", token=None)
    assert result.exit_code == 0, result.output
    assert "1 Observations" in result.output


@pytest.mark.parametrize(
    "base",
    ["http://fhir.example.invalid/fhir", "http://10.0.0.7:8080/fhir", "http://127.1:9/fhir"],
)
def test_a_token_is_refused_over_plain_http_to_a_host_that_is_not_loopback(base: str) -> None:
    for result in (
        run(base),
        CliRunner().invoke(
            main,
            ["observation-codes", "--fhir-server", base, "--patient", "p1"],
            env={"FHIR_ACCESS_TOKEN": TOKEN},
        ),
    ):
        assert result.exit_code == 2, result.output
        said = " ".join(result.output.split())
        assert "--token is not sent to" in said and "plain http" in said
        assert "cannot reach" not in said  # refused before any connection


@pytest.mark.parametrize(
    "base",
    [
        "https://fhir.example.invalid/fhir",
        "http://127.0.0.1:9/fhir",
        "http://localhost:9/fhir",
        "http://[::1]:9/fhir",
    ],
)
def test_a_token_may_go_over_https_or_to_loopback(base: str) -> None:
    with FhirEndpoint(base, TOKEN) as endpoint:
        assert endpoint.base == base


def test_plain_http_without_a_token_is_still_allowed() -> None:
    with FhirEndpoint("http://fhir.example.invalid/fhir") as endpoint:
        assert endpoint.base == "http://fhir.example.invalid/fhir"
    with pytest.raises(InputError):
        FhirEndpoint("http://fhir.example.invalid/fhir", TOKEN)


@pytest.mark.parametrize(
    ("url", "within"),
    [
        ("http://127.0.0.1:9/fhir/Observation?page=2", True),
        ("http://127.0.0.1:9/fhir", True),
        ("http://127.0.0.1:9/fhirx/Observation", False),
        ("http://127.0.0.1:9/fhir/../admin", False),
        ("http://127.0.0.1:9/fhir/%2e%2e/admin", False),
        ("http://127.0.0.1:9/fhir/%252e%252e/admin", False),
        ("http://127.0.0.1:9/fhir/..;/admin", False),
        ("http://localhost:9/fhir/Observation", False),  # another origin as written
        ("http://127.0.0.1:10/fhir/Observation", False),
        ("https://127.0.0.1:9/fhir/Observation", False),
        ("http://evil\\@127.0.0.1:9/fhir/Observation", False),
    ],
)
def test_within_is_the_fetchers_rule(url: str, within: bool) -> None:
    with FhirEndpoint("http://127.0.0.1:9/fhir") as endpoint:
        assert endpoint.within(url) is within
