"""FFmpeg helpers and the per-clip media stages: trim (3 s audio) and frames, on one shared stage driver."""
