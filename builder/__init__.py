"""llinet builder: rebuild INSTRUMENT-32CLASS (and other class-disjoint
audio-visual sets) from AudioSet metadata.

Every stage is a function ``stage(manifest, options) -> manifest`` over the one
manifest schema defined in :mod:`builder.manifest.schema`; ``llinet-build`` is a thin
command-line wrapper around those functions.
"""

__version__ = "0.1.0"
