"""Table 1's methods: each loss against a small case computed here by hand (numpy, not the code
under test), the heads' bookkeeping, and ``--method`` end to end through llinet-train/llinet-eval.
How each method learns unseen classes is in tests/test_methods_zero_shot.py."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from builder.demo.zeroshot_set import SyntheticSpec, generate_synthetic_set
from model.evaluation.cli import main as eval_main
from model.evaluation.embed import load_embeddings
from model.evaluation.metrics.retrieval import retrieval_metrics
from model.methods.cme import cosine_pair_loss
from model.methods.common import NormSoftmax, cmpm_loss, project_onto
from model.methods.dar import ranking_loss, transfer_loss
from model.methods.dscmr import common_space_loss, invariance_loss, label_space_loss
from model.methods.registry import METHOD_NAMES, SIR_UNIDENTIFIED, build_method, trainable_methods
from model.methods.scan import hardest_negative_loss, scan_scores
from model.methods.timam import modality_loss
from model.methods.ulslvc import draw_imposters, ulslvc_loss
from model.network.config import ModelConfig
from model.network.factory import build_model
from model.training.cli import main as train_main

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

# Three pairs, classes 0, 0, 1: pairs 0 and 1 are positives of each other, only (0|1, 2) are negatives.
V = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 2.0]])
A = np.array([[0.8, 0.6], [1.0, 0.0], [-1.0, 1.0]])
LABELS = np.array([0, 0, 1])


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float32)


def cosines(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (y / np.linalg.norm(y, axis=1, keepdims=True)).T


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(-log_softmax(logits)[np.arange(len(labels)), labels].mean())


def test_dar_ranking_and_transfer_terms() -> None:
    c = cosines(V, A)
    margin = 0.1
    negatives = [(0, 2), (1, 2), (2, 0), (2, 1)]     # (i, j) with different classes
    # Image i ranks clips: Δ − c_ii + c_ij; clip j ranks images: Δ − c_jj + c_ij.
    expected = sum(max(0.0, margin - c[i, i] + c[i, j]) + max(0.0, margin - c[j, j] + c[i, j])
                   for i, j in negatives) / len(negatives)
    assert float(ranking_loss(t(V), t(A), torch.tensor(LABELS), margin)) == pytest.approx(expected, rel=1e-5)
    image_logits = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0]])
    audio_logits = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0]])
    p, q = np.exp(log_softmax(image_logits)), np.exp(log_softmax(audio_logits))
    kl = float(np.mean((p * np.log(p / q)).sum(axis=1)))
    teacher, student = t(image_logits).requires_grad_(True), t(audio_logits).requires_grad_(True)
    value = transfer_loss(teacher, student)
    assert float(value.detach()) == pytest.approx(kl, rel=1e-5)
    value.backward()
    assert teacher.grad is None and student.grad is not None     # the teacher is not moved by the transfer


def test_ulslvc_sampled_margin_ranking_on_dot_products() -> None:
    imposter_audio, imposter_image = torch.tensor([2, 2, 0]), torch.tensor([2, 2, 1])
    dots = V @ A.T
    expected = np.mean([max(0.0, 1 + dots[i, imposter_audio[i]] - dots[i, i])
                        + max(0.0, 1 + dots[imposter_image[i], i] - dots[i, i]) for i in range(3)])
    assert float(ulslvc_loss(t(V), t(A), imposter_audio, imposter_image)) == pytest.approx(expected, rel=1e-5)
    # Imposters come from another class; a sample whose class fills the batch gets none (-1, term 0).
    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    for _ in range(20):
        drawn = draw_imposters(labels)
        assert bool((labels[drawn] != labels).all())
    assert draw_imposters(torch.tensor([3, 3])).tolist() == [-1, -1]
    assert float(ulslvc_loss(t(V[:2]), t(A[:2]), torch.tensor([-1, -1]), torch.tensor([-1, -1]))) == 0.0


def test_scan_text_to_image_attention_score() -> None:
    regions = np.array([[[1.0, 0.0], [0.6, 0.8]]])               # one image, 2 regions (unit length)
    steps = np.array([[[0.8, 0.6], [0.0, 1.0]]])                 # one clip, 2 time steps
    smooth = 9.0
    s = steps[0] @ regions[0].T                                   # [step, region] cosines
    clipped = np.maximum(s, 0.0)
    normalised = clipped / np.sqrt((clipped ** 2).sum(axis=0, keepdims=True))   # over the steps
    alpha = np.exp(smooth * normalised) / np.exp(smooth * normalised).sum(axis=1, keepdims=True)
    attended = alpha @ regions[0]                                 # attended image vector per step
    relevance = [steps[0][k] @ attended[k] / np.linalg.norm(attended[k]) for k in range(2)]
    got = scan_scores(t(regions), t(steps), smooth)
    assert got.shape == (1, 1) and float(got[0, 0]) == pytest.approx(np.mean(relevance), rel=1e-5)


def test_scan_hardest_negative_triplet() -> None:
    scores = np.array([[0.9, 0.8, 0.3], [0.7, 0.6, 0.5], [0.4, 0.65, 0.2]])
    margin = 0.2
    # Other-class items only: for rows 0/1 the negative is column 2; for row 2, columns 0 and 1.
    expected = np.mean([max(0, margin - 0.9 + 0.3) + max(0, margin - 0.9 + 0.4),
                        max(0, margin - 0.6 + 0.5) + max(0, margin - 0.6 + 0.65),
                        max(0, margin - 0.2 + 0.65) + max(0, margin - 0.2 + 0.5)])
    assert float(hardest_negative_loss(t(scores), torch.tensor(LABELS), margin)) == pytest.approx(expected)


def test_dscmr_label_common_and_invariance_terms() -> None:
    n = 3
    image_logits = np.array([[0.5, 0.1], [0.9, -0.2], [0.3, 0.7]])
    audio_logits = np.array([[1.0, 0.0], [0.2, 0.2], [0.0, 0.4]])
    onehot = np.eye(2)[LABELS]
    j1 = (np.sqrt(((image_logits - onehot) ** 2).sum()) + np.sqrt(((audio_logits - onehot) ** 2).sum())) / n
    assert float(label_space_loss(t(image_logits), t(audio_logits), torch.tensor(LABELS))) == pytest.approx(j1)
    same = (LABELS[:, None] == LABELS[None, :]).astype(float)

    def nll(x, y):
        gamma = 0.5 * cosines(x, y)
        return np.mean(np.log1p(np.exp(gamma)) - same * gamma)

    j2 = nll(V, A) + nll(V, V) + nll(A, A)
    assert float(common_space_loss(t(V), t(A), torch.tensor(LABELS))) == pytest.approx(j2, rel=1e-5)
    assert float(invariance_loss(t(V), t(A))) == pytest.approx(np.sqrt(((V - A) ** 2).sum()) / n, rel=1e-5)


def cmpm_reference(x: np.ndarray, y: np.ndarray, labels: np.ndarray) -> float:
    same = (labels[:, None] == labels[None, :]).astype(float)
    q = same / same.sum(axis=1, keepdims=True)
    total = 0.0
    for a, b in ((x, y), (y, x)):
        log_p = log_softmax(a @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T)
        total += np.mean((np.exp(log_p) * (log_p - np.log(q + 1e-8))).sum(axis=1))
    return float(total)


def test_cmpm_matching_and_projection_classification() -> None:
    assert float(cmpm_loss(t(V), t(A), torch.tensor(LABELS))) == pytest.approx(
        cmpm_reference(V, A, LABELS), rel=1e-5)
    # x̂_i = (x_i · ȳ_i) ȳ_i; norm-softmax logits use unit-length class weights.
    direction = A / np.linalg.norm(A, axis=1, keepdims=True)
    projected = (V * direction).sum(axis=1, keepdims=True) * direction
    np.testing.assert_allclose(project_onto(t(V), t(A)).numpy(), projected, rtol=1e-5, atol=1e-6)
    classifier = NormSoftmax(2, 2)
    weight = np.array([[3.0, 4.0], [0.0, -2.0]])
    classifier.weight.data = t(weight)
    expected_logits = projected @ (weight / np.linalg.norm(weight, axis=1, keepdims=True)).T
    np.testing.assert_allclose(classifier(t(projected)).detach().numpy(), expected_logits, rtol=1e-5, atol=1e-6)
    # CMPM.loss = CMPM + CE of both projected classifications.
    method = build_method("cmpm", tiny_net(), 2)
    out = {"v": t(V), "a": t(A), "image_logits": t(expected_logits), "audio_logits": t(expected_logits[::-1].copy())}
    total, parts = method.loss(out, torch.tensor(LABELS))
    expected = (cmpm_reference(V, A, LABELS) + cross_entropy(expected_logits, LABELS)
                + cross_entropy(expected_logits[::-1], LABELS))
    assert float(total) == pytest.approx(expected, rel=1e-5)
    assert float(parts["match"]) == pytest.approx(cmpm_reference(V, A, LABELS), rel=1e-5)


def test_timam_identity_cmpm_and_adversarial_terms() -> None:
    image_modality, audio_modality = np.array([2.0, -1.0, 0.5]), np.array([0.3, -2.0, 1.0])
    image_fooling, audio_fooling = np.array([1.0, 0.0, -0.5]), np.array([-1.5, 0.2, 0.0])

    def bce(z, target):
        p = 1 / (1 + np.exp(-z))
        return float(-np.mean(target * np.log(p) + (1 - target) * np.log(1 - p)))

    discriminator = 0.5 * (bce(image_modality, 1.0) + bce(audio_modality, 0.0))
    fooling = 0.5 * (bce(image_fooling, 0.0) + bce(audio_fooling, 1.0))          # modality labels swapped
    assert float(modality_loss(t(image_modality), t(audio_modality))) == pytest.approx(discriminator, rel=1e-5)
    logits = np.array([[1.0, 0.0], [0.5, 0.5], [-1.0, 2.0]])
    out = {"v": t(V), "a": t(A), "image_logits": t(logits), "audio_logits": t(logits * 2),
           "image_modality": t(image_modality), "audio_modality": t(audio_modality),
           "image_fooling": t(image_fooling), "audio_fooling": t(audio_fooling)}
    total, parts = build_method("timam", tiny_net(), 2).loss(out, torch.tensor(LABELS))
    expected = (cross_entropy(logits, LABELS) + cross_entropy(logits * 2, LABELS)
                + cmpm_reference(V, A, LABELS) + discriminator + fooling)
    assert float(total) == pytest.approx(expected, rel=1e-5)
    assert float(parts["fooling"]) == pytest.approx(fooling, rel=1e-5)


def test_timam_turns_train_the_discriminator_and_the_encoders_apart() -> None:
    """The discriminator's term moves only the discriminator; the fooling term only the embeddings."""
    method = build_method("timam", tiny_net(), 2)
    v, a = t(V @ np.ones((2, 256)) / 16).requires_grad_(True), t(A @ np.ones((2, 256)) / 16).requires_grad_(True)
    out = method.heads({"v": v, "a": a})
    modality_loss(out["image_modality"], out["audio_modality"]).backward(retain_graph=True)
    assert v.grad is None and method.discriminator.hidden.weight.grad is not None
    method.discriminator.zero_grad()
    modality_loss(out["audio_fooling"], out["image_fooling"]).backward()
    assert v.grad is not None and a.grad is not None
    grad = method.discriminator.hidden.weight.grad
    assert grad is None or float(grad.abs().sum()) == 0


