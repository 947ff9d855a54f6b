"""Errors that name the file, line and field a user has to fix."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class LlinetError(Exception):
    """Base class for errors reported to the user without a traceback."""


class InputError(LlinetError):
    """Bad input: names file, 1-based line and field when known."""

    def __init__(self, message: str, *, file: str | os.PathLike[str] | None = None,
                 line: int | None = None, field: str | None = None) -> None:
        self.file = os.fspath(file) if file is not None else None
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


def read_json_file(path: str | Path, what: str = "file") -> Any:
    """Parse a JSON file; a missing or malformed one is an :class:`InputError` naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found", file=path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid JSON (not UTF-8 text: {exc.reason})", file=path) from None
