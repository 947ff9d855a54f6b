"""Is YouTube extraction working on this machine at all? Judged from yt-dlp's warnings, clip by clip.

Without a JavaScript runtime, without the EJS scripts, or with a yt-dlp too old
for YouTube's current player, every clip fails the same way -- and, worse, as
"no formats", which looks like a property of the video: a run would mark
thousands of clips unavailable and take the whole reserve in their place.
So a worker stops the run (a halt, as for a bot check) when:

* yt-dlp warns that it has no JavaScript runtime or skipped the EJS scripts
  (a setup problem: stop at the first clip);
* a clip fails after yt-dlp warned that it could not solve the player's
  challenge (yt-dlp is out of date);
* the worker's first :data:`NO_FORMAT_STREAK` clips in a row fail with no
  formats at all and no clip has succeeded yet.

A clip whose failure says nothing about the video (any of the above) is
recorded as ``halted`` or ``failed``, never ``unavailable``: the next run tries
it again. Once a clip has succeeded, a later "no formats" is the video's own
(yt-dlp's extraction works) and is final.
"""
from __future__ import annotations

from dataclasses import dataclass

from builder.fetch.errors import SETUP_WARNINGS, Failure, one_line, warning_class

NO_FORMAT_STREAK = 3
WARNING_CHARS = 600    # yt-dlp's warnings end with the link that explains them: keep it


@dataclass(frozen=True)
class Verdict:
    halt: str | None = None     # error class to stop the run with (a key of options.ADVICE)
    message: str = ""           # the yt-dlp line that says why
    hold: bool = False          # the failure is not the video's: keep the clip for the next run


class ExtractionHealth:
    """One worker's view of whether extraction works, over the clips of one run."""

    def __init__(self, streak: int = NO_FORMAT_STREAK) -> None:
        self.streak_limit = streak
        self.proven = False        # a clip went through: extraction works here
        self.streak = 0            # "no formats" failures in a row before the first success

    def judge(self, warnings: list[str], failure: Failure | None) -> Verdict:
        """Verdict on one attempt from its yt-dlp warnings and its failure (None: the clip is ok)."""
        classes = [warning_class(w) for w in warnings]

        def said(name: str) -> str:
            return one_line(warnings[classes.index(name)], WARNING_CHARS)

        for name in SETUP_WARNINGS:
            if name in classes:
                return Verdict(name, said(name), hold=failure is not None)
        if failure is None:
            self.proven, self.streak = True, 0
            return Verdict()
        if "challenge_failed" in classes:
            return Verdict("challenge_failed", said("challenge_failed"), hold=True)
        if failure.error_class != "no_format" or self.proven:
            return Verdict()
        self.streak += 1
        if self.streak >= self.streak_limit:
            return Verdict("no_formats", f"{self.streak} clips in a row without any format: {failure.message}",
                           hold=True)
        return Verdict(hold=True)
