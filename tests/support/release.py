"""The release that the release and verify tests check: version 1.0.0 of a ``make_dataset`` build."""
from __future__ import annotations

from pathlib import Path

from builder.demo.synthetic_release import SynthDataset
from builder.manifest.schema import read_manifest
from builder.release.build import ReleaseOptions, build_release

RELEASE_DATE = "2026-02-01"


def release_of(built: SynthDataset, out: Path, date: str = RELEASE_DATE) -> Path:
    """Build release 1.0.0 of ``built`` into ``out`` (masks, manifest provenance, media packed); returns ``out``."""
    build_release(read_manifest(built.manifest_path), ReleaseOptions(
        root=built.root, out=out, version="1.0.0", annotations=built.annotations,
        manifest_path=built.manifest_path, date=date, pack_media=True, progress=False))
    return out
