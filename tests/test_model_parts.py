"""LLINet parts: shapes, freezing, attention gating, heads, losses, image weights."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision

from model.network.attention import attend, attention_scores
from model.network.config import ModelConfig
from model.network.factory import build_model
from model.network.image_encoder import ImageWeightsError, imagenet_checkpoint_path
from model.network.loss import LLINetLoss, matching_loss, same_class_mask

SMALL = ModelConfig(backbone="resnet18", image_size=64, image_weights="none")


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return build_model(SMALL)


def test_default_config_is_the_paper() -> None:
    config = ModelConfig()
    assert (config.backbone, config.image_size, config.image_weights) == ("resnet101", 244, "imagenet")
    assert (config.n_mels, config.window_ms, config.hop_ms, config.log_offset) == (40, 25.0, 10.0, 1e-6)
    assert (config.gamma_match, config.gamma_att, config.frozen_bn) == (10.0, 1.0, False)
    assert (config.embed_dim, config.layer4_channels, config.local_map_size) == (1024, 2048, 16)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({**config.to_dict(), "bogus": 1})


def test_paper_model_shapes_and_trainable_parts() -> None:
    model = build_model(ModelConfig(image_weights="none"))
    model.eval()
    with torch.no_grad():
        v, local = model.embed_images(torch.randn(1, 3, 244, 244))
        a = model.embed_audio(torch.randn(1, 2, 44100) * 0.1, 44100)
        s = model.localization_map(local, a)
    assert v.shape == (1, 1024) and local.shape == (1, 1024, 16, 16) and a.shape == (1, 1024)
    assert s.shape == (1, 16, 16)
    assert torch.allclose(a.norm(dim=1), torch.ones(1), atol=1e-5)
    encoder = model.image_encoder
    assert [m.out_features for m in (encoder.head[0], encoder.head[2])] == [2048, 1024]
    assert not any(p.requires_grad for m in encoder.frozen_modules() for p in m.parameters())
    assert all(p.requires_grad for p in encoder.attention_layer.parameters())
    assert len(encoder.attention_layer) == 23  # ResNet-101's layer3 has 23 bottleneck blocks


def test_attention_layer_starts_as_a_copy_of_layer3(small_model) -> None:
    encoder = small_model.image_encoder
    for (name, copy), (_, original) in zip(encoder.attention_layer.state_dict().items(),
                                           encoder.layer3.state_dict().items(), strict=True):
        assert torch.equal(copy, original), name
        assert copy.data_ptr() != original.data_ptr()


def test_head_init_uniform_01(small_model) -> None:
    for layer in (small_model.image_encoder.head[0], small_model.image_encoder.head[2]):
        assert layer.weight.abs().max() <= 0.1 and layer.weight.abs().max() > 0.09
        assert layer.weight.std() > 0.05  # uniform(-0.1, 0.1) has std 0.0577


def test_image_forward_gates_layer3_with_softmax_plus_one(small_model) -> None:
    encoder = small_model.image_encoder.eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        v, local = encoder(images)
        x2 = encoder.stem(images)
        expected_local = encoder.attention_layer(x2)
        gate = torch.softmax(expected_local.flatten(2), dim=2).view_as(expected_local) + 1
        pooled = encoder.layer4(encoder.layer3(x2) * gate).mean(dim=(2, 3))
        expected_v = encoder.head(pooled)
    assert torch.allclose(local, expected_local) and torch.allclose(v, expected_v, atol=1e-6)


def test_attention_map_and_attended_feature_by_hand() -> None:
    local = torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]]]])          # B=1, D=2, h=1, w=2
    audio_bar = torch.tensor([[1.0, 1.0]])
    scores, attended = attend(local, audio_bar)
    assert torch.equal(scores, torch.tensor([[[1.0, 2.0]]]))        # s_p = v̄_p · ā
    weights = torch.softmax(torch.tensor([1.0, 2.0]), 0) + 1
    expected = weights[0] * torch.tensor([1.0, 0.0]) + weights[1] * torch.tensor([0.0, 2.0])
    assert torch.allclose(attended[0], expected)
    assert torch.equal(attention_scores(local, audio_bar), scores)


def test_localization_map_applies_the_audio_transform(small_model) -> None:
    local = torch.randn(2, 256, 4, 4)
    a = F.normalize(torch.randn(2, 256), dim=1)
    with torch.no_grad():
        expected = torch.einsum("bdhw,bd->bhw", local, torch.relu(small_model.audio_transform.linear(a)))
        assert torch.allclose(small_model.localization_map(local, a), expected, atol=1e-5)


def test_matching_loss_hand_computed_with_same_class_mask() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    assert same_class_mask(labels).tolist() == [[False, True, False], [True, False, False],
                                                [False, False, False]]
    cos = F.normalize(x, dim=1) @ F.normalize(y, dim=1).T
    logits = 10 * cos
    # Rows (x -> y): row 0 drops column 1, row 1 drops column 0.
    row = [-(logits[0, 0] - torch.logsumexp(logits[0, [0, 2]], 0)),
           -(logits[1, 1] - torch.logsumexp(logits[1, [1, 2]], 0)),
           -(logits[2, 2] - torch.logsumexp(logits[2], 0))]
    col = [-(logits[0, 0] - torch.logsumexp(logits[[0, 2], 0], 0)),
           -(logits[1, 1] - torch.logsumexp(logits[[1, 2], 1], 0)),
           -(logits[2, 2] - torch.logsumexp(logits[:, 2], 0))]
    expected = torch.stack(row).mean() + torch.stack(col).mean()
    assert torch.allclose(matching_loss(x, y, labels, 10.0), expected, atol=1e-6)
    # Without the mask the same-class pair would be a negative: a different (larger) loss.
    assert matching_loss(x, y, torch.tensor([0, 1, 2]), 10.0) > expected


def test_total_loss_weights_attention_term() -> None:
    torch.manual_seed(1)
    v, a, v_hat, a_bar = (torch.randn(4, 8) for _ in range(4))
    labels = torch.tensor([0, 1, 2, 3])
    total, parts = LLINetLoss(10.0, 0.8)(v, a, v_hat, a_bar, labels)
    assert torch.allclose(total, parts["match"] + 0.8 * parts["attention"])
    assert torch.allclose(parts["attention"], matching_loss(v_hat, a_bar, labels, 10.0))


def _bn_running_mean(model) -> torch.Tensor:
    return model.image_encoder.stem[1].running_mean.clone()


def test_frozen_backbone_bn_in_train_mode_by_default_and_frozen_option() -> None:
    images = torch.randn(4, 3, 64, 64)
    torch.manual_seed(0)
    official = build_model(SMALL).train()
    before = _bn_running_mean(official)
    official.embed_images(images)
    assert not torch.equal(before, _bn_running_mean(official)), "official: running stats update"
    torch.manual_seed(0)
    frozen = build_model(ModelConfig(**{**SMALL.to_dict(), "frozen_bn": True})).train()
    before = _bn_running_mean(frozen)
    frozen.embed_images(images)
    assert torch.equal(before, _bn_running_mean(frozen))
    assert frozen.audio_encoder.training and frozen.image_encoder.attention_layer[0].bn1.training


def test_gradients_reach_only_trainable_parts(small_model) -> None:
    small_model.train()
    out = small_model(torch.randn(4, 3, 64, 64), torch.randn(4, 1, 8000) * 0.1, 16000)
    total, _ = LLINetLoss()(out["v"], out["a"], out["v_hat"], out["a_bar"], torch.tensor([0, 1, 2, 3]))
    small_model.zero_grad()
    total.backward()
    encoder = small_model.image_encoder
    assert encoder.attention_layer[0].conv1.weight.grad.abs().sum() > 0
    assert encoder.head[0].weight.grad.abs().sum() > 0
    assert small_model.audio_encoder.fc.weight.grad.abs().sum() > 0
    assert small_model.audio_transform.linear.weight.grad.abs().sum() > 0
    assert encoder.layer4[0].conv1.weight.grad is None


def test_image_weights_from_path(tmp_path) -> None:
    torch.manual_seed(3)
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(reference.state_dict(), path)
    model = build_model(ModelConfig(backbone="resnet18", image_size=64, image_weights=str(path)))
    assert torch.equal(model.image_encoder.layer4[0].conv1.weight, reference.layer4[0].conv1.weight)
    assert torch.equal(model.image_encoder.attention_layer[0].conv1.weight, reference.layer3[0].conv1.weight)
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "r34.pth")
    with pytest.raises(ImageWeightsError, match="do not fit torchvision resnet18"):
        build_model(ModelConfig(backbone="resnet18", image_weights=str(tmp_path / "r34.pth")))
    with pytest.raises(ImageWeightsError, match="not found"):
        build_model(ModelConfig(backbone="resnet18", image_weights=str(tmp_path / "missing.pth")))


def test_imagenet_weights_offline_error_names_the_hub_path(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    target = imagenet_checkpoint_path("resnet18")
    assert target == tmp_path / "hub" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    try:
        build_model(ModelConfig(backbone="resnet18", image_size=64, image_weights="imagenet"))
    except ImageWeightsError as exc:  # offline (this machine): the message says where the file goes
        assert str(target) in str(exc) and "download.pytorch.org" in str(exc)
    else:  # online: torchvision downloaded the file to exactly that place
        assert target.is_file()


def test_embeddings_are_finite_and_audio_unit_norm_under_bf16(small_model) -> None:
    small_model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        a = small_model.embed_audio(torch.randn(2, 1, 8000) * 0.1, 16000)
    assert torch.isfinite(a).all() and math.isclose(float(a.float().norm(dim=1)[0]), 1.0, rel_tol=1e-2)
