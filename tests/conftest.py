"""Shared fixtures.

The real AudioSet metadata lives in ``../shared/audioset`` beside the checkout
(or wherever ``LLINET_AUDIOSET_DIR`` points). CI sets ``LLINET_REQUIRE_AUDIOSET=1``
so that a missing copy fails the run instead of skipping the tests that use it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def audioset_dir() -> Path | None:
    env = os.environ.get("LLINET_AUDIOSET_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "audioset")
    for path in candidates:
        if (path / "ontology.json").is_file():
            return path
    return None


@pytest.fixture(scope="session")
def real_audioset() -> Path:
    path = audioset_dir()
    if path is None:
        message = "real AudioSet metadata not found (set LLINET_AUDIOSET_DIR or put it in ../shared/audioset)"
        if os.environ.get("LLINET_REQUIRE_AUDIOSET") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path
