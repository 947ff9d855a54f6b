"""Logging for the command-line tools, configured once at each tool's ``main``.

Library modules log through ``logging.getLogger(__name__)``; diagnostics go to stderr. A
command's result (its table, its one-line summary) goes through :func:`echo` to stdout, so it
can be piped, and ``-q`` silences it together with the informational messages.
"""
from __future__ import annotations

import logging
import sys

OUTPUT_LOGGER = "llinet.output"
PACKAGES = ("builder", "model")


def _ours_or_warning(record: logging.LogRecord) -> bool:
    """Our packages' records at their configured level; other libraries' only from WARNING up."""
    return record.name.partition(".")[0] in PACKAGES or record.levelno >= logging.WARNING


class _StreamHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` / ``sys.stdout`` is at the time of the call.

    Looking the stream up late honours a replaced stream (pytest, notebooks); writing through
    ``tqdm.write`` keeps a line from tearing a live progress bar.
    """

    def __init__(self, stream_name: str) -> None:
        super().__init__()
        self.stream_name = stream_name

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            stream = getattr(sys, self.stream_name)
            tqdm.write(self.format(record), file=stream)
            stream.flush()  # a pipe is block-buffered: a reader waiting for a line must get it now
        except Exception:  # noqa: BLE001 - logging must never take the program down
            self.handleError(record)


class _Formatter(logging.Formatter):
    """The message alone, prefixed with ``warning:`` / ``error:`` / ``debug:`` where it is not news."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno == logging.INFO:
            return text
        prefix = record.levelname.lower()
        if record.levelno < logging.INFO:
            prefix = f"{prefix}: {record.name}"
        return f"{prefix}: {text}"


def _output_logger() -> logging.Logger:
    logger = logging.getLogger(OUTPUT_LOGGER)
    if not any(isinstance(h, _StreamHandler) for h in logger.handlers):
        handler = _StreamHandler("stdout")
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)
    return logger


def echo(text: object = "") -> None:
    """Print a command's result to stdout (silenced by -q)."""
    _output_logger().info(str(text))


def configure(verbosity: int = 0) -> None:
    """Set up logging for one command run: 0 = info, >0 = debug, <0 = warnings and errors only.

    Safe to call again (tests and the demo run several commands in one process): the earlier
    handler is replaced, not duplicated.
    """
    level = logging.DEBUG if verbosity > 0 else logging.INFO if verbosity == 0 else logging.WARNING
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StreamHandler)]:
        root.removeHandler(handler)
    handler = _StreamHandler("stderr")
    handler.setFormatter(_Formatter("%(message)s"))
    handler.addFilter(_ours_or_warning)
    root.addHandler(handler)
    for name in PACKAGES:
        logging.getLogger(name).setLevel(level)
    _output_logger().setLevel(logging.INFO if verbosity >= 0 else logging.WARNING)
