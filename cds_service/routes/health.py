"""Liveness and readiness for orchestrators, and the mode a service runs in for people.

- ``GET /health`` and ``GET /livez``: the process is up and answering (liveness). Nothing
  outside the process is touched, so a slow database never gets a worker restarted.
- ``GET /readyz``: the instance can do its work (readiness): its configuration can
  serve a call (outside development mode at least one trusted client, otherwise every
  call is refused with 401) and its stores answer (the database, and Redis when the
  replay cache is there), and the worker answering has run its warm-up (``warmup.py``;
  under gunicorn a worker takes no connection before it, so a probe waits for it). 503
  with the failing check otherwise, so a load balancer sends calls elsewhere and an
  operator sees why.

  The trusted clients' key sets (and published jku lists) are checked too (``keys``),
  each by its URL with the HTTP status or error of its fetch. One client's broken JWKS
  is reported but leaves the instance ready (every instance would fail alike, and the
  other clients' calls still pass); 503 only when no client's keys can be had at all,
  when every call would be refused. A URL is fetched here only when it never was, at
  most once per ``jwks_refresh_min_interval_seconds``: probes do not hammer an EHR.
"""

from __future__ import annotations

import logging
import time
import uuid

from flask import Blueprint, Response

from cds_service import __version__
from cds_service.routes import entrance
from cds_service.routes.responses import json_response
from cds_service.runtime import Runtime
from cds_service.stores import RedisReplayCache

log = logging.getLogger("cds_service")

blueprint = Blueprint("health", __name__)

OK = "ok"


def _liveness() -> Response:
    runtime = entrance.runtime()
    body = {
        "status": "ok",
        "version": __version__,
        "services": sorted(runtime.discovery.services),
        "devMode": runtime.settings.dev_mode,
        "shadowMode": runtime.settings.shadow_mode,
        "authentication": "disabled (development mode)"
        if runtime.settings.dev_mode
        else "required",
    }
    return json_response(body)


@blueprint.get("/health")
def health() -> Response:
    return _liveness()


@blueprint.get("/livez")
def livez() -> Response:
    return _liveness()


def _configuration(rt: Runtime) -> str:
    if rt.verifier is not None and not rt.trusted_clients:
        return "no trusted CDS clients (trusted_clients_file): every call would be refused with 401"
    return OK


def _database(rt: Runtime) -> str:
    try:
        with rt.stores.database.transaction(write=False) as tx:
            tx.query("SELECT 1")
    except Exception as exc:
        log.warning("readiness: the database did not answer error=%s", type(exc).__name__)
        return f"the {rt.stores.database.dialect} database did not answer ({type(exc).__name__})"
    return OK


def _redis(rt: Runtime) -> str | None:
    replay = rt.stores.replay
    if not isinstance(replay, RedisReplayCache):
        return None
    try:
        # The very operation a token check does, on a key no token can have, gone in 1 s.
        replay.add_if_new(f"readiness-probe:{uuid.uuid4()}", time.time() + 1)
    except Exception as exc:
        log.warning("readiness: Redis did not answer error=%s", type(exc).__name__)
        return f"Redis (the JWT replay cache) did not answer ({type(exc).__name__})"
    return OK


def _keys(rt: Runtime) -> tuple[str, bool] | None:
    """What the key sources say, and whether that alone makes the instance unready;
    None in development mode (no verifier)."""
    if rt.verifier is None:
        return None
    sources = rt.verifier.key_sources_status()
    broken = {where: why for where, why in sources.items() if why is not None}
    if not broken:
        return OK, False
    for where, why in broken.items():
        log.warning("readiness: keys cannot be had url=%s error=%s", where, why)
    said = "; ".join(f"{where}: {why}" for where, why in broken.items())
    return f"cannot fetch {said}", len(broken) == len(sources)


@blueprint.get("/readyz")
def readyz() -> Response:
    rt = entrance.runtime()
    checks = {
        "configuration": _configuration(rt),
        "database": _database(rt),
    }
    redis = _redis(rt)
    if redis is not None:
        checks["redis"] = redis
    keys = _keys(rt)
    keys_fatal = False
    if keys is not None:
        checks["keys"], keys_fatal = keys
    checks["warmUp"] = OK if rt.warm.is_set() else "this worker has not run its warm-up yet"
    failing = {
        name: why for name, why in checks.items() if why != OK and (name != "keys" or keys_fatal)
    }
    if failing:
        message = "not ready: " + "; ".join(f"{name}: {why}" for name, why in failing.items())
        body = {"error": "not_ready", "message": message, "checks": checks}
        return json_response(body, 503, {"Retry-After": "5"})
    return json_response({"status": "ready", "version": __version__, "checks": checks})
