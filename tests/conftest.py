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


@pytest.fixture(scope="session")
def audioset_ontology() -> Path:
    """AudioSet's ontology.json for tests that need only the ontology: the bundled slice's copy,
    byte-identical to the real one (test_committed_manifests checks that), so they also run
    where the full lists are absent."""
    from builder.resources import bundled_audioset

    return bundled_audioset() / "ontology.json"


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    """The FFmpeg-made test clips of ``support/media.py`` (name -> file), made once per session."""
    from support.media import media_set

    return media_set(tmp_path_factory.getbasetemp() / "media")


@pytest.fixture
def one_torch_thread():
    """One intra-op thread: on a shared, busy 2-core machine, 2 spinning OpenMP threads
    made these runs 2-7x slower and erratic; 1 thread is steady (results are unaffected).
    A module opts in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ---------------------------------------------------------------------------- a synthetic build and its release
# One per module that asks (module scope: a module may alter its copy of either without touching another's).
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A synthetic dataset build (``builder.demo.synthetic_release.make_dataset``): media root, manifest, masks."""
    from builder.demo.synthetic_release import make_dataset

    return make_dataset(tmp_path_factory.mktemp("built"))


@pytest.fixture(scope="module")
def release(built, tmp_path_factory) -> Path:
    """Release 1.0.0 of ``built`` (support/release.py): the folder."""
    from support.release import release_of

    return release_of(built, tmp_path_factory.mktemp("rel") / "v1")


# ---------------------------------------------------------------------------- the review tests
# Made here once for every test_review_* module (Playwright is imported only when a test asks for them).
@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (support/browser.py) for the tests of one module."""
    from support.browser import chromium

    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def shots(tmp_path_factory, request) -> Path:
    """A module's folder for review-page screenshots (its path is printed)."""
    from support.browser import screenshot_folder

    return screenshot_folder(tmp_path_factory, request)


@pytest.fixture
def review_options() -> dict:
    """``ReviewSession`` options of the ``served`` server; a module overrides this fixture to change them
    (the default, no reviewer, is a page whose reviewer has not typed a name yet)."""
    return {}


@pytest.fixture
def served(tmp_path, review_options):
    """(review server, media root): a fresh support/review.py media root in tmp_path and a server on it."""
    from support.review import serving

    with serving(tmp_path, **review_options) as pair:
        yield pair
