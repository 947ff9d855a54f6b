"""The LLINet network: log-mel, encoders, attention, loss, config, factory, checkpoints and input decoding."""
