"""Row checks for the manifests that fetch, trim and frames read.

:mod:`builder.manifest.schema` checks every manifest's types (and, here,
:func:`check_times`: finite, non-negative times with ``end > start``). The
media stages also need each row to describe an AudioSet segment it can
download and name (:func:`check_segments`):

* ``clip_id`` is ``<ytid>_<start in ms>`` of the row's own ``ytid`` and
  ``start`` -- the media root names files by clip ID, so an ID that disagrees
  with its segment would pair a file with the wrong segment;
* ``end - start`` is at most AudioSet's 10 s (plus :data:`SEGMENT_TOLERANCE`).
  Shorter segments are real (a video that ends early) and accepted.

Errors name the file, the 1-based CSV line (header = line 1) and the field.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence

import pandas as pd

from builder.errors import InputError
from builder.manifest.ids import is_valid_ytid, make_clip_id

SEGMENT_SECONDS = 10.0        # AudioSet's segment length
SEGMENT_TOLERANCE = 0.5       # accepted excess, seconds (the lists round to milliseconds)


def seconds_value(raw: object, *, file: str | os.PathLike[str], line: int, field: str) -> float:
    """``raw`` as a finite number of seconds >= 0, or an :class:`InputError` naming file, line and field."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = float(raw)
    else:
        try:
            value = float(str(raw).strip()) if isinstance(raw, str) else math.nan
        except ValueError:
            raise InputError(f"expected float (seconds), got {raw!r}", file=file, line=line, field=field) from None
    if not math.isfinite(value):
        raise InputError(f"expected a finite number of seconds, got {raw!r}", file=file, line=line, field=field)
    if value < 0:
        raise InputError(f"must be >= 0 seconds (a time in the video), got {value:g}",
                         file=file, line=line, field=field)
    return value


def check_times(starts: Sequence[float], ends: Sequence[float], path: str | os.PathLike[str],
                first_line: int = 2) -> None:
    """Times already converted to floats: finite, >= 0, and ``end > start`` on every row."""
    for offset, (start, end) in enumerate(zip(starts, ends, strict=True)):
        line = first_line + offset
        seconds_value(start, file=path, line=line, field="start")
        seconds_value(end, file=path, line=line, field="end")
        if not end > start:
            raise InputError("end must be greater than start", file=path, line=line, field="end")


def check_segments(df: pd.DataFrame, path: str | os.PathLike[str], first_line: int = 2) -> None:
    """The media stages' row checks (see the module docstring); ``df`` has schema-typed columns."""
    longest = SEGMENT_SECONDS + SEGMENT_TOLERANCE
    columns = zip(df["clip_id"].tolist(), df["ytid"].tolist(), df["start"].tolist(), df["end"].tolist(),
                  strict=True)
    for offset, (clip_id, ytid, start, end) in enumerate(columns):
        line = first_line + offset
        start = seconds_value(start, file=path, line=line, field="start")
        end = seconds_value(end, file=path, line=line, field="end")
        if not end > start:
            raise InputError("end must be greater than start", file=path, line=line, field="end")
        if end - start > longest:
            raise InputError(f"segment is {end - start:.3f} s long (start {start:.3f}, end {end:.3f}); AudioSet "
                             f"segments are at most {SEGMENT_SECONDS:g} s (+{SEGMENT_TOLERANCE:g} s tolerance)",
                             file=path, line=line, field="end")
        if is_valid_ytid(ytid):
            expected = make_clip_id(ytid, start)
            if clip_id != expected:
                raise InputError(f"clip ID {clip_id!r} does not match its ytid {ytid!r} and start {start:.3f} "
                                 f"(expected {expected!r}: <ytid>_<start in ms>)",
                                 file=path, line=line, field="clip_id")


def dropped_rows(existing: pd.DataFrame, incoming: pd.DataFrame) -> list[tuple[int, str]]:
    """(CSV line in ``existing``, clip ID) of each row of ``existing`` that ``incoming`` lacks."""
    keep = set(incoming["clip_id"].tolist())
    return [(offset + 2, clip_id) for offset, clip_id in enumerate(existing["clip_id"].tolist())
            if clip_id not in keep]


def refuse_empty(incoming: pd.DataFrame, source: str) -> None:
    """A header-only input is a mistake (an export that failed, the wrong file), never a request."""
    if incoming.empty:
        raise InputError("no clip rows, only a header: nothing to fetch", file=source, line=2, field="clip_id")


def refuse_dropped_rows(existing: pd.DataFrame, incoming: pd.DataFrame, existing_path: str | os.PathLike[str],
                        incoming_source: str, flag: str) -> None:
    """An input that would drop rows of the manifest it overwrites is refused (``flag`` allows it)."""
    lost = dropped_rows(existing, incoming)
    if lost:
        line, clip_id = lost[0]
        more = f" and {len(lost) - 1} more" if len(lost) > 1 else ""
        raise InputError(f"clip {clip_id!r}{more} of the existing manifest is not in the input ({incoming_source}): "
                         f"writing it would drop {len(lost)} of {len(existing)} rows and their later-stage "
                         f"columns; pass {flag} to drop them",
                         file=existing_path, line=line, field="clip_id")
