"""The release's tables as Croissant describes them: ``clips.csv`` columns and ``masks.csv``.

``masks.csv`` flattens the COCO file for readers that want one row per
annotated image without joining COCO's images, annotations and categories:
clip id, class (the category name), category id, the mask's size and its COCO
compressed RLE -- the union of the image's annotations, exactly the mask the
exports use. ``pycocotools.mask.decode({"size": [height, width], "counts":
rle})`` turns it back into the binary mask.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from builder.errors import InputError
from builder.io.atomic import atomic_open

MASKS_TABLE = "masks.csv"
# (column, Croissant data type, description) of the ID manifest, in file order.
CLIP_FIELDS = (
    ("YTID", "sc:Text", "YouTube video id"),
    ("start_seconds", "sc:Float", "AudioSet segment start in the video, seconds"),
    ("end_seconds", "sc:Float", "AudioSet segment end in the video, seconds"),
    ("positive_labels", "sc:Text", "AudioSet labels of the segment (MIDs, comma-joined)"),
    ("clip_id", "sc:Text", "<YTID>_<start in ms>"),
    ("class", "sc:Text", "instrument class"),
    ("mid", "sc:Text", "AudioSet MID of the class"),
    ("split", "sc:Text", "train | test | val_seen | val_unseen | test_seen"),
    ("window_offset", "sc:Float", "audio window start, seconds from the segment start"),
    ("window_seconds", "sc:Float", "audio window length, seconds"),
    ("frame_time", "sc:Float", "time of the released frame, seconds from the segment start"),
    ("released", "sc:Integer", "1 if the clip is in the release"),
    ("exclusion", "sc:Text", "why the clip is not released (empty when released)"),
    ("curation", "sc:Text", "curate's decision: accepted | rejected | auto_rejected | undecided | empty (not curated)"),
    ("curation_reason", "sc:Text", "reason recorded with the curation decision"),
    ("availability", "sc:Text", "available | unavailable | failed | not_checked, at build time"),
    ("checked_at", "sc:Text", "UTC time of the last download attempt"),
    ("has_mask", "sc:Integer", "1 if the clip has a segmentation mask"),
    ("audio_seconds", "sc:Float", "length of the built audio window, seconds"),
    ("audio_file", "sc:Text", "built audio file, relative to the media root"),
    ("audio_sha256", "sc:Text", "SHA-256 of the built audio file"),
    ("frame_file", "sc:Text", "built square frame, relative to the media root"),
    ("frame_sha256", "sc:Text", "SHA-256 of the built square frame"),
    ("frame_full_file", "sc:Text", "built full frame, relative to the media root"),
    ("frame_full_sha256", "sc:Text", "SHA-256 of the built full frame"),
    ("audio_container", "sc:Text", "container of the built audio file (wav)"),
    ("audio_codec", "sc:Text", "audio codec, FFmpeg's name (pcm_s16le: 16-bit PCM)"),
    ("audio_sample_rate", "sc:Integer", "sample rate of the built audio, Hz"),
    ("audio_channels", "sc:Integer", "channels of the built audio"),
    ("audio_samples", "sc:Integer", "samples per channel of the built audio"),
    ("frame_container", "sc:Text", "image format of the built frames (jpeg)"),
    ("frame_width", "sc:Integer", "width of the square frame, pixels"),
    ("frame_height", "sc:Integer", "height of the square frame, pixels"),
    ("frame_channels", "sc:Integer", "colour channels of the frames (3: colour, 1: grey)"),
    ("frame_full_width", "sc:Integer", "width of the full frame, pixels"),
    ("frame_full_height", "sc:Integer", "height of the full frame, pixels"),
)
MASK_FIELDS = (
    ("clip_id", "sc:Text", "the annotated clip"),
    ("class", "sc:Text", "the mask's category (the sounding instrument's class)"),
    ("category_id", "sc:Integer", "COCO category id in annotations.json"),
    ("width", "sc:Integer", "mask width, pixels (the annotated frame's)"),
    ("height", "sc:Integer", "mask height, pixels"),
    ("area", "sc:Integer", "mask pixels"),
    ("rle", "sc:Text", "COCO compressed RLE counts of the mask (size = [height, width])"),
)


def masks_table(annotations: Path) -> pd.DataFrame:
    """One row per annotated image of a COCO file (see the module docstring), sorted by clip id."""
    from builder.annotate.coco import encode_mask, rle_area_bbox
    from builder.export.masks import load_masks

    index = load_masks(annotations)
    rows = []
    for clip_id in sorted(c for c in index.images if c in index):
        image = index.images[clip_id]
        categories = sorted({a["category_id"] for a in index.annotations[image["id"]]})
        if len(categories) != 1:  # one frame, one sounding instrument: what every export assumes too
            raise InputError(f"clip {clip_id}: its masks have {len(categories)} categories {categories}, "
                             "expected one", file=annotations, field="category_id")
        rle = encode_mask(index.mask(clip_id))
        rows.append({"clip_id": clip_id, "class": str(index.categories[categories[0]].get("name", "")),
                     "category_id": categories[0],
                     "width": int(image["width"]), "height": int(image["height"]),
                     "area": rle_area_bbox(rle)[0], "rle": rle["counts"]})
    return pd.DataFrame(rows, columns=[name for name, _, _ in MASK_FIELDS])


def write_masks_table(annotations: Path, path: Path) -> int:
    """Write ``masks.csv``; returns its row count."""
    table = masks_table(annotations)
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        table.to_csv(handle, index=False, lineterminator="\n")
    return len(table)
