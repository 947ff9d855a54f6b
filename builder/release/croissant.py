"""A Croissant (MLCommons, 1.1) JSON-LD description of a release, with every file's SHA-256.

Written as a plain dict (no mlcroissant needed to write); the tests validate it
with ``mlcroissant``, read every record set through it and check the spec's
required and recommended dataset properties. Record sets:

* ``clips`` -- the ID manifest (``clips.csv``): one record per clip
  considered, with its YouTube id and times, class, split, whether it is
  released and why not, availability when the release was built, and the
  built files' names, hashes and formats (fields in :mod:`builder.release.tables`);
* ``masks`` -- one record per annotated image (``masks.csv``): clip id, class,
  COCO category id, size and the COCO compressed RLE of its mask;
* with ``--pack-media``: ``audio``, ``frames`` and ``frames_full``, each read
  from a FileSet inside the media tar: the file's path in the media root (the
  ID manifest's ``audio_file`` / ``frame_file`` / ``frame_full_file``), the
  clip id when the file is named after it, and the content (the WAV's bytes,
  or the decoded image).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.export.about import CITATION
from builder.manifest.media_root import ANNOTATIONS
from builder.manifest.membership import sha256_file
from builder.release.tables import CLIP_FIELDS, MASK_FIELDS, MASKS_TABLE

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
RECORD_SET = "clips"     # the ID manifest's record set; its fields are "clips/<column>"
MASKS = "masks"
# The spec's context (Croissant 1.1, appendix 1) with schema.org spelled as mlcroissant writes it, plus the
# 1.0 terms mlcroissant still expects (repeated, path, replace, samplingRate).
CONTEXT = {
    "@language": "en", "@vocab": "https://schema.org/", "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/", "annotation": "cr:annotation", "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs", "column": "cr:column", "conformsTo": "dct:conformsTo", "containedIn": "cr:containedIn",
    "data": {"@id": "cr:data", "@type": "@json"}, "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "equivalentProperty": "cr:equivalentProperty", "examples": {"@id": "cr:examples", "@type": "@json"},
    "excludes": "cr:excludes", "extract": "cr:extract", "field": "cr:field", "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject", "fileSet": "cr:fileSet", "format": "cr:format", "includes": "cr:includes",
    "isArray": "cr:isArray", "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath", "key": "cr:key",
    "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path", "readLines": "cr:readLines",
    "recordSet": "cr:recordSet", "repeated": "cr:repeated", "references": "cr:references", "regex": "cr:regex",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate", "sdVersion": "cr:sdVersion", "separator": "cr:separator",
    "source": "cr:source", "subField": "cr:subField", "transform": "cr:transform", "unArchive": "cr:unArchive",
}
ENCODINGS = {".csv": "text/csv", ".json": "application/json", ".png": "image/png", ".npz": "application/zip",
             ".tar": "application/x-tar", ".md": "text/markdown"}
DESCRIPTIONS = {
    "clips.csv": "ID manifest: one row per clip considered (AudioSet-style YTID, start/end seconds, window "
                 "offset, frame time, class, split, curation decision, availability at build time, the built "
                 "files' names, SHA-256 and formats).",
    ANNOTATIONS: "COCO instance annotations (RLE) of the sounding instrument in the unseen-class frames.",
    MASKS_TABLE: "One row per annotated image: clip id, class, COCO category id, size and the mask as COCO "
                 "compressed RLE (the union of the image's annotations).",
    "stats.json": "Per class and split counts, availability and durations.",
    "provenance.json": "Tool versions and every stage's recorded options.",
    "fingerprints.npz": "Per-clip content fingerprints (log-mel of the audio window, 32x32 grey frame) "
                        "used by `llinet-build verify`.",
    "class_distribution.png": "Clips per class and split.",
    "DATASET.md": "Datasheet of this release (Datasheets for Datasets).",
    "README.md": "What the release holds and how to load it with pandas, pycocotools, datasets, webdataset, "
                 "mlcroissant and the authors' code.",
}


@dataclass(frozen=True)
class MediaSet:
    """One kind of packed media file: a FileSet inside the media tar and the record set that reads it."""

    record_set: str          # the media-root folder's name: audio, frames, frames_full
    column: str              # the ID manifest column that names each file
    includes: tuple[str, ...]
    encoding: str            # MIME type
    data_type: str           # sc:AudioObject | sc:ImageObject
    named_by_clip: bool      # every file is <clip_id>.<ext>: the record set also yields the clip id
    description: str

    @property
    def file_set(self) -> str:
        return f"media-{self.record_set.replace('_', '-')}"


@dataclass(frozen=True)
class DatasetInfo:
    """The dataset-level properties (see :mod:`builder.release.metadata` for where they come from)."""

    name: str
    description: str
    version: str
    url: str
    license: str
    sd_license: str
    in_language: tuple[str, ...]
    creator: list[dict[str, Any]]
    publisher: list[dict[str, Any]]
    date_created: str
    date_modified: str
    date_published: str


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


def _field(record_set: str, name: str, data_type: str, source: dict[str, Any], description: str,
           **extra: Any) -> dict[str, Any]:
    return {"@type": "cr:Field", "@id": f"{record_set}/{name}", "name": name, "description": description,
            "dataType": data_type, "source": source, **extra}


def _table_record_set(name: str, table: str, fields: tuple[tuple[str, str, str], ...], description: str,
                      key: str, references: dict[str, str] | None = None) -> dict[str, Any]:
    references = references or {}
    out = []
    for column, data_type, text in fields:
        extra = {"references": {"field": {"@id": references[column]}}} if column in references else {}
        out.append(_field(name, column, data_type, {"fileObject": {"@id": _file_id(table)},
                                                    "extract": {"column": column}}, text, **extra))
    return {"@type": "cr:RecordSet", "@id": name, "name": name, "description": description,
            "key": {"@id": f"{name}/{key}"}, "field": out}


def _media_record_set(media: MediaSet) -> dict[str, Any]:
    source = {"fileSet": {"@id": media.file_set}}
    fields = [_field(media.record_set, "file", "sc:Text", {**source, "extract": {"fileProperty": "fullpath"}},
                     f"path in the media root (= clips/{media.column})",
                     references={"field": {"@id": f"{RECORD_SET}/{media.column}"}})]
    if media.named_by_clip:
        fields.append(_field(media.record_set, "clip_id", "sc:Text",
                             {**source, "extract": {"fileProperty": "filename"},
                              "transform": {"regex": r"^(.+)\.[^.]+$"}},
                             "clip id (the file name without its extension)",
                             references={"field": {"@id": f"{RECORD_SET}/clip_id"}}))
    what = "the WAV file's bytes" if media.data_type == "sc:AudioObject" else "the decoded image"
    fields.append(_field(media.record_set, "content", media.data_type,
                         {**source, "extract": {"fileProperty": "content"}}, what))
    return {"@type": "cr:RecordSet", "@id": media.record_set, "name": media.record_set,
            "description": media.description, "key": {"@id": f"{media.record_set}/file"}, "field": fields}


def croissant(release_dir: Path, files: list[str], info: DatasetInfo, *, media_tar: str | None = None,
              media: tuple[MediaSet, ...] = ()) -> dict[str, Any]:
    """The JSON-LD dict for the files (paths relative to ``release_dir``) of one release."""
    distribution = [file_object(release_dir, f) for f in sorted(files)]
    record_sets = [_table_record_set(RECORD_SET, "clips.csv", CLIP_FIELDS,
                                     "The ID manifest: every clip considered for the release.", "clip_id")]
    if MASKS_TABLE in files:
        record_sets.append(_table_record_set(
            MASKS, MASKS_TABLE, MASK_FIELDS, "Segmentation masks: one record per annotated image.", "clip_id",
            references={"clip_id": f"{RECORD_SET}/clip_id"}))
    if media_tar is not None:
        for item in media:
            distribution.append({"@type": "cr:FileSet", "@id": item.file_set, "name": item.file_set,
                                 "description": item.description, "containedIn": {"@id": _file_id(media_tar)},
                                 "encodingFormat": item.encoding, "includes": list(item.includes)})
            record_sets.append(_media_record_set(item))
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": info.name,
        "description": info.description,
        "conformsTo": CONFORMS_TO,
        "version": info.version,
        "creator": info.creator,
        "publisher": info.publisher,
        "dateCreated": info.date_created,
        "dateModified": info.date_modified,
        "datePublished": info.date_published,
        "license": info.license,
        "sdLicense": info.sd_license,
        "inLanguage": list(info.in_language),
        "url": info.url,
        "citeAs": CITATION,
        "keywords": ["audio-visual", "zero-shot learning", "AudioSet", "musical instruments",
                     "sound localization", "cross-modal retrieval"],
        "isBasedOn": ["https://research.google.com/audioset/", "https://LLINet.github.io"],
        "distribution": distribution,
        "recordSet": record_sets,
    }
