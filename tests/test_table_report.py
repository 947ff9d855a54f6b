"""The Table 1 report over methods × seeds (llinet-eval --table), chance levels, and the fixes to the
per-run report: its numbers against the metric functions on saved embeddings, spreads, sources,
banners, units and the per-class figure's axes and legend."""
from __future__ import annotations

import csv
import json
import zlib

import matplotlib
import numpy as np
import pytest

from builder.errors import InputError
from model.evaluation import plots as eval_plots
from model.evaluation.api import EvalOptions, evaluate
from model.evaluation.chance import chance_levels, expected_random_ap, recall_at_k, standard_chance
from model.evaluation.cli import main as eval_main
from model.evaluation.embed import EmbeddingSet, load_embeddings, save_embeddings
from model.evaluation.metrics.retrieval import cosine_similarity, retrieval_metrics
from model.evaluation.published import TABLE1
from model.evaluation.table import read_run, write_table_report

matplotlib.use("Agg")

INSTRUMENT32 = ["Didgeridoo", "Double bass", "Electric guitar", "French horn", "Glockenspiel", "Shofar",
                "Steel guitar", "Tabla"]


def embedding_set(split: str, classes: list[str], per_class: int, seed: int, noise: float,
                  scores: bool = False) -> EmbeddingSet:
    """Embeddings around fixed per-class centres; ``seed`` draws the noise (one "training seed")."""
    rng = np.random.default_rng(seed)
    names = np.repeat(classes, per_class)
    centres = {c: np.random.default_rng(zlib.crc32(c.encode())).standard_normal(12) for c in classes}
    base = np.stack([centres[c] for c in names])
    image = (base + noise * rng.standard_normal(base.shape)).astype(np.float32)
    audio = (base + noise * rng.standard_normal(base.shape)).astype(np.float32)
    ids = np.array([f"{split[:3]}{i:08d}_0" for i in range(len(names))])
    own = (image @ audio.T).astype(np.float32) if scores else None    # a method with its own similarity
    return EmbeddingSet(split, ids, names.astype(str), image, audio, np.zeros((len(names), 4, 4), np.float32),
                        scores=own)


def evaluated_run(tmp_path, method: str, seed: int, classes: list[str], noise: float) -> tuple:
    test = embedding_set("test", classes, 5, seed, noise, scores=method == "scan")
    npz = save_embeddings(tmp_path / f"{method}_{seed}.npz", {"test": test},
                          meta={"method": method, "train_seed": seed, "recipe": "paper"})
    report = tmp_path / f"report_{method}_{seed}"
    evaluate(EvalOptions(report=report, embeddings=npz, localization=False, draws=5, overlays=0, progress=False))
    return report, npz


def test_chance_levels_are_the_expected_random_scores() -> None:
    rng = np.random.default_rng(0)
    counts = {"a": 3, "b": 5, "c": 4}
    labels = np.repeat(list(counts), list(counts.values()))
    aps, r1, r5 = [], [], []
    for _ in range(3000):       # random rankings: every query against a shuffled gallery
        scores = rng.random((len(labels), len(labels)))
        block = retrieval_metrics(scores, labels, labels, n_draws=1)["image_to_audio"]
        aps.append(block["standard"]["map_macro"])
        r1.append(block["standard"]["r1"])
        r5.append(block["standard"]["r5"])
    levels, standard = chance_levels(counts), standard_chance(counts)
    assert np.mean(aps) == pytest.approx(levels["map"], abs=0.005) == standard["map_macro"]
    assert np.mean(r1) == pytest.approx(levels["r1"], abs=0.005)
    assert levels["r1"] == pytest.approx((9 + 25 + 16) / 144) and levels["recognition"] == pytest.approx(1 / 3)
    assert np.mean(r5) == pytest.approx(standard["r5"], abs=0.005)
    assert expected_random_ap(1, 1) == 1.0 and expected_random_ap(4, 4) == pytest.approx(1.0)
    assert recall_at_k(1, 4, 2) == pytest.approx(0.5) and recall_at_k(2, 4, 4) == 1.0
    with pytest.raises(ValueError):
        expected_random_ap(0, 3)


