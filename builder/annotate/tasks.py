"""Export the images still to annotate in forms CVAT, Label Studio and LabelMe open.

``export_tasks`` writes into one folder::

    images/<clip_id>.jpg          the square frames, named by clip id (hard links where possible)
    images.txt                    absolute paths of those images, one per line
    cvat_coco.json                COCO with the images and categories, no annotations
                                  (CVAT: create a task from images/, then Upload annotations -> COCO 1.0)
    cvat_labels.json              the task's labels for CVAT's label constructor ("Raw" tab)
    label_studio_tasks.json       Label Studio tasks: {"data": {"image": URL, "clip_id", "class"}}
    label_studio_config.xml       labeling config: PolygonLabels over the classes (COCO export works)
    labels.txt                    class names for `labelme images/ --labels labels.txt --nodata`

Every tool then saves work that ``annotate import`` reads: LabelMe JSON beside
the images, CVAT's "COCO 1.0" export, Label Studio's "COCO" export. Naming
every image ``<clip_id>.jpg`` is what ties the tools' files back to clips.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from xml.sax.saxutils import quoteattr

from builder.annotate.coco import AnnotationContext, MaskTarget, image_id_for_clip, new_annotations
from builder.errors import InputError
from builder.io.atomic import atomic_write_json, atomic_write_text

LABEL_STUDIO_PREFIX = "/data/local-files/?d="
IMAGES_DIR = "images"


def export_tasks(context: AnnotationContext, clip_ids: list[str], out_dir: str | os.PathLike, *,
                 url_prefix: str = LABEL_STUDIO_PREFIX) -> dict[str, Path]:
    """Write the task files for ``clip_ids`` (each checked as a mask target); returns name -> path."""
    if context.root is None:
        raise InputError("exporting tasks needs the media root (the frames are copied)")
    if not clip_ids:
        raise InputError("no images to annotate (all masked-split clips already have masks?)")
    out = Path(out_dir)
    targets = [context.target(c) for c in sorted(clip_ids)]
    images = out / IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)
    for target in targets:
        _link_or_copy(context.root / target.file_name, images / f"{target.clip_id}.jpg")
    classes = sorted({t.class_name for t in targets}, key=lambda n: next(
        c["id"] for c in context.categories if c["name"] == n))
    paths = {
        "images.txt": out / "images.txt",
        "cvat_coco.json": out / "cvat_coco.json",
        "cvat_labels.json": out / "cvat_labels.json",
        "label_studio_tasks.json": out / "label_studio_tasks.json",
        "label_studio_config.xml": out / "label_studio_config.xml",
        "labels.txt": out / "labels.txt",
    }
    atomic_write_text(paths["images.txt"], "".join(f"{(images / f'{t.clip_id}.jpg').resolve()}\n" for t in targets))
    atomic_write_json(paths["cvat_coco.json"], cvat_coco(context, targets))
    atomic_write_json(paths["cvat_labels.json"], [{"name": n, "type": "polygon", "attributes": []} for n in classes])
    atomic_write_json(paths["label_studio_tasks.json"], label_studio_tasks(targets, url_prefix))
    atomic_write_text(paths["label_studio_config.xml"], label_studio_config(classes))
    atomic_write_text(paths["labels.txt"], "".join(f"{n}\n" for n in classes))
    return paths


def cvat_coco(context: AnnotationContext, targets: list[MaskTarget]) -> dict:
    coco = new_annotations(context.categories, description="INSTRUMENT-32CLASS images to annotate")
    coco["images"] = [{"id": image_id_for_clip(t.clip_id), "file_name": f"{t.clip_id}.jpg", "width": t.width,
                       "height": t.height, "clip_id": t.clip_id, "class": t.class_name, "split": t.split}
                      for t in targets]
    return coco


def label_studio_tasks(targets: list[MaskTarget], url_prefix: str = LABEL_STUDIO_PREFIX) -> list[dict]:
    return [{"data": {"image": f"{url_prefix}{IMAGES_DIR}/{t.clip_id}.jpg", "clip_id": t.clip_id,
                      "class": t.class_name}} for t in targets]


def label_studio_config(class_names: list[str]) -> str:
    labels = "\n".join(f"    <Label value={quoteattr(n)}/>" for n in class_names)
    return ("<View>\n"
            "  <Header value=\"$clip_id: outline the sounding $class\"/>\n"
            "  <Image name=\"image\" value=\"$image\" zoom=\"true\"/>\n"
            "  <PolygonLabels name=\"label\" toName=\"image\" strokeWidth=\"2\" opacity=\"0.4\">\n"
            f"{labels}\n"
            "  </PolygonLabels>\n"
            "</View>\n")


def _link_or_copy(source: Path, dest: Path) -> None:
    if not source.is_file():
        raise InputError("frame not found", file=source)
    if dest.exists():
        if dest.stat().st_size == source.stat().st_size and _same_bytes(source, dest):
            return
        dest.unlink()
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:  # another filesystem, or links not allowed
        shutil.copyfile(source, tmp)
    os.replace(tmp, dest)


def _same_bytes(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()
