"""Log-mel inside the model equals librosa's (the authors' features) within 1e-4 relative."""
from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from model.network.logmel import LogMel, frame_samples, slaney_mel_filterbank


def _signal(sample_rate: int, seconds: float = 1.02, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(sample_rate)
    time = np.arange(int(sample_rate * seconds)) / sample_rate
    tone = 0.4 * np.sin(2 * np.pi * 440 * time) + 0.2 * np.sin(2 * np.pi * 3100 * time)
    return (tone[None] + rng.normal(0, 0.05, (channels, len(time)))).astype(np.float32)


@pytest.mark.parametrize("sample_rate", [44100, 22050, 16000])
def test_logmel_matches_librosa_within_1e4_relative(sample_rate: int) -> None:
    # 22,050 Hz gives an odd n_fft (551): torchaudio's own filterbank is ~14% off there.
    wave = _signal(sample_rate, channels=2)
    mono = wave.mean(axis=0)  # librosa.load(mono=True) averages channels
    n_fft, hop = frame_samples(sample_rate, 25), frame_samples(sample_rate, 10)
    reference = librosa.feature.melspectrogram(y=mono.astype(np.float64), sr=sample_rate, n_fft=n_fft,
                                               hop_length=hop, n_mels=40)
    ours = LogMel()(torch.from_numpy(wave)[None], sample_rate)[0].double().numpy().T  # [40, frames]
    assert ours.shape == reference.shape
    mel = np.exp(ours) - 1e-6
    relative = np.abs(mel - reference) / reference
    assert relative.max() < 1e-4, relative.max()
    np.testing.assert_allclose(ours, np.log(reference + 1e-6), rtol=1e-4, atol=1e-4)


def test_frame_sizes_follow_the_clip_rate() -> None:
    assert (frame_samples(44100, 25), frame_samples(44100, 10)) == (1102, 441)
    assert (frame_samples(16000, 25), frame_samples(16000, 10)) == (400, 160)


def test_filterbank_matches_librosa_mel_filters() -> None:
    for sample_rate, n_fft in ((44100, 1102), (22050, 551)):
        ours = slaney_mel_filterbank(sample_rate, n_fft, 40).numpy().T
        reference = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=40)
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-8)


def test_logmel_is_natural_log_not_db() -> None:
    silence = torch.zeros(1, 1, 16000)
    features = LogMel()(silence, 16000)
    assert torch.allclose(features, torch.full_like(features, float(np.log(1e-6))))
