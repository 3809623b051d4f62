"""The tools' own FHIR traffic, as an EHR (or a loader of test data) would send it.

Not the service's FHIR client: that one works to a half-second budget and hides server
text from its clients. Here a person is waiting for a clear answer, so timeouts are
generous and a server's OperationOutcome text is shown, escaped and cut as ``spine-cds
report`` shows a client's text (``report_safe.printable``): a server's ESC sequence or
line break would otherwise drive the terminal or forge a line of the message.

The bearer token given with ``--token`` is held to the service's own rules for the EHR's
token (``cds_service.fhir``), from the same parts of ``fhir/urls.py``: it goes only to URLs
under the base URL (origin as the HTTP stack connects, no dot segments in any spelling),
never along a redirect, and never over plain http except to a loopback host. An outside
review had the tool send it to ``/fhir/../admin`` through a paging link and to another
path of the host through a 302.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests

from cds_service.fhir import server_url_problem
from cds_service.fhir.urls import connect_origin, leads_under, may_carry_token
from cds_service.tools.closing import Closing
from cds_service.tools.errors import (
    FhirServerError,
    InputError,
    json_or_text,
    outcome_issues,
    send,
)
from cds_service.tools.report_safe import printable

FHIR_TIMEOUT_S = 30.0
FHIR_JSON = "application/fhir+json"
# How much of a server's own words a message shows (escaped, so counted as shown).
SERVER_TEXT_MAX = 500


def outcome_text(body: Any) -> str:
    """The issues of an OperationOutcome as text, else a short view of the body; escaped
    and cut (``printable``), since the server chose every character of it."""
    issues = outcome_issues(body)
    if issues is not None:
        text = "; ".join(issues) or "an OperationOutcome with no issues"
    else:
        text = str(body).strip() or "(empty body)"
    return printable(text, SERVER_TEXT_MAX)


@dataclass
class PrefetchResult:
    """Per template key: what the EHR puts in ``prefetch``; and keys it left out, with why."""

    prefetch: dict[str, Any] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)


class FhirEndpoint(Closing):
    """A FHIR server base URL and an optional bearer token."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = FHIR_TIMEOUT_S):
        problem = server_url_problem(base_url)
        if problem is not None:
            raise InputError(f"--fhir-server {base_url!r}: {problem.replace('fhirServer ', '')}")
        self.base = base_url.rstrip("/")
        self._origin = connect_origin(self.base)
        self._base_path = urlsplit(self.base).path  # "" for a server at the host's root
        if token and not may_carry_token(self._origin):
            raise InputError(
                f"--token is not sent to {self.base}: plain http to a host that is not "
                "loopback would carry the token and the patient's data unencrypted; give "
                "the server's https URL (plain http only to localhost or a loopback address)"
            )
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["Accept"] = FHIR_JSON
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        self._has_token = bool(token)

    def close(self) -> None:
        self._session.close()

    def within(self, url: str) -> bool:
        """``url`` leads to this FHIR server: the rule of the service's fetcher
        (``urls.leads_under``), so ``/fhir/../admin`` and a path outside the base never
        get the token."""
        return leads_under(url, self._origin, self._base_path)

    # --- exchanges ----------------------------------------------------------------------

    def _send(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        if not self.within(url):
            # Checked again where the token leaves, whatever the caller checked before.
            raise FhirServerError(
                f"{printable(url)} does not lead to the FHIR server at {self.base} "
                "(another host, a path outside its base, or not a plain URL): not contacted"
            )
        headers = {"Content-Type": FHIR_JSON} if body is not None else {}
        response = send(
            self._session,
            method,
            url,
            timeout=self.timeout,
            peer=f"the FHIR server at {self.base}",
            error=FhirServerError,
            json=body,
            headers=headers,
            # A redirect keeps the Authorization header on the same host, whatever path
            # it names: with a token none is followed (said by ``_redirected``).
            allow_redirects=not self._has_token,
        )
        if self._has_token and 300 <= response.status_code < 400:
            raise FhirServerError(self._redirected(url, response))
        parsed = json_or_text(response)
        if response.status_code in (401, 403):
            raise FhirServerError(self._refused(response.status_code, parsed))
        return response.status_code, parsed

    def get(self, url: str) -> tuple[int, Any]:
        """GET ``url`` (on this server); 401/403 raise FhirServerError with the reason."""
        return self._send("GET", url)

    def _redirected(self, url: str, response: requests.Response) -> str:
        """Why a redirect was not followed: the status, where it pointed (escaped: the
        server chose it), and that the token never goes along one."""
        location = response.headers.get("Location")
        target = f" to {printable(urljoin(url, location))}" if location else ""
        return (
            f"the FHIR server at {self.base} answered {response.status_code}, a redirect"
            f"{target}: it was not followed, because the token given with --token is never "
            "sent along a redirect; if the FHIR server has moved, give its new base URL as "
            "--fhir-server"
        )

    def _refused(self, status: int, body: Any) -> str:
        if status == 401:
            why = (
                "refused the access token given with --token"
                if self._has_token
                else "needs an access token: pass --token"
            )
        else:
            why = "does not allow this access"
        return f"the FHIR server at {self.base} {why} ({status}): {outcome_text(body)}"

    def read_patient(self, patient_id: str) -> dict[str, Any]:
        """The Patient resource; FhirServerError with a clear message when it is not there.

        A 404 says the same for a patient not loaded and for a base URL that is not a
        FHIR server's (``/wrong`` for ``/fhir``); the server's ``metadata`` tells them
        apart, asked only then."""
        status, body = self._send("GET", f"{self.base}/Patient/{quote(patient_id, safe='')}")
        if status in (404, 410):
            raise FhirServerError(self._not_found(patient_id, status))
        if status != 200 or not isinstance(body, dict) or body.get("resourceType") != "Patient":
            raise FhirServerError(
                f"reading Patient/{patient_id} from {self.base} failed ({status}): "
                f"{outcome_text(body)}"
            )
        return body

    def _not_found(self, patient_id: str, status: int) -> str:
        """Why Patient/<id> answered ``status`` (404 or 410), after asking ``metadata``."""
        try:
            meta_status, meta = self._send("GET", f"{self.base}/metadata")
        except FhirServerError:
            meta_status, meta = 0, None
        capability = isinstance(meta, dict) and meta.get("resourceType") == "CapabilityStatement"
        if meta_status == 200 and capability:
            return (
                f"patient {patient_id!r} was not found on the FHIR server at {self.base} "
                f"({status}); load it first (spine-cds load-examples) or check the id"
            )
        if meta_status in (200, 404):
            answered = "404" if meta_status == 404 else "200 without a CapabilityStatement"
            return (
                f"{self.base} is not a FHIR server's base URL: GET {self.base}/metadata "
                f"answered {answered} (and Patient/{patient_id} {status}); check "
                "--fhir-server: the base URL ends where the resource type would start "
                "(e.g. http://127.0.0.1:8090/fhir)"
            )
        return (
            f"Patient/{patient_id} answered {status} at {self.base}: either the patient is "
            "not there (load it first: spine-cds load-examples; or check the id) or "
            "--fhir-server is not the FHIR base URL (its metadata could not be read)"
        )

    def run_prefetch(self, queries: Mapping[str, str]) -> PrefetchResult:
        """Run each rendered prefetch query. A query the server fails is left out of
        prefetch (the service then fetches it itself), as the specification allows;
        401/403 stop everything, since the service would be refused too."""
        result = PrefetchResult()
        for key, query in queries.items():
            status, body = self._send("GET", f"{self.base}/{query}")
            if status == 200 and isinstance(body, dict):
                result.prefetch[key] = body
            else:
                result.left_out[key] = f"the FHIR server answered {status}: {outcome_text(body)}"
        return result

    def post_transaction(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        """POST a transaction Bundle to the base URL; FhirServerError with the server's
        own words when it refuses it or any entry of it."""
        status, body = self._send("POST", self.base, body=dict(bundle))
        if status >= 400 or not isinstance(body, dict):
            raise FhirServerError(
                f"the FHIR server at {self.base} refused the transaction ({status}): "
                f"{outcome_text(body)}"
            )
        if body.get("resourceType") != "Bundle":
            raise FhirServerError(
                f"the FHIR server at {self.base} answered a transaction with "
                f"{printable(str(body.get('resourceType', 'something that is not a Bundle')))} "
                f"({status}): {outcome_text(body)}"
            )
        failures = []
        for i, entry in enumerate(body.get("entry") or []):
            reply = entry.get("response") if isinstance(entry, dict) else None
            entry_status = str(reply.get("status", "")) if isinstance(reply, dict) else ""
            if entry_status and not entry_status.startswith("2"):
                outcome = reply.get("outcome") if isinstance(reply, dict) else None
                failures.append(
                    f"entry {i}: {printable(entry_status)} {outcome_text(outcome or '')}"
                )
        if failures:
            raise FhirServerError(
                f"the FHIR server at {self.base} refused part of the transaction: "
                + "; ".join(failures)
            )
        return body
