"""``llinet-build <stage>``: a thin wrapper over the builder's stage functions.

Each subcommand lives in ``builder/commands/<name>.py`` with a ``register``
function that adds its parser and sets ``func``. Errors derived from
:class:`builder.errors.LlinetError` are printed without a traceback and exit 2.
Logging is configured here, once per run, from -v/-q (accepted before or after the stage).
"""
from __future__ import annotations

import importlib
import sys

from builder import __version__
from builder.cli import logs
from builder.cli.args import CommandParser, verbosity
from builder.errors import LlinetError

# Order here is the order shown in --help (the pipeline order).
COMMAND_MODULES = (
    "builder.commands.metadata",
    "builder.commands.resolve",
    "builder.commands.select",
    "builder.commands.split",
    "builder.commands.subset",
    "builder.commands.fetch",
    "builder.commands.trim",
    "builder.commands.frames",
    "builder.commands.curate",
    "builder.commands.annotate",
    "builder.commands.review",
    "builder.commands.export",
    "builder.commands.release",
    "builder.commands.verify",
    "builder.commands.demo",
    "builder.commands.doctor",
)


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="llinet-build",
        description="Rebuild INSTRUMENT-32CLASS from AudioSet, one stage at a time.",
    )
    parser.add_argument("--version", action="version", version=f"llinet {__version__}")
    sub = parser.add_subparsers(dest="stage", metavar="<stage>", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logs.configure()  # a warning about a deprecated spelling while parsing reads like every other line
    args = build_parser().parse_args(argv)
    logs.configure(verbosity(args))
    try:
        return int(args.func(args) or 0)
    except LlinetError as exc:
        print(f"llinet-build {args.stage}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"llinet-build {args.stage}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