def test_table_numbers_are_the_metric_functions_on_saved_embeddings(tmp_path) -> None:
    classes = ["synth_a", "synth_b", "synth_c"]
    runs = {("llinet", 1): 0.6, ("llinet", 2): 0.8, ("llinet", 3): 1.0, ("cmpm", 1): 0.9, ("cmpm", 2): 1.1,
            ("scan", 7): 0.7}
    reports, expected = [], {}
    for (method, seed), noise in runs.items():
        report, npz = evaluated_run(tmp_path, method, seed, classes, noise)
        reports.append(report)
        test = load_embeddings(npz)["test"]
        scores = test.scores if test.scores is not None else cosine_similarity(test.image, test.audio)
        direct = retrieval_metrics(scores, test.classes, test.classes, n_draws=5)
        # Paper column -> ours: mAP(I2A) is the audio->image one-query mAP (the official naming).
        expected.setdefault(method, []).append({
            "mAP(I2A)": 100 * direct["audio_to_image"]["llinet"]["map"],
            "R@1(I2A)": 100 * direct["image_to_audio"]["standard"]["r1"],
            "mAP(A2I)": 100 * direct["image_to_audio"]["llinet"]["map"],
            "R@1(A2I)": 100 * direct["audio_to_image"]["standard"]["r1"]})
    out = tmp_path / "table"
    assert eval_main(["--table", *map(str, reports), "--out", str(out), "-q"]) == 0
    with open(out / "table1.csv", newline="") as handle:
        rows = {row["method"]: row for row in csv.DictReader(handle)}
    assert list(rows) == ["dar", "ulslvc", "sir", "scan", "dscmr", "timam", "cmpm", "cme", "llinet"]   # Table 1's
    for method, values in expected.items():
        assert rows[method]["seeds"] == " ".join(str(s) for m, s in runs if m == method)
        for column in values[0]:
            column_values = [v[column] for v in values]
            assert float(rows[method][f"{column} ours mean"]) == pytest.approx(np.mean(column_values), abs=1e-3)
            std = rows[method][f"{column} ours std"]
            if len(values) > 1:
                assert float(std) == pytest.approx(np.std(column_values, ddof=1), abs=1e-3)
            else:
                assert std == ""
            assert float(rows[method][f"{column} paper"]) == TABLE1[method][column].value
    assert rows["sir"]["mAP(I2A) ours mean"] == "" and rows["sir"]["mAP(I2A) paper"] == "21.2"
    assert rows["dar"]["seeds"] == "" and rows["dar"]["mAP(I2A) ours mean"] == ""     # published, not run
    levels = chance_levels({c: 5 for c in classes})
    assert float(rows["llinet"]["R@1(I2A) chance"]) == pytest.approx(100 * levels["r1"])
    assert float(rows["llinet"]["mAP(I2A) chance"]) == pytest.approx(100 * levels["map"])
    # Sources of every published number; the conflicting cell carries both values.
    assert (rows["cme"]["R@1(I2A) paper"], rows["cme"]["R@1(I2A) paper conflict"]) == ("25.7", "35.7 (transcription)")
    assert rows["llinet"]["R@1(A2I) paper sources"] == "paper; results page"
    assert rows["scan"]["mAP(I2A) paper sources"] == "results page"
    text = (out / "table1.md").read_text()
    mean = np.mean([v["R@1(A2I)"] for v in expected["llinet"]])
    std = np.std([v["R@1(A2I)"] for v in expected["llinet"]], ddof=1)
    assert f"{mean:.1f} ± {std:.1f}" in text
    for needle in ("Not INSTRUMENT-32CLASS", "25.7 [W] ⚠ 35.7 [T]", "[P] Jia", "[W] the authors' results page",
                   "| SIR | – | 21.2 [W] | open", "| DAR | – | 13.3 [W] | not run", "chance (this data)",
                   "All numbers in %", "56.7 [P]", "36.8 [P,W]", "audio→image LLINet-protocol mAP"):
        assert needle in text, needle
    with open(out / "recognition.csv", newline="") as handle:
        recognition = {row["method"]: row for row in csv.DictReader(handle)}
    zsl = [json.loads((r / "metrics.json").read_text())["recognition"]["published"]["accuracy"] for r in reports[:3]]
    assert float(recognition["LLINet (ours)"]["ZSL accuracy mean"]) == pytest.approx(100 * np.mean(zsl), abs=1e-3)
    assert recognition["SAE (paper)"]["sources"] == "paper"
    assert float(recognition["chance (this data)"]["ZSL accuracy mean"]) == pytest.approx(100 / 3, abs=1e-3)
    for name in ("table1.png", "recognition.png", "localization.png", "localization.csv"):
        assert (out / name).stat().st_size > 100


