"""llinet-build annotate: instrument masks for the masked splits as COCO annotations (import, tasks, preview)."""
from __future__ import annotations

import argparse
from pathlib import Path

from builder.annotate.coco import (
    ANNOTATIONS_FILE,
    MASKED_SPLITS,
    AnnotationContext,
    annotations_for_clip,
    load_annotations,
    new_annotations,
    open_annotations,
    save_annotations,
)
from builder.annotate.importers import apply_items, read_coco, read_labelme, read_mask_folder
from builder.annotate.preview import contact_sheet
from builder.annotate.tasks import LABEL_STUDIO_PREFIX, export_tasks
from builder.audioset.classes import load_classes
from builder.cli.logs import echo
from builder.commands.common import INSTRUMENT32
from builder.commands.fetch import MANIFEST_NAME, load_manifests
from builder.curate.decisions import locked
from builder.errors import InputError

DEFAULT_CLASSES = INSTRUMENT32 / "classes.csv"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", type=Path, required=True, metavar="ROOT",
                   help="media root (frame paths in the manifest are relative to it)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--manifest-dir", type=Path, default=None, metavar="DIR",
                        help="read a manifest folder (clips.csv + reserve.csv) instead")
    source.add_argument("--manifest", type=Path, default=None, metavar="CSV",
                        help=f"read this manifest CSV instead of ROOT/{MANIFEST_NAME}")
    p.add_argument("--classes", type=Path, default=None, metavar="CSV",
                   help="class list for the COCO categories (default manifests/instrument32/classes.csv "
                        "if present, else the manifest's classes)")
    p.add_argument("--annotations", type=Path, default=None, metavar="JSON",
                   help=f"COCO annotations file (default ROOT/{ANNOTATIONS_FILE})")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("annotate", help="instrument masks of test images as COCO annotations",
                       description=f"Masks belong to the splits {', '.join(MASKED_SPLITS)} and are drawn on the "
                                   "square frame (frame_path).")
    actions = p.add_subparsers(dest="action", metavar="<action>", required=True)

    imp = actions.add_parser("import", help="import masks from a mask folder, LabelMe or COCO (CVAT/Label Studio)")
    _common(imp)
    source = imp.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-masks", type=Path, metavar="DIR",
                        help="binary PNG/JPEG masks named <clip_id>.png (more instances: <clip_id>.<k>.png)")
    source.add_argument("--from-labelme", type=Path, metavar="PATH", help="LabelMe JSON file or folder")
    source.add_argument("--from-coco", type=Path, metavar="FILE", help="COCO JSON exported by CVAT / Label Studio")
    imp.add_argument("--allow-multiple", action="store_true", help="allow several masks (instances) per image")
    imp.add_argument("--replace-all", action="store_true",
                     help="start a new annotations file "
                          "(default: keep other clips' masks, replace the imported clips')")
    imp.set_defaults(func=run_import)

    tasks = actions.add_parser("tasks", help="export the images to annotate for CVAT / Label Studio / LabelMe")
    _common(tasks)
    tasks.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the task files")
    tasks.add_argument("--include-annotated", action="store_true", help="also images that already have a mask")
    tasks.add_argument("--include-reserve", action="store_true", help="also masked-split clips outside the selection")
    tasks.add_argument("--url-prefix", default=LABEL_STUDIO_PREFIX,
                       help="Label Studio image URL prefix before images/<clip_id>.jpg; the default "
                            "serves local files, with LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT = the --out folder")
    tasks.set_defaults(func=run_tasks)

    preview = actions.add_parser("preview", help="contact-sheet PNG of frames with mask overlays")
    _common(preview)
    preview.add_argument("--out", type=Path, required=True, metavar="PNG", help="sheet to write")
    preview.add_argument("--clip", action="append", default=None, metavar="CLIP_ID", help="only these clips")
    preview.add_argument("--include-unmasked", action="store_true",
                         help="also selected masked-split clips without a mask (shown as 'no mask')")
    preview.add_argument("--limit", type=int, default=60, metavar="N", help="at most this many tiles")
    preview.add_argument("--columns", type=int, default=6, metavar="N", help="tiles per row")
    preview.add_argument("--tile", type=int, default=192, metavar="PX", help="tile side")
    preview.set_defaults(func=run_preview)


