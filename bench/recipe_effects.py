"""Effect of each paper-vs-official-code difference on the synthetic zero-shot set (CPU, minutes).

Trains LLINet briefly with the paper recipe, the official-code recipe, and the
paper recipe with one switch flipped at a time, then evaluates every run the
same way (llinet-eval's defaults, best.pt chosen on validation). The two
evaluation-only switches (drop_last_batch, iou_epsilon) re-evaluate the paper
run. Localisation masks are the synthetic disks (the saturated pixels of each
frame). A second copy of the set with every fourth clip cut to 0.6 s measures
the short-clip padding (the synthetic clips are otherwise all 1 s long).

Brief runs scale the schedule: image lr period 3 epochs instead of 10, and 8
epochs (paper) vs 9 (official, the authors' extra epoch) instead of 100 / 101.

  python bench/recipe_effects.py --out /tmp/recipe_effects [--seeds 200,201] [--epochs 8]

Writes OUT/results.json and prints one markdown table (mean over the seeds).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from builder.demo.zeroshot_set import SyntheticSpec, generate_synthetic_set  # noqa: E402
from model.evaluation.api import EvalOptions, evaluate  # noqa: E402
from model.evaluation.embed import EmbeddingSet, load_embeddings  # noqa: E402
from model.evaluation.metrics.localization import OFFICIAL_IOU_EPSILON  # noqa: E402
from model.training.options import TrainOptions  # noqa: E402
from model.training.trainer import train  # noqa: E402
from model.training.validation import prototype_accuracy  # noqa: E402

TINY = {"backbone": "resnet18", "image_size": 64, "image_weights": "none", "batch_size": 16, "lr": 0.005,
        "lr_decay_every": 3, "workers": 0, "progress": False, "eval_batch_size": 32}
# name, data set ("full" or "short"), TrainOptions switches, EvalOptions switches, base run for eval-only rows
RUNS: list[tuple[str, str, dict[str, Any], dict[str, Any], str | None]] = [
    ("paper", "full", {}, {}, None),
    ("official-code", "full", {"recipe": "official-code"}, {"drop_last_batch": True, "iou_epsilon": 1e-5}, None),
    ("1 gate softmax over the batch", "full", {"gate_softmax": "batch"}, {}, None),
    ("2 matching loss only", "full", {"gamma_att": 0.0}, {}, None),
    ("3 official schedule (+1 epoch)", "full", {"schedule": "official"}, {}, None),
    ("4 test drop_last", "full", {}, {"drop_last_batch": True}, "paper"),
    ("5 IoU / (union + 1e-5)", "full", {}, {"iou_epsilon": OFFICIAL_IOU_EPSILON}, "paper"),
    ("6a reflect-padded STFT", "full", {"logmel_pad": "reflect"}, {}, None),
    ("paper, 25% short clips", "short", {}, {}, None),
    ("6b log-mel 0.0 padding, 25% short clips", "short", {"short_clip_pad": "logmel"}, {}, None),
]


def disk_masks_coco(manifest: Path, splits: tuple[str, ...] = ("test", "val_unseen")) -> dict[str, Any]:
    """COCO annotations (RLE): one mask per frame of ``splits``, the disk = the saturated pixels."""
    from pycocotools import mask as mask_utils

    frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    images, annotations = [], []
    for index, row in enumerate(frame[frame["split"].isin(splits)].itertuples(), start=1):
        with Image.open(manifest.parent / str(row.frame_path)) as image:
            hsv = np.asarray(image.convert("HSV"))
        mask = (hsv[..., 1] > 128).astype(np.uint8)   # the disk has saturation 0.9, the background ~0
        rle = mask_utils.encode(np.asfortranarray(mask))
        rle["counts"] = rle["counts"].decode("ascii")
        images.append({"id": index, "file_name": f"{row.clip_id}.jpg", "height": mask.shape[0],
                       "width": mask.shape[1]})
        annotations.append({"id": index, "image_id": index, "category_id": 1, "segmentation": rle,
                            "area": int(mask.sum()), "iscrowd": 1})
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "disk"}]}


def shorten_every_fourth(source: Path, target: Path, seconds: float = 0.6) -> Path:
    """A copy of the set whose every fourth clip (manifest order) keeps only its first ``seconds``.

    The first train clip stays full length: llinet-train takes the clip length from it.
    """
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    frame = pd.read_csv(target / "manifest.csv", dtype=str, keep_default_na=False)
    first_train = frame.index[frame["split"] == "train"][0]
    for audio in frame["audio_path"][(frame.index % 4 == 3) & (frame.index != first_train)]:
        path = target / audio
        with wave.open(str(path), "rb") as handle:
            params, data = handle.getparams(), handle.readframes(handle.getnframes())
        keep = int(params.framerate * seconds) * params.nchannels * params.sampwidth
        with wave.open(str(path), "wb") as handle:
            handle.setparams(params)
            handle.writeframes(data[:keep])
    return target / "manifest.csv"


def validation_accuracy_both_ways(val: EmbeddingSet) -> dict[str, float]:
    """Difference 7: training-time zero-shot accuracy with raw vs L2-normalised image embeddings."""
    image, audio = torch.from_numpy(val.image), torch.from_numpy(val.audio)
    _, labels = np.unique(val.classes, return_inverse=True)
    y = torch.from_numpy(labels)
    return {"raw": prototype_accuracy(image, audio, y, y),
            "l2": prototype_accuracy(torch.nn.functional.normalize(image, dim=1), audio, y, y)}


@torch.no_grad()
def forward_effects(checkpoint: Path, manifest: Path, short_manifest: Path) -> dict[str, float]:
    """Differences 1 and 6 at the forward pass: the trained paper model's weights under each switch."""
    from model.network.config import ModelConfig
    from model.network.factory import build_model
    from model.network.inputs import eval_image_transform
    from model.training.cache import CacheSpec, decode_audio_with_length

    state = torch.load(checkpoint, weights_only=True)
    base = {**state["config"], "image_weights": "none"}

    def model(**switches: str) -> Any:
        net = build_model(ModelConfig.from_dict({**base, **switches}))
        net.load_state_dict(state["model"])
        return net.eval()

    frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    test = frame[frame["split"] == "test"].iloc[:32]
    images = torch.stack([eval_image_transform(manifest.parent / p, base["image_size"]) for p in test["frame_path"]])
    positions, batch = model(), model(gate_softmax="batch")
    v_pos, v_batch = positions.embed_images(images)[0], batch.embed_images(images)[0]
    alone = torch.cat([batch.embed_images(images[i:i + 1])[0] for i in range(len(images))])
    relative = lambda x, y: (x - y).norm(dim=1) / y.norm(dim=1)  # noqa: E731
    gate_effect = relative(v_batch, v_pos)
    out = {"gate_v_rel_min": float(gate_effect.min()), "gate_v_rel_max": float(gate_effect.max()),
           "gate_alone_vs_batch32_rel_median": float(relative(alone, v_batch).median()),
           "positions_alone_vs_batch_rel_max": float(relative(
               torch.cat([positions.embed_images(images[i:i + 1])[0] for i in range(4)]), v_pos[:4]).max())}
    rate = int(state["sample_rate"])
    spec = CacheSpec(base["image_size"], rate, int(state["clip_samples"]))
    waves = torch.from_numpy(np.stack([decode_audio_with_length(str(manifest.parent / p), spec)[0]
                                       for p in test["audio_path"]]))[:, None]
    constant, reflect = positions.logmel(waves, rate), model(logmel_pad="reflect").logmel(waves, rate)
    edge = (constant - reflect).abs()
    out.update({"logmel_reflect_frames01_max_abs": float(edge[:, :2].max()),
                "logmel_reflect_other_frames_max_abs": float(edge[:, 2:-2].max())})
    short = pd.read_csv(short_manifest, dtype=str, keep_default_na=False)
    decoded = [decode_audio_with_length(str(short_manifest.parent / p), spec) for p in short["audio_path"]]
    waves = torch.from_numpy(np.stack([d[0] for d in decoded]))[:, None]
    lengths = torch.tensor([d[1] for d in decoded])
    is_short = lengths < spec.clip_samples
    by_wave = positions.logmel(waves[is_short], rate, lengths[is_short])
    by_logmel = model(short_clip_pad="logmel").logmel(waves[is_short], rate, lengths[is_short])
    a_wave = positions.audio_encoder(by_wave)
    a_logmel = positions.audio_encoder(by_logmel)
    out.update({"short_clips": int(is_short.sum()), "short_pad_value_waveform": float(by_wave[0, -1].mean()),
                "short_a_rel_median": float(relative(a_logmel, a_wave).median())})
    return out


