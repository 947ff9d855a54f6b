"""``llinet-train``: train LLINet on a manifest (see ``--help``).

Single process: ``llinet-train MANIFEST --output-dir runs/x``. Several GPUs:
``torchrun --nproc_per_node N -m model.training.cli MANIFEST ...``. Errors in the
input are printed without a traceback (exit 2); a NaN/inf loss exits 3.
"""
from __future__ import annotations

import sys

from builder.errors import LlinetError
from model.training.options import parse_options
from model.training.trainer import NonFiniteLoss, train


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv)
    try:
        return train(opts)
    except NonFiniteLoss as exc:
        print(f"llinet-train: {exc}", file=sys.stderr)
        return 3
    except LlinetError as exc:
        print(f"llinet-train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("llinet-train: interrupted; rerun with --resume to continue from the last epoch", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
