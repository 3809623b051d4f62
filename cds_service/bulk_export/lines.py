"""Counting the lines of an NDJSON file as it streams in, and telling whether it is whole."""

from __future__ import annotations

import json

from cds_service.bulk_export.results import BulkExportError

#: A last line without its newline longer than this is not parsed to check it is whole.
TAIL_CHECK_LIMIT = 16 << 20


class LineCounter:
    """Counts the non-blank lines of a stream of chunks, keeping only the unfinished
    last line; ``finish`` says whether a last line without its newline is whole JSON
    (a file cut at a line boundary cannot be told from a whole one, hence the manifest's
    ``count`` is checked too)."""

    def __init__(self) -> None:
        self.lines = 0
        self._tail = b""
        self._tail_too_long = False

    def feed(self, chunk: bytes) -> None:
        parts = (self._tail + chunk).split(b"\n")
        self._tail = parts.pop()
        self.lines += sum(1 for part in parts if part.strip())
        if parts:
            self._tail_too_long = False
        if len(self._tail) > TAIL_CHECK_LIMIT:
            self._tail = self._tail[:1]  # too long to check: keep memory bounded
            self._tail_too_long = True

    def finish(self, what: str) -> int:
        if self._tail_too_long:
            self.lines += 1
        elif self._tail.strip():
            try:
                json.loads(self._tail)
            except ValueError:
                raise BulkExportError(
                    f"{what}: cut short (its last line is not whole); nothing was kept"
                ) from None
            self.lines += 1
        return self.lines
