"""The paper and official-code recipes: each switch alone, and the whole official-code forward pass
against the equations written out here (not through the model's own functions)."""
from __future__ import annotations

import json
import warnings

import librosa
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from builder.demo.zeroshot_set import SyntheticSpec, generate_synthetic_set
from builder.errors import InputError
from model.evaluation.api import EvalOptions, evaluate, load_model
from model.evaluation.cli import main as eval_main
from model.evaluation.embed import EmbeddingSet, save_embeddings
from model.evaluation.metrics.localization import OFFICIAL_IOU_EPSILON, iou, llinet_localization
from model.network.config import ModelConfig
from model.network.factory import build_model
from model.network.logmel import LogMel, frame_samples
from model.network.loss import LLINetLoss
from model.training.cli import main as train_main
from model.training.engine import build_optimizer
from model.training.options import TrainOptions, parse_options
from model.training.recipes import RECIPES

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

RATE, SAMPLES = 16000, 4000
LENGTHS = [4000, 2500, 4000, 1700]          # two clips shorter than the clip length
TINY = {"backbone": "resnet18", "image_size": 64, "image_weights": "none"}


def official_config() -> ModelConfig:
    return TrainOptions(recipe="official-code", **TINY).model_config()


def paper_config() -> ModelConfig:
    return TrainOptions(**TINY).model_config()


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    images = torch.randn(4, 3, 64, 64, generator=generator)
    waves = torch.randn(4, 1, SAMPLES, generator=generator) * 0.1
    for row, length in enumerate(LENGTHS):
        waves[row, :, length:] = 0.0                       # zero-padded like the media cache
    return images, waves, torch.tensor(LENGTHS), torch.tensor([0, 1, 0, 2])


def _authors_logmel(waves: torch.Tensor) -> torch.Tensor:
    """Their 2020 features: librosa < 0.9 defaults (center, reflect) on each clip's own samples, natural
    log + 1e-6, then 0.0 frames up to the frame count of a full-length clip."""
    n_fft, hop = frame_samples(RATE, 25), frame_samples(RATE, 10)
    frames = 1 + SAMPLES // hop
    out = np.zeros((len(waves), frames, 40))
    for row, length in enumerate(LENGTHS):
        clip = waves[row, 0, :length].double().numpy()
        mel = librosa.feature.melspectrogram(y=clip, sr=RATE, n_fft=n_fft, hop_length=hop, n_mels=40,
                                             center=True, pad_mode="reflect")
        out[row, :mel.shape[1]] = np.log(mel + 1e-6).T
    return torch.from_numpy(out).float()


