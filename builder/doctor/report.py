"""One checked item and how a list of them reads and exits."""
from __future__ import annotations

from dataclasses import dataclass

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"


@dataclass(frozen=True)
class Check:
    item: str                 # what was checked, e.g. "ffmpeg"
    verdict: str              # OK | WARN | FAIL | SKIP
    detail: str               # what was found, and for WARN/FAIL what to do

    def line(self, width: int = 12) -> str:
        return f"{self.verdict:<4}  {self.item:<{width}}  {self.detail}"


def render(checks: list[Check]) -> str:
    """The report: one line per item, then the verdict of the whole."""
    width = max([len(c.item) for c in checks] + [4])
    lines = [c.line(width) for c in checks]
    failed = [c.item for c in checks if c.verdict == FAIL]
    warned = sum(c.verdict == WARN for c in checks)
    if failed:
        lines.append(f"doctor: {len(failed)} required item(s) missing or broken: {', '.join(failed)}")
    else:
        lines.append(f"doctor: every required item is ok ({warned} warning(s))")
    return "\n".join(lines)


def exit_status(checks: list[Check]) -> int:
    """0 when nothing required fails (warnings and skipped items do not count), else 1."""
    return 1 if any(c.verdict == FAIL for c in checks) else 0
