"""llinet-build review: a local web page to accept/reject clips and draw instrument masks."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from builder.annotate.coco import ANNOTATIONS_FILE, MASKED_SPLITS
from builder.audioset.classes import load_classes
from builder.cli.args import add_option, verbosity
from builder.cli.logs import echo
from builder.commands.annotate import DEFAULT_CLASSES
from builder.commands.fetch import load_manifests
from builder.errors import InputError, LlinetError
from builder.manifest.media_root import DECISIONS as DECISIONS_FILE
from builder.manifest.media_root import MANIFEST as MANIFEST_NAME
from builder.review.server import ReviewServer, is_loopback
from builder.review.state import ReviewSession

DEFAULT_PORT = 8765
log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("review", help="local web page: accept/reject clips, draw instrument masks",
                       description="Serve a page (on 127.0.0.1 by default) that shows each clip's frame, audio "
                                   "and flags per class, records accept/reject decisions in the CSV that "
                                   "`curate --decisions` reads, and draws masks for the "
                                   f"{'/'.join(MASKED_SPLITS)} clips into the COCO file of `annotate`. Every "
                                   "click is saved at once; stop the server with Ctrl+C at any time. "
                                   "-v logs every request.")
    add_option(p, "--root", deprecated=["--media"], type=Path, required=True, metavar="ROOT",
               help=f"media root: the manifest's frame_path / audio_path are relative to it; its {MANIFEST_NAME} "
                    "is the manifest unless --manifest or --manifest-dir says otherwise")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--manifest-dir", type=Path, default=None, metavar="DIR",
                        help="review a manifest folder (clips.csv + reserve.csv) instead")
    source.add_argument("--manifest", type=Path, default=None, metavar="CSV",
                        help=f"review this manifest CSV instead of ROOT/{MANIFEST_NAME}")
    p.add_argument("--decisions", type=Path, default=None, metavar="CSV",
                   help=f"decision list to read and update (default ROOT/{DECISIONS_FILE}; created on the first "
                        "decision)")
    p.add_argument("--annotations", type=Path, default=None, metavar="JSON",
                   help=f"COCO masks file to read and update (default ROOT/{ANNOTATIONS_FILE}, as `annotate`)")
    p.add_argument("--classes", type=Path, default=None, metavar="CSV",
                   help="class list for the COCO categories (default manifests/instrument32/classes.csv if "
                        "present, else the manifest's classes; as `annotate`)")
    p.add_argument("--cap", type=int, default=None, metavar="N",
                   help="clips per class the counts are shown against (default: as `curate`, the cap of the "
                        "selection before the first curate)")
    p.add_argument("--reviewer", default="", metavar="NAME",
                   help="name recorded with each decision (the page can change it)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (anything but a loopback address exposes the page, which has "
                        "no login, to the network)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="P", help="port (0 = any free port)")
    p.set_defaults(func=run)


def build_session(args: argparse.Namespace) -> ReviewSession:
    manifest, source = load_manifests([args.manifest_dir or args.manifest or args.root / MANIFEST_NAME])
    classes_path = args.classes or (DEFAULT_CLASSES if DEFAULT_CLASSES.is_file() else None)
    classes = load_classes(classes_path) if classes_path is not None else None
    return ReviewSession(manifest, args.root, decisions_path=args.decisions or args.root / DECISIONS_FILE,
                         annotations_path=args.annotations or args.root / ANNOTATIONS_FILE, classes=classes,
                         reviewer=args.reviewer, cap=args.cap, manifest_source=source)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be within 0..65535, got {args.port}")
    session = build_session(args)
    try:
        server = ReviewServer(session, args.host, args.port, verbose=verbosity(args) > 0)
    except OSError as exc:
        raise LlinetError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc} "
                          "(pass --port 0 for any free port)") from None
    maskable = sum(session.maskable(c) for c in session.clip_ids)
    echo(f"review: {len(session.clip_ids)} clips in {len(session.classes_in_order())} classes (cap {session.cap}), "
         f"{maskable} to mask; decisions -> {session.decisions_path}, masks -> {session.annotations_path}")
    if session.unsafe_paths:
        clip_id, column, value = session.unsafe_paths[0]
        log.warning(f"review: {len(session.unsafe_paths)} media path(s) are absolute or leave the media root "
                    f"and are not served (e.g. {column}={value!r} of {clip_id})")
    if not is_loopback(args.host):
        log.warning(f"review: listening on {args.host}: anyone who can reach this port can change decisions")
    echo(f"review: open {server.url}  (Ctrl+C stops; every decision and mask is already saved)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        echo("review: stopped")
    finally:
        server.server_close()
    return 0