def _masked_matching(x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logits = 10.0 * (x / x.norm(dim=1, keepdim=True)) @ (y / y.norm(dim=1, keepdim=True)).T
    same = (labels[:, None] == labels[None, :]) & ~torch.eye(len(labels), dtype=torch.bool)
    logits = torch.where(same, torch.tensor(float("-inf")), logits)
    target = torch.arange(len(labels))
    rows = -(logits.log_softmax(dim=1)[target, target]).mean()
    cols = -(logits.log_softmax(dim=0)[target, target]).mean()
    return rows + cols


def test_official_code_forward_equals_the_equations_and_the_paper_recipe_does_not() -> None:
    torch.manual_seed(0)
    official = build_model(official_config()).eval()
    paper = build_model(paper_config()).eval()
    paper.load_state_dict(official.state_dict())
    images, waves, lengths, labels = _batch()
    encoder = official.image_encoder
    with torch.no_grad():
        out = official(images, waves, RATE, lengths=lengths)
        paper_out = paper(images, waves, RATE, lengths=lengths)
        # Image path: gate = (exp(v̄) normalised over the BATCH, per channel and position) + 1.
        x2 = encoder.stem(images)
        local = encoder.attention_layer(x2)
        e = torch.exp(local - local.max(dim=0, keepdim=True).values)
        gate = e / e.sum(dim=0, keepdim=True) + 1.0
        v = encoder.head(encoder.layer4(encoder.layer3(x2) * gate).mean(dim=(2, 3)))
        # Audio path on the authors' features; ā = ReLU(W a + b); s_p = v̄_pᵀ ā; v̂ = Σ_p (softmax(s)_p + 1) v̄_p.
        a = official.audio_encoder(_authors_logmel(waves))
        a_bar = torch.relu(a @ official.audio_transform.linear.weight.T + official.audio_transform.linear.bias)
        s = (local * a_bar[:, :, None, None]).sum(dim=1)
        weights = torch.softmax(s.flatten(1), dim=1) + 1.0
        v_hat = (local.flatten(2) * weights[:, None, :]).sum(dim=2)
    torch.testing.assert_close(out["local"], local)
    torch.testing.assert_close(out["v"], v, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["a"], a, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["scores"], s, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out["v_hat"], v_hat, rtol=1e-4, atol=1e-4)
    # Their default --mode retrieval: the matching loss only.
    total, parts = LLINetLoss(official.config.gamma_match, official.config.gamma_att)(
        out["v"], out["a"], out["v_hat"], out["a_bar"], labels)
    assert float(total) == pytest.approx(float(_masked_matching(v, a, labels)), rel=1e-4)
    assert float(parts["attention"]) > 0 and float(total) == pytest.approx(float(parts["match"]))

    # The paper recipe on the same weights: the gate over positions and zero-padded waveforms differ.
    def relative(x: torch.Tensor, y: torch.Tensor) -> float:
        return float((x - y).norm() / y.norm())

    assert relative(paper_out["v"], out["v"]) > 1e-3
    full = [row for row, length in enumerate(LENGTHS) if length == SAMPLES]
    short = [row for row, length in enumerate(LENGTHS) if length < SAMPLES]
    assert relative(paper_out["a"][short], out["a"][short]) > 1e-3
    # Full-length clips differ only by the edge frames' padding (reflect vs zeros).
    assert 0 < relative(paper_out["a"][full], out["a"][full]) < relative(paper_out["a"][short], out["a"][short])
    torch.testing.assert_close(paper_out["local"], out["local"])


def test_batch_gate_is_pytorchs_implicit_softmax_dim_and_depends_on_batch_mates() -> None:
    torch.manual_seed(0)
    official = build_model(official_config()).eval()
    paper = build_model(paper_config()).eval()
    paper.load_state_dict(official.state_dict())
    images = _batch()[0]
    with torch.no_grad():
        local = official.image_encoder.attention_layer(official.image_encoder.stem(images))
        flat = local.flatten(2)
        assert flat.dim() == 3
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            legacy = F.softmax(flat)  # the authors' call: no dim
        assert any("Implicit dimension" in str(w.message) for w in caught)
        torch.testing.assert_close(legacy, F.softmax(flat, dim=official.image_encoder.gate_dim))
        alone_official, batch_official = official.embed_images(images[:1])[0], official.embed_images(images)[0][:1]
        alone_paper, batch_paper = paper.embed_images(images[:1])[0], paper.embed_images(images)[0][:1]
    # Alone, softmax over a batch of one is 1: the gate is 2 everywhere.
    assert float((alone_official - batch_official).norm() / batch_official.norm()) > 1e-3
    torch.testing.assert_close(alone_paper, batch_paper, rtol=1e-4, atol=1e-5)


def test_recipes_set_defaults_and_explicit_options_override() -> None:
    paper, official = parse_options(["m.csv"]), parse_options(["m.csv", "--recipe", "official-code"])
    assert paper == TrainOptions(manifest="m.csv")
    assert (paper.gate_softmax, paper.gamma_att, paper.schedule, paper.epochs, paper.logmel_pad,
            paper.short_clip_pad) == ("positions", 1.0, "paper", 100, "constant", "waveform")
    assert (official.gate_softmax, official.gamma_att, official.schedule, official.epochs, official.logmel_pad,
            official.short_clip_pad) == ("batch", 0.0, "official", 101, "reflect", "logmel")
    mixed = parse_options(["m.csv", "--recipe", "official-code", "--gamma-att", "1", "--gate-softmax", "positions",
                           "--epochs", "7"])
    assert (mixed.gamma_att, mixed.gate_softmax, mixed.epochs, mixed.schedule, mixed.logmel_pad) == \
        (1.0, "positions", 7, "official", "reflect")
    alone = parse_options(["m.csv", "--logmel-pad", "reflect", "--attention-loss-weight", "0.8"])
    assert (alone.recipe, alone.logmel_pad, alone.gamma_att, alone.short_clip_pad) == \
        ("paper", "reflect", 0.8, "waveform")
    assert parse_options(["m.csv", "--schedule", "official"]).epochs == 101
    # Every recipe switch reaches the model config (recorded in checkpoints).
    config = official.model_config()
    assert (config.gate_softmax, config.gamma_att, config.logmel_pad, config.short_clip_pad) == \
        ("batch", 0.0, "reflect", "logmel")
    assert set(RECIPES["paper"]) == set(RECIPES["official-code"])
    with pytest.raises(ValueError, match="recipe"):
        TrainOptions(recipe="nope")
    with pytest.raises(ValueError, match="gate_softmax"):
        ModelConfig(gate_softmax="channels")


def _image_lrs(offset: int, epochs: int = 25) -> list[float]:
    model = build_model(ModelConfig(**TINY))
    optimizer, scheduler = build_optimizer(model, 1.0, 0.9, 1e-3, 10, 0.5, offset)
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        assert optimizer.param_groups[1]["lr"] == optimizer.param_groups[2]["lr"] == 1.0
        optimizer.step()
        scheduler.step()
    return lrs


def test_schedules_halve_at_their_epochs() -> None:
    paper, official = _image_lrs(TrainOptions().lr_halving_offset), \
        _image_lrs(TrainOptions(schedule="official").lr_halving_offset)
    # 1-based epoch numbers where the image lr first takes each new value.
    halvings = lambda lrs: [epoch for epoch in range(2, len(lrs) + 1) if lrs[epoch - 1] < lrs[epoch - 2]]  # noqa: E731
    assert halvings(paper) == [11, 21] and halvings(official) == [10, 20]
    assert paper[9] == 1.0 and official[9] == 0.5 and official[19] == paper[20] == 0.25


def test_logmel_pad_modes_equal_librosa_center_pad_modes() -> None:
    wave = (np.random.default_rng(1).normal(0, 0.1, RATE)).astype(np.float32)
    n_fft, hop = frame_samples(RATE, 25), frame_samples(RATE, 10)
    results = {}
    for mode in ("constant", "reflect"):
        reference = np.log(librosa.feature.melspectrogram(y=wave.astype(np.float64), sr=RATE, n_fft=n_fft,
                                                          hop_length=hop, n_mels=40, center=True,
                                                          pad_mode=mode) + 1e-6).T
        ours = LogMel(pad_mode=mode)(torch.from_numpy(wave)[None, None], RATE)[0].double().numpy()
        np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4)
        results[mode] = ours
    # Only the edge frames (within half a window of either end) depend on the padding.
    differs = np.flatnonzero(np.abs(results["constant"] - results["reflect"]).max(axis=1) > 1e-3)
    edge = n_fft // 2 // hop + 1
    assert set(differs) <= set(range(edge)) | set(range(len(results["reflect"]) - edge, len(results["reflect"])))
    assert 0 in differs


