"""A Croissant (MLCommons) JSON-LD description of a release, with every file's SHA-256.

Written as a plain dict (no mlcroissant needed to write); the tests validate it
with ``mlcroissant`` and read the ``clips`` record set through it. The
``clips`` record set is the ID manifest: one record per clip considered, with
its YouTube id and times, class, split, whether it is released, why not, and
its availability when the release was built.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.manifest.media_root import ANNOTATIONS, AUDIO_DIR, FRAMES_DIR
from builder.manifest.membership import sha256_file

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
RECORD_SET = "clips"     # the ID manifest's record set; its fields are "clips/<column>"
CONTEXT = {
    "@language": "en", "@vocab": "https://schema.org/", "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/", "citeAs": "cr:citeAs", "column": "cr:column",
    "conformsTo": "dct:conformsTo", "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"}, "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract", "field": "cr:field",
    "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject", "fileSet": "cr:fileSet",
    "format": "cr:format", "includes": "cr:includes", "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath", "key": "cr:key", "md5": "cr:md5", "parentField": "cr:parentField",
    "path": "cr:path", "recordSet": "cr:recordSet", "references": "cr:references", "regex": "cr:regex",
    "repeated": "cr:repeated", "replace": "cr:replace", "samplingRate": "cr:samplingRate",
    "separator": "cr:separator", "source": "cr:source", "subField": "cr:subField", "transform": "cr:transform",
}
ENCODINGS = {".csv": "text/csv", ".json": "application/json", ".png": "image/png", ".npz": "application/zip",
             ".tar": "application/x-tar", ".md": "text/markdown"}
CITATION = ("@inproceedings{jia2020look, title={Look, Listen and Infer}, author={Jia, Ruijian and Wang, Xinsheng "
            "and Pang, Shanmin and Zhu, Jihua and Xue, Jianru}, booktitle={Proceedings of the 28th ACM "
            "International Conference on Multimedia}, year={2020}}")
DESCRIPTIONS = {
    "clips.csv": "ID manifest: one row per clip considered (AudioSet-style YTID, start/end seconds, window "
                 "offset, frame time, class, split, curation decision, availability at build time).",
    ANNOTATIONS: "COCO instance annotations (RLE) of the sounding instrument in the test frames.",
    "stats.json": "Per class and split counts, availability and durations.",
    "provenance.json": "Tool versions and every stage's recorded options.",
    "fingerprints.npz": "Per-clip content fingerprints (log-mel of the audio window, 32x32 grey frame) "
                        "used by `llinet-build verify`.",
    "class_distribution.png": "Clips per class and split.",
}
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
)


def _file_id(name: str) -> str:
    return name.replace("/", "-")


def file_object(release_dir: Path, name: str, description: str | None = None) -> dict[str, Any]:
    path = release_dir / name
    out = {"@type": "cr:FileObject", "@id": _file_id(name), "name": name, "contentUrl": name,
           "encodingFormat": ENCODINGS.get(path.suffix, "application/octet-stream"),
           "contentSize": f"{path.stat().st_size} B", "sha256": sha256_file(path)}
    if description or name in DESCRIPTIONS:
        out["description"] = description or DESCRIPTIONS[name]
    return out


def croissant(release_dir: Path, files: list[str], *, name: str, version: str, date: str, url: str,
              license_url: str, description: str, media_tar: str | None = None) -> dict[str, Any]:
    """The JSON-LD dict for the files (paths relative to ``release_dir``) of one release."""
    distribution = [file_object(release_dir, f) for f in sorted(files)]
    if media_tar is not None:
        distribution.append({"@type": "cr:FileSet", "@id": "media-audio", "name": "media-audio",
                             "containedIn": {"@id": _file_id(media_tar)}, "encodingFormat": "audio/wav",
                             "includes": f"{AUDIO_DIR}/*.wav",   # media-root paths
                             "description": "3 s audio windows as built (16-bit PCM WAV)."})
        distribution.append({"@type": "cr:FileSet", "@id": "media-frames", "name": "media-frames",
                             "containedIn": {"@id": _file_id(media_tar)}, "encodingFormat": "image/jpeg",
                             "includes": f"{FRAMES_DIR}/*.jpg", "description": "Centre-square frames as built."})
    fields = [{"@type": "cr:Field", "@id": f"{RECORD_SET}/{column}", "name": column, "description": text,
               "dataType": dtype, "source": {"fileObject": {"@id": "clips.csv"}, "extract": {"column": column}}}
              for column, dtype, text in CLIP_FIELDS]
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": name,
        "description": description,
        "conformsTo": CONFORMS_TO,
        "version": version,
        "datePublished": date,
        "license": license_url,
        "url": url,
        "citeAs": CITATION,
        "keywords": ["audio-visual", "zero-shot learning", "AudioSet", "musical instruments",
                     "sound localization", "cross-modal retrieval"],
        "isBasedOn": ["https://research.google.com/audioset/", "https://LLINet.github.io"],
        "distribution": distribution,
        "recordSet": [{"@type": "cr:RecordSet", "@id": RECORD_SET, "name": RECORD_SET,
                       "description": "The ID manifest: every clip considered for the release.",
                       "key": {"@id": f"{RECORD_SET}/clip_id"}, "field": fields}],
    }
