"""YouTube IDs and clip IDs.

Every YTID is validated here before it reaches a URL or a filesystem path: an
ID like ``../../x`` or ``-o/etc/x`` must never become part of a command line or
a path.
"""
from __future__ import annotations

import re

YTID_RE = re.compile(r"[A-Za-z0-9_-]{11}")
CLIP_ID_RE = re.compile(r"([A-Za-z0-9_-]{11})_(\d+)")


class InvalidYtidError(ValueError):
    """A string that is not an 11-character YouTube ID."""


def is_valid_ytid(ytid: object) -> bool:
    return isinstance(ytid, str) and YTID_RE.fullmatch(ytid) is not None


def validate_ytid(ytid: object) -> str:
    """Return ``ytid`` unchanged, or raise :class:`InvalidYtidError`."""
    if not is_valid_ytid(ytid):
        raise InvalidYtidError(
            f"invalid YouTube ID {ytid!r}: expected exactly 11 characters from [A-Za-z0-9_-]"
        )
    return ytid  # type: ignore[return-value]


def make_clip_id(ytid: str, start_seconds: float) -> str:
    """Clip ID ``<ytid>_<start in ms>``: unique even if one video has two segments."""
    validate_ytid(ytid)
    return f"{ytid}_{int(round(start_seconds * 1000))}"


def validate_clip_id(clip_id: object) -> str:
    """Return ``clip_id`` unchanged if it is ``<valid ytid>_<digits>``, else raise."""
    if not isinstance(clip_id, str) or CLIP_ID_RE.fullmatch(clip_id) is None:
        raise InvalidYtidError(
            f"invalid clip ID {clip_id!r}: expected <11-char YouTube ID>_<start in ms>"
        )
    return clip_id