def test_short_clip_pad_logmel_domain_vs_waveform() -> None:
    _, waves, lengths, _ = _batch()
    hop = frame_samples(RATE, 10)
    by_waveform = LogMel()(waves, RATE, lengths)          # paper: lengths unused, zeros are -13.8
    by_logmel = LogMel(short_clip_pad="logmel")(waves, RATE, lengths)
    row, length = 3, LENGTHS[3]
    own = 1 + length // hop
    assert torch.all(by_logmel[row, own:] == 0.0)
    assert torch.allclose(by_waveform[row, own + 2:], torch.tensor(float(np.log(1e-6))))
    torch.testing.assert_close(by_logmel[row, :own - 3], by_waveform[row, :own - 3])
    torch.testing.assert_close(by_logmel[0], by_waveform[0])  # a full-length clip is unchanged
    # Without lengths every clip counts as full length.
    torch.testing.assert_close(LogMel(short_clip_pad="logmel")(waves, RATE), by_waveform)


def test_loss_composition_follows_gamma_att() -> None:
    generator = torch.Generator().manual_seed(0)
    v, a, v_hat, a_bar = (torch.randn(6, 8, generator=generator, requires_grad=True) for _ in range(4))
    labels = torch.tensor([0, 1, 2, 0, 1, 3])
    total, parts = LLINetLoss(gamma_att=0.8)(v, a, v_hat, a_bar, labels)
    assert float(total.detach()) == pytest.approx(float(parts["match"] + 0.8 * parts["attention"]))
    total, parts = LLINetLoss(gamma_att=0.0)(v, a, v_hat, a_bar, labels)
    total.backward()
    assert float(total.detach()) == pytest.approx(float(parts["match"])) and float(parts["attention"]) > 0
    assert v.grad is not None and a.grad is not None and v_hat.grad is None and a_bar.grad is None
    # Without the attention loss, ā's Linear gets no gradient: frozen, it stays as initialised.
    model = build_model(official_config())
    assert not any(p.requires_grad for p in model.audio_transform.parameters())
    assert all(p.requires_grad for p in build_model(paper_config()).audio_transform.parameters())


def test_iou_epsilon_fails_an_iou_exactly_on_a_threshold() -> None:
    maps = np.zeros((1, 4, 4))
    maps[0, 0, 0], maps[0, 0, 1] = 1.0, 0.9          # k = 5 predicts both cells (> 0.5 · max)
    masks = np.zeros((1, 4, 4), bool)
    masks[0, 0, 0] = True                             # IoU = 1 / 2, exactly the threshold 25/50
    ours = llinet_localization(maps, masks, 5)
    official = llinet_localization(maps, masks, 5, iou_epsilon=OFFICIAL_IOU_EPSILON)
    assert ours["ious"][0] == 0.5 and official["ious"][0] == pytest.approx(1 / (2 + 1e-5))
    assert ours["curve"][25] == 1.0 and official["curve"][25] == 0.0      # t = 0.50
    assert ours["auc"] == pytest.approx(26 / 51) and official["auc"] == pytest.approx(25 / 51)
    # Off the thresholds and for an empty union the two agree.
    masks[0, 1, 1] = True
    assert llinet_localization(maps, masks, 5)["auc"] == llinet_localization(maps, masks, 5, 1e-5)["auc"]
    assert iou(np.zeros((1, 2, 2), bool), np.zeros((1, 2, 2), bool), 1e-5)[0] == 0.0


