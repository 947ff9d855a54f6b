"""Checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint is a dict of tensors and plain Python values only (no pickled
objects), so loading never runs code from the file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from builder.errors import InputError
from builder.io.atomic import atomic_open
from model.network.config import ModelConfig
from model.network.factory import build_model
from model.network.llinet import LLINet

REQUIRED_KEYS = ("config", "model", "epoch")


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temp file + fsync + rename)."""
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise ValueError(f"checkpoint state lacks {missing}")
    with atomic_open(path, "wb") as handle:
        torch.save(state, handle)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found", file=path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt or unsafe file is the user's input
        raise InputError(f"not a readable weights-only checkpoint: {exc}", file=path) from exc
    missing = [k for k in REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise InputError(f"checkpoint lacks key(s) {missing}", file=path)
    return state


def model_from_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                          ) -> tuple[LLINet, ModelConfig]:
    """Rebuild the model saved in ``path``; returned in eval mode on ``map_location``."""
    state = load_checkpoint(path, map_location)
    config = ModelConfig.from_dict(dict(state["config"]))
    # The weights come from the checkpoint, so don't fetch ImageNet weights again.
    model = build_model(ModelConfig.from_dict({**config.to_dict(), "image_weights": "none"}))
    model.load_state_dict(state["model"])
    model.to(map_location).eval()
    return model, config
