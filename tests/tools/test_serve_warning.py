"""What ``spine-cds serve`` says in development mode, and the CORS it then answers.

Development mode answers CORS from any origin and fetches from any fhirServer, so any
web page open in the developer's browser can have the service probe the developer's
network (an attack suite's finding). The CDS Hooks sandbox calls from its own origin in
the browser, so the default stays open for it; the warning says what that allows and
how to allow only the pages one uses."""

from __future__ import annotations

from pathlib import Path

from cds_service.app import create_app
from cds_service.cli.serve import dev_mode_warning
from tests.builders import SELECT_ID
from tests.conftest import make_settings

SANDBOX = "https://sandbox.cds-hooks.org"


def test_the_warning_says_what_any_origin_allows_and_how_to_narrow_it() -> None:
    words = dev_mode_warning(())
    assert words.startswith("DEVELOPMENT MODE: client JWTs are NOT verified")
    assert "any web page" in words
    assert "any fhirServer, on your network too" in words
    assert f"cors_origins, e.g. {SANDBOX}" in words


def test_with_cors_origins_the_warning_names_them_instead() -> None:
    words = dev_mode_warning((SANDBOX,))
    assert f"CORS allows {SANDBOX}." in words
    assert "any origin" not in words


def preflight(client: object, origin: str) -> dict[str, str]:
    answer = client.options(  # type: ignore[attr-defined]
        f"/cds-services/{SELECT_ID}",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    return dict(answer.headers)


def test_the_sandbox_is_answered_by_default_and_alone_with_cors_origins(tmp_path: Path) -> None:
    open_app = create_app(make_settings(tmp_path, dev_mode=True)).test_client()
    assert preflight(open_app, SANDBOX)["Access-Control-Allow-Origin"] in {SANDBOX, "*"}
    narrow = create_app(make_settings(tmp_path, dev_mode=True, cors_origins=SANDBOX)).test_client()
    assert preflight(narrow, SANDBOX)["Access-Control-Allow-Origin"] == SANDBOX
    assert "Access-Control-Allow-Origin" not in preflight(narrow, "https://evil.example")
