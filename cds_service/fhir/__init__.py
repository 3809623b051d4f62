"""The patient's data from prefetch or the EHR's FHIR server, within a time budget.

Modules, along the data flow: ``prefetch`` (templates, the prefetch check, what to
fetch), ``client`` (the fetch), ``bundles`` and ``urls`` (pure reading and URL
safety, tested without threads or sockets), ``deadline`` (the socket machinery),
``probe`` (a worker's first connection to each listed server, bounded in the same ways),
``failures`` (why an answer or a connection failed, in client-safe words).


CDS Hooks services should answer in about half a second, and a hung or slow FHIR server
must not hold a request (or a worker) beyond that. Hence:

- one ``requests.Session`` (connection pooling) and one thread pool, both made once at
  startup and shared by all requests; the missing queries of one invocation run
  concurrently;
- every HTTP exchange of one invocation (pages included) must end by a single
  ``time.monotonic()`` deadline: timeouts are cut to the time left, bodies are read in
  small pieces with the deadline checked between them, and the caller waits on the
  futures only for the time left, abandoning late ones; a socket still waiting for the
  answer's headers when its fetch is abandoned is shut down, because a server that drips
  header bytes slower than the read timeout would hold a fetch thread (and so every later
  invocation of this worker) for as long as it likes;
- search paging follows ``next`` links up to ``Settings.fhir_max_pages`` and stops on a
  link seen before; a ``next`` link to another host is never followed (the access token
  would go with it); redirects are not followed for the same reason. "Another host" is
  judged by the parser that connects (urllib3's), and a URL that two parsers could read
  differently (a backslash, userinfo, percent-escapes or non-ASCII in the authority,
  whitespace or control characters anywhere) is never contacted at all: a paging link
  like ``http://b:1\\@a:2/`` reads as host ``a`` to ``urlsplit`` but connects to ``b``;
- failures become ``FhirError`` values with a reason that is safe to show the client. The
  access token is never logged, stored or put in a message, and log lines name the key,
  resource type and host, never the query (it carries the patient id).

Resources are handed on as they arrived, not parsed with fhir.resources (the mappers'
job, done selectively, because parsing everything costs far more than the rest of a
request): JSON dicts, except the Observations of a prefetched search that the typed
request decoder (``cds_service/hookbody.py``) left as bytes, which ``unwrap_bundle``
reads into ``ObservationBytes``: a msgspec Struct of only the elements the rules use
(``fhir_mappers/wire.py``) with the bytes kept, or a dict when the shape is unusual.
"""

from __future__ import annotations

from cds_service.fhir.bundles import (
    FetchResult,
    FhirError,
    FirstPage,
    Problem,
    QueryShape,
    next_link,
    query_shape,
    unwrap_bundle,
)
from cds_service.fhir.client import FhirClient
from cds_service.fhir.urls import connect_origin, server_url_problem

__all__ = [
    "FetchResult",
    "FhirClient",
    "FhirError",
    "FirstPage",
    "Problem",
    "QueryShape",
    "connect_origin",
    "next_link",
    "query_shape",
    "server_url_problem",
    "unwrap_bundle",
]
