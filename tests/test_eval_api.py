"""``evaluate(EvalOptions)`` from Python: the same metrics and files as ``llinet-eval``."""
from __future__ import annotations

import json

import pytest

from builder.errors import InputError
from model.evaluation.api import EvalOptions, EvalResult, evaluate
from model.evaluation.cli import build_parser, main, options_from_args
from test_eval_cli import synthetic  # noqa: F401  (the module's fixture: tiny checkpoint + synthetic set)


def _canonical(metrics: dict) -> str:
    # Through JSON text: NaN never equals itself as a float, but "NaN" equals "NaN".
    return json.dumps(metrics, sort_keys=True)


def test_evaluate_returns_what_the_cli_writes(synthetic, tmp_path):  # noqa: F811
    result = evaluate(EvalOptions(checkpoint=synthetic["checkpoint"], manifest=synthetic["manifest"],
                                  masks=synthetic["masks"], report=tmp_path / "api", workers=0, draws=50,
                                  overlays=4, progress=False))
    assert isinstance(result, EvalResult) and result.report_dir == tmp_path / "api"
    assert main(["--checkpoint", str(synthetic["checkpoint"]), "--manifest", str(synthetic["manifest"]),
                 "--masks", str(synthetic["masks"]), "--report", str(tmp_path / "cli"), "--workers", "0",
                 "--draws", "50", "--overlays", "4", "--no-progress"]) == 0
    from_cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    cli_context = from_cli.pop("context")
    assert _canonical(result.metrics) == _canonical(from_cli)
    assert result.metrics["n_clips"] == 8 and "llinet" in result.metrics["localization"]
    # Its own files: metrics.json holds the returned metrics, every listed file exists.
    own = json.loads(result.files["metrics"].read_text())
    assert own.pop("context")["source"] == str(synthetic["checkpoint"]) == cli_context["source"]
    assert _canonical(own) == _canonical(result.metrics)
    assert {"report", "metrics", "embeddings", "curves", "per_class"} <= set(result.files)
    assert all(path.is_file() and path.parent == tmp_path / "api" for path in result.files.values())
    # The saved embeddings give the same retrieval numbers without the model.
    again = evaluate(EvalOptions(embeddings=result.files["embeddings"], masks=synthetic["masks"],
                                 report=tmp_path / "again", draws=50, overlays=0))
    assert "embeddings" not in again.files
    assert again.metrics["retrieval"] == result.metrics["retrieval"]
    assert result.summary().startswith("test: 8 clips, 2 classes; LLINet mAP image→audio ")


def test_cli_defaults_are_the_options_defaults():
    args = build_parser().parse_args(["--checkpoint", "ck.pt", "--report", "out"])
    assert options_from_args(args) == EvalOptions(checkpoint="ck.pt", report="out")
    args = build_parser().parse_args(["--embeddings", "e.npz", "--report", "out", "--no-localization",
                                      "--no-progress", "--split", "val_unseen", "--draws", "7"])
    assert options_from_args(args) == EvalOptions(embeddings="e.npz", report="out", localization=False,
                                                  progress=False, split="val_unseen", draws=7)


@pytest.mark.parametrize("options, message", [
    (EvalOptions(report="out"), "exactly one of checkpoint"),
    (EvalOptions(report="out", checkpoint="a.pt", embeddings="e.npz"), "exactly one of checkpoint"),
    (EvalOptions(checkpoint="a.pt"), "no report folder"),
    (EvalOptions(checkpoint="a.pt", report="out", draws=0), "draws must be >= 1, got 0"),
    (EvalOptions(checkpoint="a.pt", report="out", workers=-1), "workers must be >= 0, got -1"),
    (EvalOptions(checkpoint="a.pt", report="out"), "no segmentation masks"),
])
def test_bad_options_are_input_errors(options, message):
    with pytest.raises(InputError, match=message):
        evaluate(options)
