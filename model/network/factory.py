"""Build the whole LLINet from a :class:`ModelConfig`."""
from __future__ import annotations

from model.network.config import ModelConfig
from model.network.llinet import LLINet


def build_model(config: ModelConfig | None = None) -> LLINet:
    """The paper's model for the default config; image weights per ``config.image_weights``."""
    return LLINet(config if config is not None else ModelConfig())
