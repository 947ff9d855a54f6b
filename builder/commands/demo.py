"""llinet-build demo: the offline end-to-end run a newcomer starts with.

Part 1, INSTRUMENT-32CLASS metadata: resolve the 32 classes -> select -> split
(paper preset) on the AudioSet metadata slice bundled in the package
(every segment row that carries one of the classes' MIDs, so the result equals
a run on the full 2.08M-row lists), print the summary and check the result
against the committed ``manifests/instrument32``.

Part 2, the whole pipeline on media (YouTube is out of reach offline): render
the learnable synthetic zero-shot set as videos, serve them from a loopback
mirror, and run fetch -> trim -> frames -> annotate -> curate -> release ->
verify -> llinet-train -> llinet-eval (see builder.demo.pipeline).
"""
from __future__ import annotations

import argparse
import filecmp
import json
import time
from pathlib import Path

from builder.audioset.classes import check_against_ontology, load_classes, write_classes
from builder.audioset.parse import discover_segment_files, load_ontology
from builder.cli.args import show_progress, verbosity
from builder.cli.logs import echo
from builder.commands.common import BUNDLED_AUDIOSET, INSTRUMENT32
from builder.commands.select import REPORT_FILE, print_report
from builder.commands.split import AUDIT_FILE, print_audit
from builder.demo.pipeline import DemoOptions, synthetic_demo
from builder.errors import LlinetError
from builder.io.atomic import atomic_write_json
from builder.manifest.media_root import MediaRoot
from builder.manifest.schema import SELECTION_FILE, write_manifest_dir
from builder.selection.select import SelectOptions, select_clips
from builder.selection.split import SplitOptions, split_manifest


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="offline demo on the bundled metadata slice",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--out", type=Path, default=Path("demo"), metavar="DIR", help="output folder")
    p.add_argument("--audioset", type=Path, default=BUNDLED_AUDIOSET, metavar="DIR",
                   help="metadata folder (the default is the bundled slice)")
    p.add_argument("--metadata-only", action="store_true", help="part 1 only (seconds; no media, no training)")
    p.add_argument("--per-class", type=int, default=DemoOptions.per_class, metavar="N",
                   help="synthetic videos per class")
    p.add_argument("--cap", type=int, default=DemoOptions.cap, metavar="N", help="synthetic clips selected per class")
    p.add_argument("--epochs", type=int, default=DemoOptions.epochs, metavar="N",
                   help="training epochs on the synthetic set")
    p.add_argument("--video-seconds", type=float, default=DemoOptions.video_seconds, metavar="S",
                   help="length of each synthetic video (at least the 3 s trim window; shorter renders faster)")
    p.add_argument("--video-size", type=int, default=DemoOptions.video_size, metavar="PX",
                   help="frame side of the square synthetic videos")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    metadata_demo(args)
    if args.metadata_only:
        return 0
    echo("\n#### Part 2: the whole pipeline on synthetic media (offline) ####")
    t0 = time.perf_counter()
    options = DemoOptions(per_class=args.per_class, cap=args.cap, epochs=args.epochs, progress=show_progress(args),
                          verbosity=verbosity(args), video_seconds=args.video_seconds, video_size=args.video_size)
    out = synthetic_demo(args.out / "synthetic", options, log=echo)
    metrics = json.loads((out["report"].parent / "metrics.json").read_text())
    retrieval = metrics["retrieval"]
    echo(f"\ndemo finished in {time.perf_counter() - t0:.0f} s")
    echo(f"  release (verified): {out['release']}")
    echo(f"  evaluation report:  {out['report']}")
    echo(f"  review page:        llinet-build review --root {MediaRoot(out['media']).root} "
         f"--classes {out['classes']}")
    echo(f"  unseen-class retrieval R@1 image->audio {100 * retrieval['image_to_audio']['llinet']['r1']:.1f}, "
         f"audio->image {100 * retrieval['audio_to_image']['llinet']['r1']:.1f}; zero-shot accuracy "
         f"{100 * metrics['recognition']['published']['accuracy']:.1f} (chance "
         f"{100 / metrics['n_classes']:.1f})")
    return 0


def metadata_demo(args: argparse.Namespace) -> None:
    echo("#### Part 1: INSTRUMENT-32CLASS manifests from the bundled AudioSet metadata ####")
    t0 = time.perf_counter()
    manifest_dir = args.out / "manifests"
    classes_csv = INSTRUMENT32 / "classes.csv"
    echo(f"[1/3] resolve {classes_csv} against {args.audioset / 'ontology.json'}")
    ontology = load_ontology(args.audioset / "ontology.json")
    classes = check_against_ontology(load_classes(classes_csv), ontology, classes_csv)
    echo(f"      {len(classes)} classes: {sum(c.split == 'train' for c in classes)} train, "
         f"{sum(c.split == 'test' for c in classes)} test")

    echo(f"[2/3] select from {args.audioset}")
    manifest, report = select_clips(classes, ontology, discover_segment_files(args.audioset), SelectOptions())
    print_report(report)

    echo("\n[3/3] split (preset paper) + leakage audit")
    manifest, audit = split_manifest(manifest, classes, ontology, SplitOptions(preset="paper"))
    write_manifest_dir(manifest, manifest_dir)
    # The folder carries its class list, so it is complete for fetch/annotate/curate and for comparison.
    write_classes(classes, manifest_dir / "classes.csv")
    atomic_write_json(manifest_dir / REPORT_FILE, report.to_dict())
    atomic_write_json(manifest_dir / AUDIT_FILE, audit)
    print_audit(audit)

    committed = INSTRUMENT32 / SELECTION_FILE
    echo(f"\nwrote {manifest_dir}/ in {time.perf_counter() - t0:.1f} s")
    if committed.is_file():
        same = filecmp.cmp(committed, manifest_dir / SELECTION_FILE, shallow=False)
        echo(f"byte-identical to the committed {committed.relative_to(INSTRUMENT32.parents[1])}: "
             f"{'yes' if same else 'NO'}")
        if not same:
            raise LlinetError(f"demo selection differs from {committed}; regenerate the manifests or the slice")
