"""A statement as a clinician reads it, the unit of the phrasebook's remarks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

Data = Mapping[str, Any]  # a remark's data, as the engine returns it


class Phrase(NamedTuple):
    """A statement as a clinician reads it: a sentence, and a few words for a summary."""

    message: str
    short: str


def fixed(message: str, short: str) -> Callable[[Data], Phrase]:
    """A remark whose words do not depend on its data."""
    return lambda d: Phrase(message, short)
