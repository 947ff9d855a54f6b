"""One clip's files against the release: bytes, then format and clean decoding, then content.

For each :class:`builder.release.verify_exports.Item` of a clip:

* the release's SHA-256 matches: identical, nothing more to check;
* otherwise the format is compared with the release's record (audio:
  container, codec, sample rate, channels, samples; frames: container, size,
  colour channels), decoder complaints count as corruption (a WAV header that
  contradicts its data, a JPEG that FFmpeg's strict decode rejects), and the
  decoded content is compared with the fingerprints;
* masks are compared pixel for pixel with the release's (after the 127
  threshold that lossy segment JPEGs need), labels with the release's class
  and split.

Every disagreement is a *finding*: the file, the field, the expected and the
actual value, and a one-line message. A clip is ``different`` with any
finding, ``missing`` when a file is absent, ``equivalent`` when only bytes
differ, ``identical`` otherwise.
"""
from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np

from builder.release.fingerprint import (
    FingerprintError,
    audio_fingerprint,
    audio_similarity,
    frame_fingerprint,
    frame_similarity,
)
from builder.release.id_manifest import AUDIO_FORMAT_COLUMNS, FRAME_FORMAT_COLUMNS, FULL_FORMAT_COLUMNS
from builder.release.media_format import audio_format, image_format, read_bytes, structure_errors
from builder.release.verify_exports import Item

HASH_COLUMNS = {"audio": "audio_sha256", "frame": "frame_sha256", "frame_full": "frame_full_sha256"}
# The full frame's container and colour channels are recorded once, with the square frame's.
FULL_FROM_FRAME = {"frame_container": "container", "frame_channels": "channels"}


def finding(role: str, name: str, field: str, expected: Any, actual: Any, message: str | None = None
            ) -> dict[str, Any]:
    text = message or f"{role} {field}: expected {expected}, got {actual}"
    return {"file": name, "role": role, "field": field, "expected": expected, "actual": actual, "message": text}


def _recorded(row: dict[str, str], columns: dict[str, str]) -> dict[str, Any]:
    """The release's format record for one file: format key -> value (ints as ints); empty when not recorded."""
    out: dict[str, Any] = {}
    for column, key in columns.items():
        value = row.get(column, "")
        if value != "":
            out[key] = int(value) if value.lstrip("-").isdigit() else value
    return out


def expected_format(role: str, row: dict[str, str]) -> dict[str, Any]:
    if role == "audio":
        return _recorded(row, AUDIO_FORMAT_COLUMNS)
    if role == "frame":
        return _recorded(row, FRAME_FORMAT_COLUMNS)
    return {**_recorded(row, FULL_FROM_FRAME), **_recorded(row, FULL_FORMAT_COLUMNS)}


def _format_findings(role: str, item: Item, expected: dict[str, Any], actual: dict[str, Any]) -> list[dict]:
    if "error" in actual:
        field = "header" if role == "audio" else "decode"
        return [finding(role, item.name, field, "a readable file", actual["error"],
                        f"{role} {field}: {actual['error']}")]
    return [finding(role, item.name, key, value, actual.get(key)) for key, value in expected.items()
            if actual.get(key) != value]


def corrupt(role: str, item: Item, errors: list[str]) -> dict[str, Any]:
    text = "; ".join(errors[:3])
    return finding(role, item.name, "decode", "no decoder errors", text,
                   f"{role.replace('_', ' ')} is corrupt (decoder: {text})")


