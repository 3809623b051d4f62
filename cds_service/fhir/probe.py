"""A worker's first connection to a FHIR server, bounded as a call's fetches are.

The warm-up (``cds_service.warmup``) GETs the CapabilityStatement (``metadata``, which
FHIR servers answer without a token) of each FHIR server the trusted clients may name,
so that the name lookup, TCP and TLS are paid before a call's budget starts. Only that
the server answered matters, and a worker takes no connection until its warm-up ends:
a listed server that is slow, huge or hostile must not hold it. A plain GET did (an
outside attack review): a 1 GiB gzip answer was decoded whole, taking both workers to
2 GB, and a server dripping a byte every 100 ms kept the instance out of service for
70 s. So, as for a call's fetches (``exchange``):

- the whole exchange ends by one deadline, the connect and read timeouts after it
  started (0.6 s by default): the body is read in small decoded pieces with the
  deadline checked between them (``exchange.decoded_pieces``), and a socket still
  waiting for the headers then is shut down (``deadline._SocketWatch``);
- at most ``PROBE_BYTES`` of the decoded body are read, counted and dropped, never kept.
  A body read to its end leaves its connection in the pool (the point of the warm-up);
  a CapabilityStatement that lists every resource type and search parameter runs to a
  few hundred KB, which the cap leaves room for.

What happened is said in words for the log; nothing is raised.
"""

from __future__ import annotations

import threading
import time

import requests
import urllib3.exceptions

from cds_service.fhir.deadline import _IN_FLIGHT, _SocketWatch
from cds_service.fhir.exchange import PastDeadline, decoded_pieces
from cds_service.fhir.session import FhirSession
from cds_service.fhir.settings import FhirSettings
from cds_service.fhir.urls import server_url_problem

PROBE_BYTES = 1024 * 1024


def open_connection(session: FhirSession, settings: FhirSettings, fhir_server: str) -> str:
    """GET ``fhir_server``'s ``metadata`` through ``session`` within the connect and read
    timeouts of ``settings``, reading at most ``PROBE_BYTES`` of it; what happened, in
    words that start with ``connected`` when the server answered in full and in time."""
    problem = server_url_problem(fhir_server)
    if problem is not None:
        return problem
    allowed = settings.connect_timeout_seconds + settings.read_timeout_seconds
    deadline = time.monotonic() + allowed
    watch = _SocketWatch()
    timer = threading.Timer(allowed, watch.abort)  # ends headers that never end
    timer.daemon = True
    timer.start()
    status: int | None = None
    _IN_FLIGHT.watch = watch
    try:
        with session.get_streamed(
            fhir_server.rstrip("/") + "/metadata",
            {"Accept": "application/fhir+json"},
            (settings.connect_timeout_seconds, settings.read_timeout_seconds),
        ) as response:
            status = response.status_code
            size = 0
            for piece in decoded_pieces(response, deadline):
                size += len(piece)
                if size > PROBE_BYTES:
                    return (
                        f"answered {status} with metadata over {PROBE_BYTES // 1024} KiB; "
                        "not read further, the connection closed"
                    )
    except PastDeadline:
        return f"answered {status}, but its metadata did not end within {allowed:g} s; given up"
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        error = type(exc).__name__
        if status is not None:
            return f"answered {status}, but its metadata stopped coming ({error})"
        if time.monotonic() >= deadline or isinstance(exc, requests.ReadTimeout):
            return f"no answer within {allowed:g} s ({error})"
        return f"no connection ({error})"
    finally:
        _IN_FLIGHT.watch = None
        timer.cancel()
    return f"connected (metadata answered {status})"
