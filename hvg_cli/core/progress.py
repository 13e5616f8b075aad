"""How library code reports progress and notes without knowing about terminals.

The CLI passes a rich-backed Reporter; library default is `SILENT`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Task(Protocol):
    def advance(self, n: int = 1) -> None: ...


class Reporter(Protocol):
    def task(self, description: str, total: int | None, unit: str = "frames") -> AbstractContextManager[Task]: ...

    def note(self, message: str) -> None: ...


class _NullTask:
    def advance(self, n: int = 1) -> None:
        pass


class SilentReporter:
    """Reports nothing; collects notes so tests can read them."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    @contextmanager
    def task(self, description: str, total: int | None, unit: str = "frames") -> Iterator[Task]:
        yield _NullTask()

    def note(self, message: str) -> None:
        self.notes.append(message)


SILENT = SilentReporter()
