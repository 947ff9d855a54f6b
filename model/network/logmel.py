"""Log-mel features computed inside the model (on the training device).

Matches the official features: ``log(librosa.feature.melspectrogram(y, sr,
n_fft=win, hop_length=hop, n_mels=40) + 1e-6)`` with win = 25 ms and hop = 10 ms
of the clip's sample rate (the authors' code). torchaudio equals librosa only with
``mel_scale='slaney', norm='slaney', pad_mode='constant'`` (its defaults differ
by ~37%); the filterbank is built here (see ``slaney_mel_filterbank``) and the
STFT comes from torchaudio on frames padded here; a test checks the match with
librosa within 1e-4.

Two switches reproduce the authors' 2020 pipeline (``ModelConfig``):
``pad_mode='reflect'`` pads the clip edges by reflection, the default of
librosa < 0.9 (current librosa pads with zeros); ``short_clip_pad='logmel'``
computes each clip's frames on its own length and fills the frames after them
with 0.0 in the log-mel domain, instead of running the STFT over zero samples.
"""
from __future__ import annotations

import math

import torch
import torchaudio
from torch import nn


def frame_samples(sample_rate: int, milliseconds: float) -> int:
    """Samples in ``milliseconds`` at ``sample_rate``, truncated like ``int(0.025 * sr)``."""
    # round(…, 6) first so that 399.99999999 (float error) does not truncate to 399.
    return int(round(sample_rate * milliseconds / 1000.0, 6))