def test_cme_cosine_pairs_and_classification() -> None:
    c = cosines(V, A)
    margin = 0.1
    negatives = [(0, 2), (1, 2), (2, 0), (2, 1)]
    expected = np.mean(1 - np.diag(c)) + np.mean([max(0.0, c[i, j] - margin) for i, j in negatives])
    assert float(cosine_pair_loss(t(V), t(A), torch.tensor(LABELS), margin)) == pytest.approx(expected, rel=1e-5)
    logits = np.array([[0.2, 0.1], [1.5, -0.5], [0.0, 0.0]])
    out = {"v": t(V), "a": t(A), "image_logits": t(logits), "audio_logits": t(-logits)}
    total, _ = build_method("cme", tiny_net(), 2).loss(out, torch.tensor(LABELS))
    assert float(total) == pytest.approx(expected + cross_entropy(logits, LABELS) + cross_entropy(-logits, LABELS),
                                         rel=1e-5)


def test_dar_and_dscmr_totals_add_their_terms() -> None:
    image_logits = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0]])
    audio_logits = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0]])
    out = {"v": t(V), "a": t(A), "image_logits": t(image_logits), "audio_logits": t(audio_logits)}
    labels = torch.tensor(LABELS)
    total, parts = build_method("dar", tiny_net(), 2).loss(out, labels)
    p, q = np.exp(log_softmax(image_logits)), np.exp(log_softmax(audio_logits))
    expected = (float(parts["match"]) + cross_entropy(image_logits, LABELS)
                + float(np.mean((p * np.log(p / q)).sum(axis=1))))
    assert float(total) == pytest.approx(expected, rel=1e-5)
    total, parts = build_method("dscmr", tiny_net(), 2).loss(out, labels)
    onehot = np.eye(2)[LABELS]
    j1 = (np.linalg.norm(image_logits - onehot) + np.linalg.norm(audio_logits - onehot)) / 3
    j3 = np.linalg.norm(V - A) / 3
    assert float(total) == pytest.approx(j1 + 1e-3 * float(parts["match"]) + 0.1 * j3, rel=1e-5)


