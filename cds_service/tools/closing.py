"""One context-manager shape for the tools' connections: ``with X(...) as x`` closes x."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closing:
    """A resource the tools open and must close: subclasses define ``close``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