class LogMel(nn.Module):
    """Waveforms [B, C, T] (any channel count, mixed to mono) -> log-mel [B, frames, n_mels].

    One (spectrogram, filterbank) pair is kept per (sample rate, device); it is
    derived data, so it is not part of the state_dict.
    """

    def __init__(self, n_mels: int = 40, window_ms: float = 25.0, hop_ms: float = 10.0,
                 log_offset: float = 1e-6, pad_mode: str = "constant", short_clip_pad: str = "waveform") -> None:
        super().__init__()
        if pad_mode not in ("constant", "reflect") or short_clip_pad not in ("waveform", "logmel"):
            raise ValueError(f"pad_mode must be constant|reflect and short_clip_pad waveform|logmel, "
                             f"got {pad_mode!r}, {short_clip_pad!r}")
        self.n_mels = n_mels
        self.window_ms = window_ms
        self.hop_ms = hop_ms
        self.log_offset = log_offset
        self.pad_mode = pad_mode
        self.short_clip_pad = short_clip_pad
        self._transforms: dict[tuple[int, str], tuple[torchaudio.transforms.Spectrogram, torch.Tensor]] = {}

    def transform_for(self, sample_rate: int, device: torch.device
                      ) -> tuple[torchaudio.transforms.Spectrogram, torch.Tensor]:
        key = (int(sample_rate), str(device))
        cached = self._transforms.get(key)
        if cached is None:
            n_fft = frame_samples(sample_rate, self.window_ms)
            # Frames are padded by ``pad_edges`` (per clip length), so the STFT itself does not pad.
            spectrogram = torchaudio.transforms.Spectrogram(
                n_fft=n_fft, win_length=n_fft, hop_length=frame_samples(sample_rate, self.hop_ms),
                power=2.0, center=False,
            ).to(device)
            filterbank = slaney_mel_filterbank(int(sample_rate), n_fft, self.n_mels).to(device)
            cached = (spectrogram, filterbank)
            self._transforms[key] = cached
        return cached

    def forward(self, waveforms: torch.Tensor, sample_rate: int,
                lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``lengths`` [B]: samples of each clip before zero padding (used by ``short_clip_pad='logmel'``)."""
        if waveforms.dim() == 2:
            waveforms = waveforms.unsqueeze(1)
        if waveforms.dim() != 3:
            raise ValueError(f"waveforms must be [B, C, T], got shape {tuple(waveforms.shape)}")
        # librosa.load(mono=True) averages the channels; do the same.
        mono = waveforms.float().mean(dim=1)
        total = mono.shape[1]
        own = lengths is not None and self.short_clip_pad == "logmel"
        clip = (lengths.to(mono.device).long().clamp(1, total) if own and lengths is not None
                else torch.full((len(mono),), total, dtype=torch.long, device=mono.device))
        # The STFT runs in fp32 even under autocast: bf16 power spectra lose the 1e-6 floor.
        with torch.autocast(device_type=mono.device.type, enabled=False):
            spectrogram, filterbank = self.transform_for(sample_rate, mono.device)
            n_fft, hop = spectrogram.n_fft, spectrogram.hop_length
            power = spectrogram(pad_edges(mono, n_fft // 2, clip, self.pad_mode))  # [B, freqs, frames]
            mel = torch.matmul(power.transpose(1, 2), filterbank)     # [B, frames, n_mels]
            features = torch.log(mel + self.log_offset)
            if own:
                # librosa's frame count for a clip of its own length (center=True).
                frames = 1 + (clip + 2 * (n_fft // 2) - n_fft).div(hop, rounding_mode="floor")
                after = torch.arange(features.shape[1], device=mono.device)[None, :] >= frames[:, None]
                features = features.masked_fill(after[:, :, None], 0.0)
        return features.contiguous()


def pad_edges(mono: torch.Tensor, pad: int, lengths: torch.Tensor, mode: str) -> torch.Tensor:
    """[B, T] -> [B, T + 2·pad]: sample t of clip b at t + pad, its edges padded as librosa's
    ``center=True`` does for a clip of ``lengths[b]`` samples (zeros, or reflection without
    repeating the edge sample). Positions past the padding of a clip's end are zero; they only
    reach frames that ``short_clip_pad='logmel'`` overwrites.
    """
    total = mono.shape[1]
    if mode == "constant":
        inside = torch.arange(total, device=mono.device)[None, :] < lengths[:, None]
        return torch.nn.functional.pad(mono * inside, (pad, pad))
    index = torch.arange(-pad, total + pad, device=mono.device)[None, :].expand(len(mono), -1)
    end = lengths[:, None] - 1
    index = torch.where(index < 0, -index, index)
    index = torch.where(index > end, 2 * end - index, index)
    inside = (index >= 0) & (index <= end)
    return torch.gather(mono, 1, index.clamp(0, total - 1)) * inside


def _hz_to_slaney_mel(hz: torch.Tensor) -> torch.Tensor:
    # Slaney's Auditory Toolbox scale: linear below 1 kHz, logarithmic above (librosa htk=False).
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    linear = hz / f_sp
    log_part = min_log_mel + torch.log(torch.clamp(hz, min=min_log_hz) / min_log_hz) / logstep
    return torch.where(hz >= min_log_hz, log_part, linear)


def _slaney_mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    linear = mel * f_sp
    log_part = min_log_hz * torch.exp(logstep * (mel - min_log_mel))
    return torch.where(mel >= min_log_mel, log_part, linear)


def slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """Triangular Slaney-normalised mel filters [n_fft//2+1, n_mels] on 0..sr/2.

    Written out (instead of torchaudio's ``melscale_fbanks``) because torchaudio
    places FFT bins at linspace(0, sr//2, n_freqs), which is wrong for odd
    n_fft (e.g. 551 at 22,050 Hz) and then differs from librosa by ~14%.
    FFT bin k sits at k·sr/n_fft, as in ``numpy.fft.rfftfreq``.
    """
    fft_hz = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft
    mel_edges = torch.linspace(0.0, float(_hz_to_slaney_mel(torch.tensor(sample_rate / 2.0,
                                                                          dtype=torch.float64))),
                               n_mels + 2, dtype=torch.float64)
    hz_edges = _slaney_mel_to_hz(mel_edges)
    widths = torch.diff(hz_edges)                               # [n_mels + 1]
    ramps = hz_edges[:, None] - fft_hz[None, :]                 # [n_mels + 2, freqs]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)  # [n_mels, freqs]
    weights = weights * (2.0 / (hz_edges[2:] - hz_edges[:-2]))[:, None]  # Slaney area norm
    return weights.T.to(torch.float32).contiguous()