def tiny_net(image_size: int = 32, gamma_att: float = 0.0):
    return build_model(ModelConfig(backbone="resnet18", image_size=image_size, image_weights="none", n_mels=16,
                                   gamma_att=gamma_att))


@pytest.mark.parametrize("name", trainable_methods())
def test_every_method_trains_a_step_and_keeps_its_heads(name) -> None:
    """Forward, loss, backward: every trainable parameter of the method gets a gradient (DDP would wait
    for any that does not), ā is trained by LLINet only, and the heads' weights round-trip."""
    torch.manual_seed(0)
    net = tiny_net(gamma_att=1.0 if name == "llinet" else 0.0)
    method = build_method(name, net, 3)
    images, waves = torch.randn(6, 3, 32, 32), torch.randn(6, 1, 1600)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    out = method(images, waves, 16000)
    total, parts = method.loss({k: out[k] for k in method.gathered}, labels)
    assert math.isfinite(float(total.detach())) and {"match", "attention"} <= set(parts)
    total.backward()
    trainable = [(n, p) for n, p in method.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None]
    assert not missing, missing
    assert all(p.requires_grad for p in net.audio_transform.parameters()) == (name == "llinet")
    groups = method.parameter_groups()
    assert list(groups)[:3] == ["image", "audio", "transform"]
    assert {id(p) for group in groups.values() for p in group} >= {id(p) for _, p in trainable}
    copy = build_method(name, tiny_net(gamma_att=1.0 if name == "llinet" else 0.0), 3)
    copy.load_head_state(method.head_state())
    for key, value in method.head_state().items():
        assert torch.equal(copy.head_state()[key], value), key
    scores = method.similarity(method.image_repr(out), method.audio_repr(out))
    assert scores.shape == (6, 6) and torch.isfinite(scores).all()


