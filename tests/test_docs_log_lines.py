"""Every request line the docs show has the shape the service writes.

An outside review found docs/deployment.md's sample stale (``cds_service: request ...
request_id=... hook_instance=...``, the request id moved in front of the message long
ago) while integration.md showed the real one. The shape is taken from a line the
service writes: a hook call through the app, formatted as the plain log format formats it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from cds_service.logs import PlainFormatter
from tests.builders import EMPTY_PREFETCH, SELECT_ID, hook_request, medication_request

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# a line's level, process, logger and request id: what a sample may start from (the
# time is left out of some)
HEAD = re.compile(r"(DEBUG|INFO|WARNING|ERROR) \[\d+\] (\S+) request_id=[^:\s]+: ")


def real_line(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> str:
    body = hook_request("order-select", [medication_request("m1")], prefetch=EMPTY_PREFETCH)
    with caplog.at_level(logging.INFO, logger="cds_service"):
        assert client.post(f"/cds-services/{SELECT_ID}", json=body).status_code == 200
    (record,) = [r for r in caplog.records if r.getMessage().startswith("request ")]
    return PlainFormatter().format(record)


def sample_lines() -> list[tuple[str, str]]:
    return [
        (f"{path.relative_to(ROOT)}:{number}", line.strip().strip("`"))
        for path in DOCS
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if " request method=" in line
    ]


def test_every_sample_request_line_has_the_real_lines_shape(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    real = real_line(client, caplog)
    head = HEAD.search(real)
    assert head is not None, real
    fields = re.findall(r" (\w+)=", real[head.end() :])  # method ... hook_instance decision
    common = fields[: fields.index("hook_instance") + 1]  # every request line has these
    samples = sample_lines()
    assert len(samples) >= 3
    for where, sample in samples:
        found = HEAD.search(sample)
        assert found is not None and found.group(2) == head.group(2), (where, sample, real)
        message = sample[found.end() :]
        assert message.startswith("request "), (where, sample)
        said = re.findall(r" (\w+)=", message)
        assert said[: len(common)] == common, (where, sample, real)
