"""A body the JSON parser refuses is refused with the parser's reason and where it
stopped; "nested deeper than ... levels" only when the nesting is what is wrong.

The depth of a text is worked out from its brackets (``jsonbody.max_depth``), which
means nothing for text that is not JSON: an unclosed ``{`` read as ever deeper.
"""

from __future__ import annotations

import json
import uuid

import pytest
from flask.testing import FlaskClient

from cds_service.errors import ApiError
from cds_service.jsonbody import parse_json_object
from tests.builders import EMPTY_PREFETCH, SELECT_ID, hook_request, service_request

HOOK = f"/cds-services/{SELECT_ID}"
FEEDBACK = f"/cds-services/{SELECT_ID}/feedback"

BROKEN = [
    # (body, what the message must say)
    (b'{"hook":"order-select"', "unexpected end of data: line 1 column 23 (char 22)"),
    (b'{"a": [1, 2}', "expected ',' or ']': line 1 column 12 (char 11)"),
    (b"{", "unexpected end of data: line 1 column 2 (char 1)"),
    (b"]", "line 1 column 1 (char 0)"),
    (b"[" * 100, "unexpected end of data"),  # deeper than 64, but cut short first
]


def _object_nesting(depth: int) -> bytes:
    """A JSON object whose containers nest ``depth`` levels."""
    return b'{"a":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


@pytest.mark.parametrize("path", [HOOK, FEEDBACK])
@pytest.mark.parametrize(
    ("raw", "reason"), BROKEN, ids=["truncated", "unbalanced", "open-brace", "close", "open-100"]
)
def test_broken_json_is_refused_with_the_parsers_reason(
    client: FlaskClient, path: str, raw: bytes, reason: str
) -> None:
    response = client.post(path, data=raw, content_type="application/json")
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_json"
    assert body["message"].startswith("the request body is not valid JSON: "), body
    assert reason in body["message"]
    assert "nested deeper" not in body["message"]


@pytest.mark.parametrize(
    ("raw", "limit", "words"),
    [
        # valid JSON, deeper than the service's limit
        (_object_nesting(65), 64, "nested deeper than 64 levels"),
        # past the parser's own limit (1024): the service's limit is named
        (_object_nesting(2000), 64, "nested deeper than 64 levels"),
        (b'{"a":' + b"[" * 2000, 64, "nested deeper than 64 levels"),
        # a limit set above the parser's: the parser's limit is the one that held
        (_object_nesting(2000), 1500, "nested deeper than 1024 levels"),
    ],
    ids=["65", "2000", "2000-unclosed", "limit-above-the-parsers"],
)
def test_nesting_is_named_when_it_is_what_is_wrong(raw: bytes, limit: int, words: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse_json_object(raw, limit)
    assert refused.value.status == 400
    assert words in refused.value.message
    # one code for one problem, however deep (an integration tester saw two)
    assert refused.value.error == "invalid_request"


def test_a_utf8_byte_order_mark_before_the_body_is_ignored(client: FlaskClient) -> None:
    # RFC 8259 lets a parser ignore it; .NET writers send one by default
    body = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)
    raw = b"\xef\xbb\xbf" + json.dumps(body).encode()
    answer = client.post(f"/cds-services/{SELECT_ID}", data=raw, content_type="application/json")
    assert answer.status_code == 200, answer.get_json()
    entry = {
        "card": str(uuid.uuid4()),
        "outcome": "overridden",
        "outcomeTimestamp": "2026-12-06T09:00:00Z",
    }
    raw = b"\xef\xbb\xbf" + json.dumps({"feedback": [entry]}).encode()
    answer = client.post(
        f"/cds-services/{SELECT_ID}/feedback", data=raw, content_type="application/json"
    )
    assert answer.get_json() == {"stored": 1, "duplicates": 0}
    # only at the start: one inside the text is not JSON
    answer = client.post(
        f"/cds-services/{SELECT_ID}", data=b" \xef\xbb\xbf{}", content_type="application/json"
    )
    assert answer.status_code == 400