def test_sir_is_named_but_refused(tmp_path, capsys) -> None:
    assert "sir" in METHOD_NAMES and "sir" not in trainable_methods()
    assert train_main(["--manifest", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o"), "--method", "sir"]) == 2
    err = capsys.readouterr().err
    assert "reference [26]" in err and SIR_UNIDENTIFIED in err


def test_attention_loss_weight_belongs_to_llinet(capsys) -> None:
    with pytest.raises(SystemExit):
        train_main(["--manifest", "x.csv", "--method", "cmpm", "--gamma-att", "1"])
    assert "the attention loss is LLINet's" in capsys.readouterr().err


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("methods")
    manifest = generate_synthetic_set(root / "data", SyntheticSpec(n_train_classes=4, per_class=6, seconds=0.1,
                                                                    image_size=40, seed=3))
    return manifest, root / "cache"


@pytest.mark.parametrize("name", ["scan", "ulslvc", "cmpm"])
def test_train_and_eval_end_to_end(name, small_set, tmp_path) -> None:
    """llinet-train --method X, then llinet-eval on its checkpoint: the report's retrieval numbers are
    the metric functions' on the saved embeddings (the method's own scores for SCAN and ULSLVC)."""
    manifest, cache = small_set
    run, report = tmp_path / "run", tmp_path / "report"
    assert train_main(["--manifest", str(manifest), "--out", str(run), "--cache-dir", str(cache), "--method", name,
                       "--backbone", "resnet18", "--image-size", "32", "--image-weights", "none", "--batch-size", "8",
                       "--epochs", "1", "--workers", "0", "--no-progress", "-q"]) == 0
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["method"]["name"] == name and state["train_options"]["method"] == name
    assert eval_main(["--checkpoint", str(run / "last.pt"), "--manifest", str(manifest), "--out", str(report),
                      "--no-localization", "--draws", "5", "--overlays", "0", "--workers", "0", "--no-progress",
                      "-q"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert (metrics["context"]["method"], metrics["context"]["train_seed"]) == (name, 200)
    test = load_embeddings(report / "embeddings.npz")["test"]
    assert (test.scores is not None) == (name in ("scan", "ulslvc"))
    if test.scores is None:
        from model.evaluation.metrics.retrieval import cosine_similarity
        scores = cosine_similarity(test.image, test.audio)
    else:
        scores = test.scores
    direct = retrieval_metrics(scores, test.classes, test.classes, n_draws=5, seed=0)
    for direction in ("image_to_audio", "audio_to_image"):
        assert metrics["retrieval"][direction]["llinet"]["map"] == pytest.approx(direct[direction]["llinet"]["map"])
        assert metrics["retrieval"][direction]["standard"] == pytest.approx(direct[direction]["standard"])


def test_a_resumed_baseline_equals_an_uninterrupted_run(small_set, tmp_path) -> None:
    manifest, cache = small_set
    common = ["--manifest", str(manifest), "--cache-dir", str(cache), "--method", "timam", "--backbone", "resnet18",
              "--image-size", "32", "--image-weights", "none", "--batch-size", "8", "--workers", "0", "-q",
              "--no-progress"]
    assert train_main([*common, "--out", str(tmp_path / "a"), "--epochs", "2"]) == 0
    assert train_main([*common, "--out", str(tmp_path / "b"), "--epochs", "1"]) == 0
    assert train_main([*common, "--out", str(tmp_path / "b"), "--epochs", "2", "--resume"]) == 0
    assert train_main([*common[:4], "--method", "cme", *common[6:], "--out", str(tmp_path / "b"), "--epochs", "3",
                       "--resume"]) == 2                                   # another method: another experiment
    straight, resumed = (torch.load(tmp_path / d / "last.pt", weights_only=True) for d in ("a", "b"))
    for key, value in straight["method"]["heads"].items():
        assert torch.equal(value, resumed["method"]["heads"][key]), key
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key


# --- Beats chance on unseen classes after brief CPU training -------------------------------------------
# One synthetic set for every method: 6 train classes (16 clips each), 3 unseen test classes (16 each).
# Tiny encoders (ResNet-18 at 32 px, 16 mel bands, 0.1 s clips) and 50 SGD steps of 8 class-paired
# samples (about 4 epochs), lr 0.01: 6-8 s per method on one thread of a 2-core machine.
ZERO_SHOT = SyntheticSpec(n_train_classes=6, per_class=16, seconds=0.1, image_size=40, seed=0)
STEPS, BATCH, LR = 50, 8, 0.01
MARGIN = 0.08   # required: mean of both directions' macro mAP >= chance + 0.08


def expected_random_ap(relevant: int, gallery: int) -> float:
    """E[AP] of a uniformly random ranking with ``relevant`` relevant items among ``gallery``:
    (1/N)[H_N + (n-1)/(N-1) (N - H_N)], H_N the harmonic number."""
    harmonic = sum(1.0 / k for k in range(1, gallery + 1))
    return (harmonic + (relevant - 1) / (gallery - 1) * (gallery - harmonic)) / gallery


def _decoded(frame, size: int, samples: int):
    from model.network.inputs import load_rgb, load_waveform, resize_center_crop

    images = torch.from_numpy(np.stack([resize_center_crop(load_rgb(p), size) for p in frame["frame_path"]]))
    waves = torch.stack([torch.from_numpy(load_waveform(p)[0].mean(0, keepdims=True)[:, :samples])
                         for p in frame["audio_path"]])
    classes = sorted(set(frame["class"]))
    return images, waves, torch.tensor([classes.index(c) for c in frame["class"]])


@pytest.fixture(scope="module")
def zero_shot_data(tmp_path_factory):
    from model.training.data import read_media_manifest

    frame = read_media_manifest(generate_synthetic_set(tmp_path_factory.mktemp("zero_shot"), ZERO_SHOT))
    samples = int(round(ZERO_SHOT.seconds * ZERO_SHOT.sample_rate))
    return {split: _decoded(frame[frame["split"] == split].reset_index(drop=True), 32, samples)
            for split in ("train", "test")}


@pytest.mark.parametrize("name", [n for n in trainable_methods() if n != "llinet"])   # llinet: test_synthetic.py
def test_brief_training_beats_chance_on_unseen_classes(name, zero_shot_data) -> None:
    from model.network.inputs import normalise_images
    from model.training.data import epoch_plan
    from model.training.engine import TrainStep, build_optimizer

    images, waves, labels = zero_shot_data["train"]
    torch.manual_seed(0)
    method = build_method(name, tiny_net(), int(labels.max()) + 1)
    optimizer, _ = build_optimizer(method, LR, 0.9, 1e-3, 10, 0.5)
    step = TrainStep(method, optimizer, None, torch.device("cpu"), ZERO_SHOT.sample_rate, method=method)
    method.train()
    done, epoch = 0, 0
    while done < STEPS:
        for spec in epoch_plan(labels.numpy(), epoch=epoch, seed=0, batch_size=BATCH, pairing="class",
                               resized=32, crop=32, augment=False)[:STEPS - done]:
            rows = torch.from_numpy(spec)
            loss, _ = step({"images": images[rows[:, 0]], "waves": waves[rows[:, 1]], "labels": labels[rows[:, 0]]})
            assert math.isfinite(float(loss)), (name, done)
            done += 1
        epoch += 1
    test_images, test_waves, test_labels = zero_shot_data["test"]
    method.eval()
    with torch.no_grad():
        out = method(normalise_images(test_images), test_waves, ZERO_SHOT.sample_rate)
        scores = method.similarity(method.image_repr(out), method.audio_repr(out)).numpy()
    metrics = retrieval_metrics(scores, test_labels.numpy(), test_labels.numpy(), n_draws=2)
    mean_map = np.mean([metrics[d]["standard"]["map_macro"] for d in ("image_to_audio", "audio_to_image")])
    counts = np.bincount(test_labels.numpy())
    assert len(counts) == 3 and len(set(counts.tolist())) == 1      # 3 unseen classes, equal sizes
    chance = expected_random_ap(int(counts[0]), len(test_labels))    # 0.382 for 16 of 48
    assert mean_map >= chance + MARGIN, (name, mean_map, chance)
