"""Where the tools send a hook call: a running service by URL, or the service in process.

In process means the whole web path on Flask's test client (the route, and through it
``cds_service.pipeline``, the one way a hook call is read, checked and handled), in
development mode with a throw-away database, so a reviewer or an engineer needs no
server and sees exactly what a deployed service would answer, shadow mode included.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import requests

from cds_service.settings import SettingsError, load_settings
from cds_service.tools.closing import Closing
from cds_service.tools.errors import InputError, ServiceError, json_or_text, send

SERVICE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Answer:
    """One HTTP answer of the service: status and body (parsed JSON, else the text)."""

    status: int
    body: Any
    request_id: str | None = None  # the service's X-Request-Id: its log line says more


@dataclass(frozen=True)
class ServiceEntry:
    """The discovery entry the EHR uses for one hook."""

    id: str
    hook: str
    prefetch: dict[str, str]


class CdsService(Protocol):
    label: str

    def discovery(self) -> Answer: ...

    def health(self) -> Answer: ...

    def call(self, service_id: str, body: Mapping[str, Any]) -> Answer: ...

    def close(self) -> None: ...


def find_service(discovery: Answer, hook: str, label: str, *, signed: bool = False) -> ServiceEntry:
    """The first service of the discovery document for ``hook``; ServiceError otherwise.

    ``signed``: the discovery call carried a client JWT (``try --client-key``), so a 401
    is a refused JWT, not a missing one."""
    if discovery.status != 200 or not isinstance(discovery.body, dict):
        hint = ""
        if discovery.status == 401 and signed:
            where = (
                f"the line with request id {discovery.request_id}"
                if discovery.request_id
                else "its log"
            )
            hint = (
                " (a client JWT was sent and refused: the service's log says why, in"
                f" {where}. Often: --service-url is not the service's public_base_url,"
                " which is the JWT's audience; or the trusted-clients entry wants a jku"
                " header (--client-jku, for jku_list_url or jku_allowlist) or a tenant"
                " claim (--client-tenant))"
            )
        elif discovery.status == 401:
            hint = (
                " (no client JWT was sent: `spine-cds try` signs one with --client-key and"
                " --client-iss; or run the service in development mode)"
            )
        raise ServiceError(
            f"discovery at {label} answered {discovery.status}{hint}: {error_text(discovery.body)}"
        )
    for entry in discovery.body.get("services") or []:
        if isinstance(entry, dict) and entry.get("hook") == hook and "id" in entry:
            prefetch = entry.get("prefetch") or {}
            return ServiceEntry(
                str(entry["id"]), hook, {str(k): str(v) for k, v in prefetch.items()}
            )
    raise ServiceError(f"the service at {label} offers no {hook} service")


def shadow_mode_of(health: Answer) -> bool | None:
    """Whether the service says (in ``GET /health``) that it runs in shadow mode: every
    call evaluated and recorded, no card returned. None when it does not say."""
    if health.status != 200 or not isinstance(health.body, dict):
        return None
    value = health.body.get("shadowMode")
    return value if isinstance(value, bool) else None


def error_text(body: Any) -> str:
    """The readable part of an error body: message, each detail, each missing key."""
    if not isinstance(body, dict):
        text = str(body).strip()
        return text[:500] if text else "(empty body)"
    parts = [str(body.get("message") or body.get("error") or body)]
    for detail in body.get("details") or []:
        if isinstance(detail, dict):
            parts.append(f"  {detail.get('path', '$')}: {detail.get('message', '')}")
    for missing in body.get("missing") or []:
        if isinstance(missing, dict):
            parts.append(f"  {missing.get('key', '?')}: {missing.get('reason', '')}")
    return "\n".join(parts)


class RemoteService(Closing):
    """A running service, e.g. ``http://127.0.0.1:8080`` (``/cds-services`` may be added)."""

    def __init__(self, base_url: str, timeout: float = SERVICE_TIMEOUT_S) -> None:
        base = base_url.rstrip("/")
        if base.endswith("/cds-services"):
            base = base[: -len("/cds-services")]
        if not base.startswith(("http://", "https://")):
            raise InputError(f"--service-url must be an http(s) URL, got {base_url!r}")
        self.base = base
        self.label = base
        self.timeout = timeout
        self._session = requests.Session()

    def discovery(self) -> Answer:
        return self._exchange("GET", f"{self.base}/cds-services", None)

    def health(self) -> Answer:
        return self._exchange("GET", f"{self.base}/health", None)

    def call(self, service_id: str, body: Mapping[str, Any]) -> Answer:
        return self._exchange("POST", f"{self.base}/cds-services/{service_id}", body)

    def _exchange(self, method: str, url: str, body: Mapping[str, Any] | None) -> Answer:
        response = send(
            self._session,
            method,
            url,
            timeout=self.timeout,
            peer=f"the service at {self.base}",
            error=ServiceError,
            json=body,
            allow_redirects=False,
        )
        return Answer(
            response.status_code, json_or_text(response), response.headers.get("X-Request-Id")
        )

    def close(self) -> None:
        self._session.close()


class InProcessService(Closing):
    """The service itself, in development mode, with a temporary database.

    Settings come from the defaults and ``config_file`` (the same TOML file ``serve``
    reads, e.g. for rule thresholds), never from ``SPINE_CDS_*`` variables: a tool run
    must not pick up a deployment's database or secrets from the shell.
    """

    label = "the in-process service"

    def __init__(self, config_file: str | None = None) -> None:
        from cds_service.app import create_app
        from cds_service.runtime import build_runtime

        self._tmp = tempfile.TemporaryDirectory(prefix="spine-cds-tool-")
        try:
            settings = load_settings(
                environ={},
                config_file=config_file,
                overrides={
                    "dev_mode": True,
                    "database_path": str(Path(self._tmp.name) / "spine-cds.sqlite3"),
                },
            )
            self._runtime = build_runtime(settings)
        except (SettingsError, ValueError) as exc:
            self._tmp.cleanup()
            raise InputError(f"configuration error: {exc}") from None
        self._client = create_app(settings, self._runtime).test_client()

    def discovery(self) -> Answer:
        response = self._client.get("/cds-services")
        return Answer(response.status_code, response.get_json(silent=True))

    def health(self) -> Answer:
        response = self._client.get("/health")
        return Answer(response.status_code, response.get_json(silent=True))

    def call(self, service_id: str, body: Mapping[str, Any]) -> Answer:
        response = self._client.post(f"/cds-services/{service_id}", json=dict(body))
        parsed = response.get_json(silent=True)
        return Answer(response.status_code, parsed if parsed is not None else response.text)

    def warm_up(self) -> None:
        """The warm-up a gunicorn worker takes (``cds_service.warmup``: each service once,
        through the pipeline of a real call), so that a timed call after it measures the
        service, not this process's one-off costs of a first call: imports done on first
        use, schemas, value sets and rule tables loaded and cached. Nothing of it is
        shown or recorded."""
        from cds_service.warmup import warm_up

        warm_up(self._runtime)

    def close(self) -> None:
        self._runtime.close()  # stores and JWT verifier too, not only the FHIR pool
        self._tmp.cleanup()
