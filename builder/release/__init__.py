"""Releases: the versioned ID manifest, provenance, statistics, Croissant, datasheet, fingerprints and verify."""
