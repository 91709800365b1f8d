"""`Closing`: a resource that a ``with`` block hands out and closes at its end."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closing:
    """Base of resources with a ``close()``: ``with`` gives the resource and closes it after.

    A subclass whose ``with`` must first open something overrides ``__enter__`` alone.

    Examples
    --------
    >>> class Door(Closing):
    ...     shut = False
    ...
    ...     def close(self) -> None:
    ...         self.shut = True
    >>> with Door() as door:
    ...     door.shut
    False
    >>> door.shut
    True
    """

    def close(self) -> None:
        """Release the resource; the subclass says how."""
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
