"""What a review request carries, checked: the error type with its HTTP status, string fields,
the ``base`` version, media paths from the manifest, and masks as row-major run lengths."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

MAX_MASK_SIDE = 8192


class ReviewError(Exception):
    """A request the page (or a script) got wrong: the HTTP status and a message for the JSON body."""

    def __init__(self, status: int, message: str, extra: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra or {}      # more keys for the JSON body (a 409's current state)


def media_relpath(value: object) -> str | None:
    """The manifest's media path if it is a usable path relative to the media root, else None."""
    text = "" if value is None else str(value).strip()
    if not text or text.lower() == "nan":
        return None
    path = Path(text)
    if path.is_absolute() or ".." in path.parts or "\\" in text or "\x00" in text:
        return None
    return text


def mask_to_runs(mask: np.ndarray) -> list[int]:
    """Row-major run lengths of a boolean mask, background first (a leading 0 if it starts with foreground)."""
    flat = np.asarray(mask, dtype=bool).ravel(order="C")
    if flat.size == 0:
        return []
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    return ([0] + runs) if flat[0] else runs


def runs_to_mask(runs: Any, width: Any, height: Any) -> np.ndarray:
    """The inverse of :func:`mask_to_runs`; a ReviewError (400) for anything malformed."""
    for name, value in (("width", width), ("height", height)):
        if type(value) is not int or not 1 <= value <= MAX_MASK_SIDE:
            raise ReviewError(400, f"'{name}' must be an integer in 1..{MAX_MASK_SIDE}, got {value!r}")
    if not isinstance(runs, list) or not all(type(r) is int and r >= 0 for r in runs):
        raise ReviewError(400, "'runs' must be a list of non-negative integers (row-major run lengths, "
                               "background first)")
    total = sum(runs)
    if total != width * height:
        raise ReviewError(400, f"'runs' cover {total} pixels but a {width}x{height} mask has {width * height}")
    values = np.arange(len(runs)) % 2 == 1
    return np.repeat(values, runs).reshape(height, width)


def base_version(body: dict) -> str | None:
    base = body.get("base")
    if base is not None and not isinstance(base, str):
        raise ReviewError(400, f"'base' must be the version string the change was based on, got {base!r}")
    return base


def field(body: dict, name: str, limit: int) -> str:
    value = body.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ReviewError(400, f"'{name}' must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise ReviewError(400, f"'{name}' is longer than {limit} characters")
    return value.strip()


def to_text(value: object) -> str:
    text = "" if value is None else str(value).strip()
    return "" if text.lower() == "nan" else text


def to_int(value: object) -> int | None:
    number = to_float(value)
    return None if number is None else int(number)


def to_float(value: object) -> float | None:
    # Concrete types only: an isinstance check against a typing Protocol (SupportsFloat) costs ~40 us,
    # a quarter of /api/state's time at 5,760 clips.
    if not isinstance(value, (str, int, float, np.integer, np.floating)):  # None, or no number in it
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(number) else number
