"""Where the data files that ship with llinet are, read with :mod:`importlib.resources`.

Two resources travel inside the package (an editable checkout and an
installed wheel alike):

* the committed INSTRUMENT-32CLASS manifests (``manifests/instrument32``:
  ``classes.csv``, ``clips.csv``, ``reserve.csv`` and the reports);
* the bundled AudioSet metadata slice (``builder/audioset/data``): every
  segment row that carries one of the 32 classes' MIDs, plus the ontology, so
  the offline demo reproduces the committed manifests byte for byte;

and the review page's static files (``builder/review/static``).

Every module that needs one of them asks here rather than building a path
from its own ``__file__``, so there is one place that knows the layout.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

INSTRUMENT32 = "instrument32"
CLASSES_FILE = "classes.csv"


def _directory(package: str, *parts: str) -> Path:
    # Wheels install unzipped, so the Traversable is a real directory on disk;
    # the stages want Path objects (they hand paths to pandas, ffmpeg, ...).
    path = Path(str(files(package).joinpath(*parts)))
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: packaged data missing (reinstall llinet)")
    return path


def committed_manifests(name: str = INSTRUMENT32) -> Path:
    """The folder of a committed manifest set (``instrument32``)."""
    return _directory("manifests", name)


def bundled_audioset() -> Path:
    """The bundled AudioSet metadata slice (ontology + the INSTRUMENT-32 segment rows)."""
    return _directory("builder.audioset", "data", "audioset_instrument32")


def committed_classes(name: str = INSTRUMENT32) -> Path:
    """The class list (``classes.csv``) of a committed manifest set."""
    path = committed_manifests(name) / CLASSES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: packaged data missing (reinstall llinet)")
    return path


def review_static() -> Path:
    """The review page's HTML, JavaScript and CSS."""
    return _directory("builder.review", "static")
