"""The command-line vocabulary shared by ``llinet-build``, ``llinet-train`` and ``llinet-eval``.

Every parser of the three tools (subcommands included) is a :class:`CommandParser`, so each one
gets ``-v/--verbose`` and ``-q/--quiet``, shows its defaults in ``--help``, and accepts the old
spellings of renamed options: an old spelling still works and logs one warning naming the new one.
"""
from __future__ import annotations

import argparse
import copy
import logging
import textwrap
from collections.abc import Callable, Sequence
from pathlib import PurePath
from typing import Any

log = logging.getLogger(__name__)

AfterParse = Callable[["CommandParser", argparse.Namespace], None]


def warn_renamed(prog: str, old: str, new: str) -> None:
    log.warning(f"{prog}: {old} is deprecated, use {new} (the old spelling will be removed)")


def _shown_default(value: Any) -> str | None:
    """How a default reads in --help; None: nothing worth showing (unset, a flag, empty)."""
    if value is None or value is argparse.SUPPRESS or isinstance(value, bool) or value in ("", [], ()):
        return None
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    if isinstance(value, PurePath):
        return str(value)
    return str(value)


_NO_HELP = "<no help text>"   # stands in for a missing help text, so that the default still shows


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default (written once, where the option is defined) and hides old spellings."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = "" if action.help == _NO_HELP else action.help or ""
        if text is argparse.SUPPRESS or not action.option_strings or "%(default)" in text:
            return action.help
        shown = _shown_default(action.default)
        if shown is None:
            return action.help
        # The help text goes through %-formatting: escape the default's own percent signs.
        return f"{text} (default: {shown.replace('%', '%%')})".lstrip()

    def _split_lines(self, text: str, width: int) -> list[str]:
        # Never cut a word: a path, a URL or an option name must stay one piece (and searchable).
        return textwrap.wrap(" ".join(text.split()), width, break_long_words=False, break_on_hyphens=False)

    def _format_action(self, action: argparse.Action) -> str:
        # argparse skips the help (and so the default) of an option without help text.
        if not action.help and action.option_strings and _shown_default(action.default) is not None:
            action = copy.copy(action)
            action.help = _NO_HELP
        return super()._format_action(action)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        hidden = getattr(action, "deprecated_strings", ())
        if not hidden:
            return super()._format_action_invocation(action)
        shown = copy.copy(action)
        shown.option_strings = [s for s in action.option_strings if s not in hidden]
        return super()._format_action_invocation(shown)


class RawDescriptionHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """:class:`HelpFormatter` that keeps the description's line breaks."""


class CommandParser(argparse.ArgumentParser):
    """ArgumentParser with -v/-q, defaults in --help and hooks that run after parsing.

    The hooks turn deprecated positional arguments into their new options and check options
    that are required but may also come from such a positional.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.after_parse: list[AfterParse] = []
        # SUPPRESS: a subcommand's parser must not overwrite -v/-q given before the subcommand.
        self.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                          help="more output: debug messages (repeatable)")
        self.add_argument("-q", "--quiet", action="count", default=argparse.SUPPRESS,
                          help="only warnings and errors: no summaries, no progress bars")

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        # argparse makes the Namespace itself when given None; made here, the result is never None.
        parsed, extras = super().parse_known_args(args, argparse.Namespace() if namespace is None else namespace)
        for hook in self.after_parse:
            hook(self, parsed)
        return parsed, extras


def verbosity(args: argparse.Namespace) -> int:
    """-v count minus -q count (0 = the default amount of output)."""
    return int(getattr(args, "verbose", 0) or 0) - int(getattr(args, "quiet", 0) or 0)


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars unless --no-progress or -q."""
    return not getattr(args, "no_progress", False) and verbosity(args) >= 0


def _deprecating(base: type[argparse.Action]) -> type[argparse.Action]:
    class Renamed(base):  # type: ignore[valid-type, misc]
        deprecated_strings: tuple[str, ...] = ()

        def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                     option_string: str | None = None) -> None:
            if option_string in self.deprecated_strings:
                warn_renamed(parser.prog, option_string, self.option_strings[0])
            super().__call__(parser, namespace, values, option_string)

    Renamed.__name__ = f"Renamed{base.__name__}"
    return Renamed


_RENAMED: dict[type, type[argparse.Action]] = {}


def add_option(container: argparse._ActionsContainer, *names: str, deprecated: Sequence[str] = (),
               **kwargs: Any) -> argparse.Action:
    """``container.add_argument(*names, **kwargs)``, also answering to the old spellings ``deprecated``.

    The old spellings are the same option (same dest, group, required-ness), left out of --help's
    option list and named in its text; using one logs a warning with the new spelling.
    """
    if not deprecated:
        return container.add_argument(*names, **kwargs)
    base = kwargs.pop("action", None)
    if not isinstance(base, type):
        base = container._registry_get("action", base, base)
    if base not in _RENAMED:
        _RENAMED[base] = _deprecating(base)
    kwargs["action"] = _RENAMED[base]
    if kwargs.get("help") is not argparse.SUPPRESS:
        kwargs["help"] = (kwargs.get("help") or "") + f" [old spelling: {', '.join(deprecated)}]"
    action = container.add_argument(*names, *deprecated, **kwargs)
    action.deprecated_strings = tuple(deprecated)  # type: ignore[attr-defined]
    return action


def _require(option: argparse.Action) -> AfterParse:
    def check(parser: CommandParser, namespace: argparse.Namespace) -> None:
        if getattr(namespace, option.dest, None) in (None, []):
            parser.error(f"the following arguments are required: {option.option_strings[0]}")
    return check


def add_renamed_positional(parser: CommandParser, option: argparse.Action, metavar: str,
                           nargs: str = "?", type: Callable[[str], Any] | None = None) -> None:
    """Keep accepting a positional argument that became ``option``; warn when it is used.

    A required ``option`` is checked after parsing (argparse would refuse the positional form).
    """
    dest = f"renamed_positional_{option.dest}"
    parser.add_argument(dest, nargs=nargs, type=str if type is None else type,  # str: argparse's own default
                        default=None, metavar=metavar, help=argparse.SUPPRESS)
    new = option.option_strings[0]

    def merge(parser: CommandParser, namespace: argparse.Namespace) -> None:
        value = getattr(namespace, dest, None)
        if hasattr(namespace, dest):
            delattr(namespace, dest)
        if value in (None, []):
            return
        if getattr(namespace, option.dest, None) not in (None, []):
            parser.error(f"{metavar} given twice: as a positional argument and as {new}")
        warn_renamed(parser.prog, f"the positional {metavar}", f"{new} {metavar}")
        setattr(namespace, option.dest, value)

    parser.after_parse.append(merge)
    if option.required:
        option.required = False
        option.help = f"{option.help or ''} (required)".lstrip()
        parser.after_parse.append(_require(option))


def require_one_of(parser: CommandParser, *options: argparse.Action) -> None:
    """At least one of ``options`` must be given (after any positional was merged)."""
    names = " or ".join(o.option_strings[0] for o in options)

    def check(parser: CommandParser, namespace: argparse.Namespace) -> None:
        if all(getattr(namespace, o.dest, None) in (None, []) for o in options):
            parser.error(f"one of the arguments {names} is required")

    parser.after_parse.append(check)