def test_cme_conflict_and_published_sources_in_the_table(tmp_path) -> None:
    report, _ = evaluated_run(tmp_path, "cme", 5, INSTRUMENT32, 0.9)
    files = write_table_report([report], tmp_path / "t")
    with open(files["table1_csv"], newline="") as handle:
        row = {r["method"]: r for r in csv.DictReader(handle)}["cme"]
    assert (row["R@1(I2A) paper"], row["R@1(I2A) paper conflict"]) == ("25.7", "35.7 (transcription)")
    text = files["markdown"].read_text()
    assert "Not INSTRUMENT-32CLASS" not in text                  # the dataset's 8 test classes: comparable


def test_table_refuses_mixed_data_duplicates_and_unknown_runs(tmp_path) -> None:
    a, _ = evaluated_run(tmp_path, "dar", 1, ["x", "y"], 0.5)
    b, _ = evaluated_run(tmp_path, "dar", 2, ["x", "y", "z"], 0.5)
    with pytest.raises(InputError, match="other data"):
        write_table_report([a, b], tmp_path / "t")
    with pytest.raises(InputError, match="given twice"):
        write_table_report([a, a], tmp_path / "t")
    metrics = json.loads((a / "metrics.json").read_text())
    del metrics["context"]["method"]
    (tmp_path / "old.json").write_text(json.dumps(metrics))
    with pytest.raises(InputError, match="context.method"):
        read_run(tmp_path / "old.json")


def test_run_report_banner_chance_and_units(tmp_path) -> None:
    demo, _ = evaluated_run(tmp_path, "llinet", 1, ["synth_a", "synth_b", "synth_c"], 0.7)
    text = (demo / "report.md").read_text()
    assert "> **Not INSTRUMENT-32CLASS.** This split has 3 classes" in text
    ours = next(line for line in text.splitlines() if line.startswith("| Ours (this checkpoint"))
    assert "**" not in ours and "not comparable" in ours                  # no bold beside the 8-class numbers
    assert "| Chance on this split (3 classes) | 44.4 | 33.3 | 44.4 | 33.3 |" in text   # E[AP] 5 of 15; 1/3
    assert "| chance (random ranking) |" in text and "| Chance (3 classes) | uniform guess | 33.3 | 33.3 |" in text
    assert "mAP(I2A) (%)" in text and "All numbers are percentages" in text
    # "How to read" speaks of this run: 3 queries, no French horn; not of 8 classes and French horn.
    assert "3 queries here" in text and "8 classes —" not in text and "this split has no French horn" in text
    assert "25.7 ⚠ (35.7 in the transcription)" in text
    real, _ = evaluated_run(tmp_path, "llinet", 2, INSTRUMENT32, 0.7)
    text = (real / "report.md").read_text()
    assert "Not INSTRUMENT-32CLASS" not in text
    assert next(line for line in text.splitlines() if line.startswith("| **Ours (this checkpoint)**"))
    assert "8 queries here" in text and 'contains the class "French horn", one of this split\'s classes' in text


def test_per_class_figure_axes_legend_and_chance(tmp_path, monkeypatch) -> None:
    captured = {}

    def keep(fig, path):
        captured["fig"] = fig
        fig.canvas.draw()
        return path

    monkeypatch.setattr(eval_plots, "_save", keep)
    table = {f"class {i}": {"AP image→audio": 0.9, "AP audio→image": 0.95, "recognition acc.": 1.0}
             for i in range(4)}
    chance = {c: {"AP image→audio": 0.3, "AP audio→image": 0.3, "recognition acc.": 0.25} for c in table}
    eval_plots.per_class_bars(table, list(table["class 0"]), tmp_path / "p.png", chance)
    ax = captured["fig"].axes[0]
    assert ax.get_ylabel() == "%" and ax.get_ylim() == (0.0, 100.0)
    assert max(patch.get_height() for patch in ax.patches) == pytest.approx(100.0)     # values drawn in %
    renderer = captured["fig"].canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.y1 < ax.get_window_extent(renderer).y0          # below the axes: it hides no bar
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels.count("chance level") == 1
    levels = sorted({round(float(y), 6) for collection in ax.collections for y in collection.get_segments()[0][:, 1]})
    assert levels == [25.0, 30.0]
