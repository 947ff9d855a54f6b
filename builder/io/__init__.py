"""Shared I/O: atomic writes, locks, per-stage status logs, HTTP downloads, hashing and deterministic tarballs."""