def check_media(role: str, item: Item, row: dict[str, str], reference: tuple[Any, np.ndarray],
                thresholds: dict[str, float], result: dict[str, Any]) -> tuple[bool, list[dict], bytes | None]:
    """(identical?, findings, JPEG bytes still to decode with FFmpeg) of one audio / frame / full-frame item.

    Measurements go into ``result``. The FFmpeg decode is left to the caller, which runs it once for all of a
    clip's JPEGs (:func:`builder.release.media_format.ffmpeg_decode_errors`).
    """
    data = read_bytes(item.source)  # type: ignore[arg-type]
    if hashlib.sha256(data).hexdigest() == row.get(HASH_COLUMNS[role], ""):
        return True, [], None
    expected = expected_format(role, row)
    found: list[dict] = []
    if role == "audio":
        actual = audio_format(data)
        found += _format_findings(role, item, expected, actual)
        try:
            printed = audio_fingerprint(data)
            corr = audio_similarity(reference[0].logmel, printed.logmel)
            drift = abs(printed.seconds - reference[0].seconds)
            result.update(audio_correlation=round(corr, 4), audio_duration_diff=round(drift, 4))
            if corr < thresholds["audio_correlation"]:
                found.append(finding(role, item.name, "audio_correlation", f">= {thresholds['audio_correlation']}",
                                     round(corr, 4), f"audio log-mel correlation {corr:.3f} < "
                                                     f"{thresholds['audio_correlation']}"))
            if drift > thresholds["audio_duration"]:
                found.append(finding(role, item.name, "audio_duration", f"within {thresholds['audio_duration']} s",
                                     round(drift, 4), f"audio duration differs by {drift:.3f} s > "
                                                      f"{thresholds['audio_duration']}"))
        except FingerprintError as exc:
            found.append(finding(role, item.name, "decode", "decodable audio", str(exc), f"unreadable audio: {exc}"))
        return False, found, None
    actual = image_format(data)
    found += _format_findings(role, item, expected, actual)
    if "error" in actual:
        return False, [finding(role, item.name, "decode", "an image", actual["error"],
                               f"unreadable {role.replace('_', ' ')}: {actual['error']}")], None
    container = str(actual.get("container"))
    errors = structure_errors(data, container)
    if errors:
        found.append(corrupt(role, item, errors))
    try:
        corr, mad = frame_similarity(reference[1], frame_fingerprint(data, crop_square=role == "frame_full"))
        prefix = "frame" if role == "frame" else "frame_full"
        result.update({f"{prefix}_correlation": round(corr, 4), f"{prefix}_mad": round(mad, 2)})
        if corr < thresholds["frame_correlation"]:
            found.append(finding(role, item.name, "frame_correlation", f">= {thresholds['frame_correlation']}",
                                 round(corr, 4),
                                 f"{prefix} correlation {corr:.3f} < {thresholds['frame_correlation']}"))
        if mad > thresholds["frame_mad"]:
            found.append(finding(role, item.name, "frame_mad", f"<= {thresholds['frame_mad']}", round(mad, 2),
                                 f"{prefix} mean abs difference {mad:.1f} > {thresholds['frame_mad']}"))
    except FingerprintError as exc:
        found.append(finding(role, item.name, "decode", "a decodable image", str(exc), f"unreadable frame: {exc}"))
    return False, found, (data if container == "jpeg" and not errors else None)


def check_mask(item: Item, expected: np.ndarray | None) -> list[dict]:
    """An exported mask (PNG 0/255, or the official layout's grey JPEG) against the release's."""
    from PIL import Image, UnidentifiedImageError

    if expected is None:
        return [finding("mask", item.name, "mask", "no mask (the release has none)", "a mask")]
    try:
        with Image.open(io.BytesIO(read_bytes(item.source))) as image:  # type: ignore[arg-type]
            got = np.asarray(image.convert("L")) > 127
    except (UnidentifiedImageError, OSError) as exc:
        return [finding("mask", item.name, "decode", "an image", str(exc), f"unreadable mask: {exc}")]
    if got.shape != expected.shape:
        return [finding("mask", item.name, "size", f"{expected.shape[1]}x{expected.shape[0]}",
                        f"{got.shape[1]}x{got.shape[0]}")]
    wrong = int((got != expected).sum())
    if wrong:
        return [finding("mask", item.name, "pixels", "the release's mask", f"{wrong} pixel(s) differ",
                        f"mask differs from the release's in {wrong} pixel(s)")]
    return []


def check_labels(item: Item, row: dict[str, str]) -> list[dict]:
    labels = item.source if isinstance(item.source, dict) else {}
    found = []
    for key, value in labels.items():
        want = {"class": row["class"], "cls": row["class"], "split": row["split"], "json_split": row["split"],
                "json_clip_id": row["clip_id"]}.get(key)
        if value == "unreadable":
            found.append(finding("labels", item.name, key, "readable", value))
        elif want is not None and value != want:
            found.append(finding("labels", item.name, key, want, value))
    return found
