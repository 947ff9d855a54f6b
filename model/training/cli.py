"""``llinet-train``: train LLINet on a manifest (see ``--help``).

Single process: ``llinet-train --root MEDIA_ROOT --out runs/x``. Several GPUs:
``torchrun --nproc_per_node N -m model.training.cli --root MEDIA_ROOT ...``. Errors in
the input are printed without a traceback (exit 2); a NaN/inf loss exits 3.
Logging is configured here from -v/-q.
"""
from __future__ import annotations

import dataclasses
import sys

from builder.cli import logs
from builder.cli.args import verbosity
from builder.errors import LlinetError
from model.training.options import parse_command_line
from model.training.trainer import NonFiniteLoss, train


def main(argv: list[str] | None = None) -> int:
    logs.configure()  # a warning about a deprecated spelling while parsing reads like every other line
    opts, args = parse_command_line(argv)
    logs.configure(verbosity(args))
    if verbosity(args) < 0:
        opts = dataclasses.replace(opts, progress=False)
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