def _embedding_set(count: int) -> EmbeddingSet:
    rng = np.random.default_rng(0)
    classes = np.array([f"class_{i % 3}" for i in range(count)])
    return EmbeddingSet("test", np.array([f"clip{i:05d}_0" for i in range(count)]), classes,
                        rng.standard_normal((count, 8)).astype(np.float32),
                        rng.standard_normal((count, 8)).astype(np.float32), np.zeros((count, 4, 4), np.float32))


def test_drop_last_batch_leaves_out_the_last_partial_batch(tmp_path) -> None:
    embeddings = save_embeddings(tmp_path / "e.npz", {"test": _embedding_set(75)})
    common = {"embeddings": embeddings, "localization": False, "draws": 5, "overlays": 0, "progress": False}
    full = evaluate(EvalOptions(report=tmp_path / "full", **common))
    dropped = evaluate(EvalOptions(report=tmp_path / "dropped", drop_last_batch=True, batch_size=32, **common))
    assert full.metrics["n_clips"] == 75 and full.context["dropped_clips"] == 0
    assert dropped.metrics["n_clips"] == 64 and dropped.context["dropped_clips"] == 11
    first = _embedding_set(75).subset(np.arange(64))
    evaluated = json.loads((tmp_path / "dropped" / "metrics.json").read_text())
    assert evaluated["clips_per_class"] == {c: int(n) for c, n in zip(*np.unique(first.classes, return_counts=True),
                                                                      strict=True)}
    # The command line flag sets the same option.
    assert eval_main(["--embeddings", str(embeddings), "--out", str(tmp_path / "cli"), "--no-localization",
                      "--draws", "5", "--overlays", "0", "--drop-last-batch", "--batch-size", "25",
                      "--iou-epsilon", "1e-5"]) == 0
    context = json.loads((tmp_path / "cli" / "metrics.json").read_text())["context"]
    assert (context["dropped_clips"], context["drop_last_batch"], context["iou_epsilon"]) == (0, True, 1e-5)
    with pytest.raises(InputError, match="fewer than one batch"):
        evaluate(EvalOptions(report=tmp_path / "x", drop_last_batch=True, batch_size=128, **common))


def test_official_code_run_records_its_switches_and_evaluation_uses_them(tmp_path) -> None:
    manifest = generate_synthetic_set(tmp_path / "data", SyntheticSpec(n_train_classes=3, per_class=6,
                                                                        seconds=0.25, image_size=48, seed=4))
    out = tmp_path / "run"
    assert train_main(["--manifest", str(manifest), "--out", str(out), "--recipe", "official-code", "--epochs", "2",
                       "--lr-decay-every", "1", "--backbone", "resnet18", "--image-size", "40", "--image-weights",
                       "none", "--batch-size", "6", "--workers", "0", "--no-progress"]) == 0
    state = torch.load(out / "last.pt", weights_only=True)
    config = ModelConfig.from_dict(state["config"])
    assert (config.gate_softmax, config.gamma_att, config.logmel_pad, config.short_clip_pad) == \
        ("batch", 0.0, "reflect", "logmel")
    assert (state["train_options"]["recipe"], state["train_options"]["schedule"]) == ("official-code", "official")
    # Official schedule, period 1: the image lr halves from the first epoch on (1-based epoch 1 = 10 in the
    # full recipe's period 10); the audio lr never decays.
    assert [(row["lr_image"], row["lr_audio"]) for row in state["history"]] == [(0.0005, 0.001), (0.00025, 0.001)]
    # Matching loss only: ā's Linear is untouched by training (no gradient, so no weight decay either).
    torch.manual_seed(200)
    initial = build_model(ModelConfig.from_dict({**state["config"], "image_weights": "none"})).state_dict()
    for name in ("audio_transform.linear.weight", "audio_transform.linear.bias"):
        assert torch.equal(state["model"][name], initial[name]), name
    assert not torch.equal(state["model"]["image_encoder.head.0.weight"], initial["image_encoder.head.0.weight"])
    # Evaluation rebuilds the same network switches from the checkpoint.
    model, _, _ = load_model(out / "last.pt", torch.device("cpu"))
    assert model.image_encoder.gate_dim == 0 and model.logmel.pad_mode == "reflect"
    assert model.logmel.short_clip_pad == "logmel"
