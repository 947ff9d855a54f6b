"""The methods ``llinet-train --method`` knows, with their papers; building and restoring them.

``sir`` is Table 1's row "SIR", reference [26] of the LLINet paper. That reference could not be
identified from the sources available when this was written (the authors' results page names
the row only), so there is no SIR method to train: ``--method sir`` stops with
:data:`SIR_UNIDENTIFIED` and the Table 1 report leaves its row open.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from builder.errors import InputError
from model.methods.base import Method
from model.methods.cme import CME
from model.methods.cmpm import CMPM
from model.methods.dar import DAR
from model.methods.dscmr import DSCMR
from model.methods.llinet import LLINetMethod
from model.methods.scan import SCAN
from model.methods.timam import TIMAM
from model.methods.ulslvc import ULSLVC
from model.network.llinet import LLINet

SIR_UNIDENTIFIED = (
    "SIR is reference [26] of the LLINet paper (Table 1), which could not be identified from the "
    "sources at hand (the authors' results page gives the row's numbers but not the method), so it "
    "is not implemented and its Table 1 row stays open; see docs/baselines.md")


@dataclass(frozen=True)
class MethodEntry:
    name: str
    citation: str
    build: Callable[[LLINet, int], Method] | None   # None: cannot be trained (``unavailable`` says why)
    unavailable: str = ""


METHODS: dict[str, MethodEntry] = {entry.name: entry for entry in (
    MethodEntry("llinet", "Jia, Wang, Pang, Zhu & Xue, Look, Listen and Infer, ACM MM 2020", LLINetMethod),
    MethodEntry("dar", "Aytar, Vondrick & Torralba, See, Hear, and Read: Deep Aligned Representations, 2017", DAR),
    MethodEntry("ulslvc", "Harwath, Torralba & Glass, Unsupervised Learning of Spoken Language with Visual "
                          "Context, NeurIPS 2016", ULSLVC),
    MethodEntry("sir", "reference [26] of the LLINet paper (not identified)", None, SIR_UNIDENTIFIED),
    MethodEntry("scan", "Lee, Chen, Hua, Hu & He, Stacked Cross Attention for Image-Text Matching, ECCV 2018", SCAN),
    MethodEntry("dscmr", "Zhen, Hu, Wang & Peng, Deep Supervised Cross-Modal Retrieval, CVPR 2019", DSCMR),
    MethodEntry("timam", "Sarafianos, Xu & Kakadiaris, Adversarial Representation Learning for Text-to-Image "
                         "Matching, ICCV 2019", TIMAM),
    MethodEntry("cmpm", "Zhang & Lu, Deep Cross-Modal Projection Learning for Image-Text Matching, ECCV 2018",
                CMPM),
    MethodEntry("cme", "Surís, Duarte, Salvador, Torres & Giró-i-Nieto, Cross-modal Embeddings for Video and "
                       "Audio Retrieval, ECCV 2018 workshops", CME),
)}

#: Table 1's row order, which is also the order of ``--method``'s choices.
METHOD_NAMES = tuple(METHODS)
DEFAULT_METHOD = "llinet"


def trainable_methods() -> tuple[str, ...]:
    return tuple(name for name, entry in METHODS.items() if entry.build is not None)


def check_method(name: str) -> MethodEntry:
    """The entry of ``name``; an :class:`InputError` for an unknown or untrainable one."""
    entry = METHODS.get(name)
    if entry is None:
        raise InputError(f"unknown method {name!r} (known: {', '.join(METHOD_NAMES)})", field="method")
    if entry.build is None:
        raise InputError(f"--method {name}: {entry.unavailable}")
    return entry


def build_method(name: str, net: LLINet, n_classes: int) -> Method:
    """The method ``name`` on ``net``; its heads are initialised from the global torch RNG."""
    entry = check_method(name)
    assert entry.build is not None
    return entry.build(net, n_classes)


def checkpoint_entry(method: Method) -> dict[str, Any]:
    """What a checkpoint stores of the method (tensors and plain values only)."""
    return {"name": method.name, "n_classes": method.n_classes, "heads": method.head_state()}


def restore_method(net: LLINet, entry: dict[str, Any] | None) -> Any:
    """The model ``llinet-eval`` embeds with: ``net`` itself for LLINet (or a checkpoint without a
    method entry), else the method around it with its saved heads, on the same device, in eval mode."""
    if not entry or entry.get("name", DEFAULT_METHOD) == DEFAULT_METHOD:
        return net
    method = build_method(str(entry["name"]), net, int(entry["n_classes"]))
    try:
        method.load_head_state(dict(entry.get("heads", {})))
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"the checkpoint's {entry['name']} heads do not fit: {exc}", field="method") from exc
    device = next(net.parameters()).device
    return method.to(device).eval()