def summary(metrics: dict[str, Any]) -> dict[str, float]:
    retrieval, loc = metrics["retrieval"], metrics["localization"]
    # The paper's LLINet mAP takes ONE query per class (3 test classes here: very noisy); the standard
    # macro mAP ranks with every clip as a query.
    return {"n_test": metrics["n_clips"],
            "map_i2a": retrieval["image_to_audio"]["standard"]["map_macro"],
            "map_a2i": retrieval["audio_to_image"]["standard"]["map_macro"],
            "llinet_map_i2a": retrieval["image_to_audio"]["llinet"]["map"],
            "llinet_map_a2i": retrieval["audio_to_image"]["llinet"]["map"],
            "r1_i2a": retrieval["image_to_audio"]["llinet"]["r1"],
            "r1_a2i": retrieval["audio_to_image"]["llinet"]["r1"],
            "zsl_acc": metrics["recognition"]["published"]["accuracy"],
            "loc_miou": loc["llinet"]["miou"], "loc_auc": loc["llinet"]["auc"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="working folder (data, runs, results.json)")
    parser.add_argument("--seeds", default="200", help="comma-separated training seeds (default 200)")
    parser.add_argument("--epochs", type=int, default=8, help="paper-schedule epochs (official: one more)")
    parser.add_argument("--reuse", action="store_true", help="keep runs that already have a best.pt")
    args = parser.parse_args()
    out = Path(args.out)
    data = {"full": out / "synth" / "manifest.csv"}
    if not data["full"].is_file():
        generate_synthetic_set(out / "synth", SyntheticSpec())
    data["short"] = shorten_every_fourth(out / "synth", out / "synth_short")
    masks = out / "masks.json"
    masks.write_text(json.dumps(disk_masks_coco(data["full"])))
    results: dict[str, list[dict[str, float]]] = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        for name, dataset, switches, eval_switches, base in RUNS:
            if base is None:
                run = out / "runs" / f"{name.replace(' ', '_').replace('/', '')}_{seed}"
                epochs = args.epochs + (1 if (switches.get("schedule") == "official"
                                              or switches.get("recipe") == "official-code") else 0)
                if not (args.reuse and (run / "best.pt").is_file()):
                    if run.exists():
                        shutil.rmtree(run)
                    started = time.perf_counter()
                    train(TrainOptions(manifest=str(data[dataset]), output_dir=str(run), seed=seed, epochs=epochs,
                                       **TINY, **switches))
                    print(f"{name} (seed {seed}): trained {epochs} epochs in {time.perf_counter() - started:.0f} s",
                          flush=True)
            else:
                run = out / "runs" / f"{base.replace(' ', '_')}_{seed}"
            result = evaluate(EvalOptions(checkpoint=run / "best.pt", manifest=data[dataset], masks=masks,
                                          report=run / f"eval_{len(eval_switches)}_{'_'.join(eval_switches)}",
                                          workers=0, draws=100, overlays=0, progress=False, **eval_switches))
            row = summary(result.metrics)
            if name == "paper":
                val = load_embeddings(result.files["embeddings"])["val_unseen"]
                row.update({f"val_acc_{k}": v for k, v in validation_accuracy_both_ways(val).items()})
            results.setdefault(name, []).append(row)
    forward = forward_effects(out / "runs" / f"paper_{args.seeds.split(',')[0]}" / "best.pt", data["full"],
                              data["short"])
    (out / "results.json").write_text(json.dumps({"runs": results, "forward": forward}, indent=1))
    print("forward-pass effects (paper run's weights):", json.dumps(forward, indent=1))
    keys = ["n_test", "map_i2a", "map_a2i", "llinet_map_i2a", "llinet_map_a2i", "r1_i2a", "r1_a2i", "zsl_acc",
            "loc_miou", "loc_auc"]
    print(f"mean ± std over seeds {args.seeds}")
    print("| run | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, rows in results.items():
        cells = []
        for key in keys:
            values = np.array([r[key] for r in rows], dtype=float)
            scale = 1 if key == "n_test" else 100
            cells.append(f"{scale * values.mean():.{0 if key == 'n_test' else 1}f}"
                         + (f" ± {scale * values.std():.1f}" if len(values) > 1 and key != "n_test" else ""))
        print(f"| {name} | " + " | ".join(cells) + " |")
    if "paper" in results and "val_acc_raw" in results["paper"][0]:
        raw = np.mean([r["val_acc_raw"] for r in results["paper"]])
        l2 = np.mean([r["val_acc_l2"] for r in results["paper"]])
        print(f"7 validation zero-shot accuracy of the paper run: raw {100 * raw:.1f}, L2-normalised {100 * l2:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
