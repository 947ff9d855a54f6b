"""What every description of the dataset says the same way: citation, the zero-shot rule, licences, class list.

Shared by the export cards (Hugging Face ``README.md``) and the release's
documents (``croissant.json``, ``DATASET.md``, ``README.md``), so they cannot
drift apart.
"""
from __future__ import annotations

from collections.abc import Iterable

CITATION = ("@inproceedings{jia2020look, title={Look, Listen and Infer}, author={Jia, Ruijian and Wang, Xinsheng "
            "and Pang, Shanmin and Zhu, Jihua and Xue, Jianru}, booktitle={Proceedings of the 28th ACM "
            "International Conference on Multimedia}, year={2020}, doi={10.1145/3394171.3414023}}")
AUDIOSET_CITATION = ("@inproceedings{gemmeke2017audio, title={Audio Set: An ontology and human-labeled dataset for "
                     "audio events}, author={Gemmeke, Jort F. and Ellis, Daniel P. W. and Freedman, Dylan and "
                     "Jansen, Aren and Lawrence, Wade and Moore, R. Channing and Plakal, Manoj and Ritter, Marvin}, "
                     "booktitle={Proc. IEEE ICASSP 2017}, year={2017}}")
METADATA_LICENSE = "https://creativecommons.org/licenses/by/4.0/"
METADATA_LICENSE_ID = "cc-by-4.0"           # the Hugging Face card's licence identifier for the same
ZERO_SHOT_RULE = (
    "The splits are class-disjoint: the `test` classes (unseen) never occur in `train`, and with the `gzsl` "
    "split neither do the `val_unseen` classes. Train only on `train` (and `val_seen`); select models and "
    "tune thresholds on `val_unseen`/`val_seen`, never on `test`; report zero-shot results on `test` only. "
    "No clip of a seen class carries the AudioSet label of an unseen class or of one of its ontology "
    "descendants.")
MEDIA_RIGHTS = (
    "The labels, masks, IDs and timestamps are derived from AudioSet's segment lists (CC BY 4.0, Google) and "
    "are distributed under CC BY 4.0. The audio and video frames are excerpts of YouTube videos whose rights "
    "stay with their uploaders; whoever downloads or redistributes them is responsible for complying with "
    "YouTube's terms and local law.")


def class_names(present: Iterable[str]) -> list[str]:
    """Class index order: the packaged INSTRUMENT-32CLASS list (its file order), then any other class, sorted.

    The same index is the Hugging Face ``ClassLabel`` and the WebDataset ``.cls`` value, so a class
    keeps its number across exports and across builds that contain only some of the classes.
    """
    from builder.audioset.classes import load_classes
    from builder.resources import committed_classes

    names = [c.name for c in load_classes(committed_classes())]
    known = set(names)
    return names + sorted({str(p) for p in present} - known)
