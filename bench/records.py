"""What one domain record costs to build: frozen dataclass against frozen msgspec Struct.

The mapper builds a Measurement, a When and a Coding for every selected Observation,
hundreds per request, so the record class is on the hot path (fhir_mappers/model.py
says why it is a Struct). Both classes are timed in one process, interleaved, with
the same eleven fields as Measurement::

    .venv/bin/python -m bench.records
"""

from __future__ import annotations

import timeit
from dataclasses import dataclass

from msgspec import Struct


@dataclass(frozen=True)
class FrozenDataclass:
    reference: str
    kind: str
    value: float
    unit: str
    when: object
    code: object
    status: str
    original_value: float
    original_unit: str | None
    comparator: str | None = None
    high_sensitivity: bool = False


class FrozenStruct(Struct, frozen=True):
    reference: str
    kind: str
    value: float
    unit: str
    when: object
    code: object
    status: str
    original_value: float
    original_unit: str | None
    comparator: str | None = None
    high_sensitivity: bool = False


def build_us(cls: type) -> float:
    """Best of seven runs (the least disturbed on a shared machine), in us per record."""

    def build() -> object:
        return cls(
            reference="Observation/1",
            kind="crp",
            value=12.0,
            unit="mg/L",
            when=None,
            code=None,
            status="final",
            original_value=12.0,
            original_unit="mg/L",
        )

    return min(timeit.repeat(build, number=20_000, repeat=7)) / 20_000 * 1e6


def main() -> None:
    dataclass_us = build_us(FrozenDataclass)
    struct_us = build_us(FrozenStruct)
    print(f"frozen dataclass, 11 fields: {dataclass_us:.2f} us per record")
    print(f"frozen msgspec Struct, 11 fields: {struct_us:.2f} us per record")
    saved_ms = (dataclass_us - struct_us) * 200 / 1000
    print(f"ratio: {dataclass_us / struct_us:.1f}x; for 200 Measurements {saved_ms:.2f} ms per")
    print("request (their When and Coding records, with fewer fields, add to it)")


if __name__ == "__main__":
    main()
