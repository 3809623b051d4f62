"""The floor: the least a Flask app under gunicorn can do with the benchmark's request.

It reads and parses the same JSON body (``request.get_json()``, as the floor in the
design's performance notes) and answers with a static body of the same size as the
service's answer to scenario (a), read once at startup from the file named by
``BENCH_FLOOR_RESPONSE``. Served by gunicorn with the service's settings::

    BENCH_FLOOR_RESPONSE=resp.json gunicorn -w 2 -k sync bench.floor_app:app
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Response, request

app = Flask(__name__)
_RESPONSE_FILE = os.environ.get("BENCH_FLOOR_RESPONSE")
_BODY = Path(_RESPONSE_FILE).read_bytes() if _RESPONSE_FILE else b'{"cards": []}'


def set_response(body: bytes) -> None:
    """Answer ``body`` from now on (for the in-process profile)."""
    global _BODY
    _BODY = body


@app.post("/cds-services/<service_id>")
def invoke(service_id: str) -> Response:
    body = request.get_json()
    if not isinstance(body, dict):
        return Response(b'{"error": "invalid_request"}', status=400, mimetype="application/json")
    return Response(_BODY, mimetype="application/json")
