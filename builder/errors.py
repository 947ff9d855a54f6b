"""Errors that name the file, line and field a user has to fix."""
from __future__ import annotations

from pathlib import Path


class LlinetError(Exception):
    """Base class for errors reported to the user without a traceback."""


class InputError(LlinetError):
    """Bad input: names file, 1-based line and field when known."""

    def __init__(self, message: str, *, file: str | Path | None = None,
                 line: int | None = None, field: str | None = None) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.detail = message
        where = []
        if self.file is not None:
            where.append(self.file)
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{': '.join([', '.join(where)] if where else [])}{': ' if where else ''}{message}")