def load_context(args: argparse.Namespace) -> tuple[AnnotationContext, Path]:
    manifest, _ = load_manifests([args.manifest_dir or args.manifest or args.root / MANIFEST_NAME])
    classes_path = args.classes or (DEFAULT_CLASSES if DEFAULT_CLASSES.is_file() else None)
    classes = load_classes(classes_path) if classes_path is not None else None
    context = AnnotationContext(manifest, args.root, classes)
    return context, args.annotations or args.root / ANNOTATIONS_FILE


def run_import(args: argparse.Namespace) -> int:
    context, path = load_context(args)
    known = context.rows.keys()
    if args.from_masks is not None:
        items = read_mask_folder(args.from_masks)
    elif args.from_labelme is not None:
        items = read_labelme(args.from_labelme, known)
    else:
        items = read_coco(args.from_coco, known)
    with locked(path):  # the review page may be saving masks into the same file
        coco = new_annotations(context.categories) if args.replace_all else open_annotations(path, context)
        report = apply_items(coco, items, context, allow_multiple=args.allow_multiple)
        save_annotations(coco, path)
    echo(f"annotate import: {report.added} mask(s) for {len(report.clips)} clip(s)"
         f"{f', replacing {report.replaced} earlier' if report.replaced else ''}; wrote {path}")
    print_coverage(coco, context)
    return 0


def print_coverage(coco: dict, context: AnnotationContext) -> None:
    wanted = context.masked_clips(selected_only=True)
    missing = [c for c in wanted if not annotations_for_clip(coco, c)]
    echo(f"  {len(coco['images'])} image(s) with masks; selected {'/'.join(MASKED_SPLITS)} clips without a mask: "
         f"{len(missing)} of {len(wanted)}" + (f" (e.g. {', '.join(missing[:3])})" if missing else ""))


def run_tasks(args: argparse.Namespace) -> int:
    context, path = load_context(args)
    clips = context.masked_clips(selected_only=not args.include_reserve)
    clips = [c for c in clips if _has_frame(context, c)]
    if not args.include_annotated and path.exists():
        coco = load_annotations(path)
        clips = [c for c in clips if not annotations_for_clip(coco, c)]
    written = export_tasks(context, clips, args.out, url_prefix=args.url_prefix)
    echo(f"annotate tasks: {len(clips)} image(s) in {args.out / 'images'}; " + ", ".join(sorted(written)))
    return 0


def _has_frame(context: AnnotationContext, clip_id: str) -> bool:
    frame = str(context.rows[clip_id].get("frame_path") or "").strip()
    return bool(frame) and frame != "nan"


def run_preview(args: argparse.Namespace) -> int:
    context, path = load_context(args)
    coco = load_annotations(path) if path.exists() else new_annotations(context.categories)
    if args.clip:
        clips = list(dict.fromkeys(args.clip))
    elif args.include_unmasked:
        unmasked = [c for c in context.masked_clips() if _has_frame(context, c)]
        clips = sorted(set(unmasked) | {img["clip_id"] for img in coco["images"]})
    else:
        clips = sorted(img["clip_id"] for img in coco["images"])
    if not clips:
        raise InputError("no masks to preview (pass --include-unmasked to see the frames)", file=path)
    report = contact_sheet(coco, context, clips[:args.limit], args.out, columns=args.columns, tile=args.tile)
    echo(f"annotate preview: {report.tiles} tile(s), {report.with_mask} with a mask"
         f"{f' (first {args.limit} of {len(clips)})' if len(clips) > args.limit else ''}; wrote {report.path}")
    return 0
