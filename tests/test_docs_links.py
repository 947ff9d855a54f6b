"""The README and docs/ stay navigable: local links resolve, anchors exist, the README stays short."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted([REPO / "README.md", REPO / "DATASET.md", *(REPO / "docs").glob("*.md")])
README_MAX_LINES = 250

# [text](target) and ![alt](target); the target ends at whitespace or ")" (an optional "title" is ignored).
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def prose(text: str) -> str:
    """The Markdown without code blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__", "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def local_links(page: Path) -> list[str]:
    return [t for t in LINK.findall(prose(page.read_text(encoding="utf-8")))
            if not re.match(r"[a-z][a-z0-9+.-]*:", t, re.I)]   # http:, https:, mailto: ...


def test_pages_found() -> None:
    names = {p.name for p in PAGES}
    assert {"README.md", "DATASET.md", "index.md", "model_api.md"} <= names


def test_link_pattern_sees_links_and_ignores_code() -> None:
    sample = "see [a](docs/a.md), ![b](img.png \"t\"), [c](https://x.org) `[d](no.md)`\n```\n[e](no.md)\n```\n"
    assert LINK.findall(prose(sample)) == ["docs/a.md", "img.png", "https://x.org"]
    assert slug("Splits and the leakage audit (`split`)") == "splits-and-the-leakage-audit-split"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_local_links_resolve(page: Path) -> None:
    broken = []
    for target in local_links(page):
        path_part, _, fragment = target.partition("#")
        dest = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{target} (no file {dest.relative_to(REPO) if dest.is_relative_to(REPO) else dest})")
        elif not dest.is_relative_to(REPO):
            broken.append(f"{target} (outside the repository)")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target} (no heading #{fragment} in {dest.relative_to(REPO)})")
    assert not broken, f"{page.relative_to(REPO)}: broken links: {broken}"


def test_every_docs_page_is_linked_from_the_index() -> None:
    index = REPO / "docs" / "index.md"
    linked = {(index.parent / t.partition("#")[0]).resolve() for t in local_links(index)}
    missing = [p.name for p in (REPO / "docs").glob("*.md") if p != index and p.resolve() not in linked]
    assert not missing, f"docs/index.md does not link {missing}"


def test_readme_is_short_and_has_a_table_of_contents() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"
    toc = re.search(r"^## Contents\n+((?:- \[.*\]\(#.*\)\n)+)", text, re.M)
    assert toc, "README.md needs a '## Contents' list of links to its sections"
    targets = re.findall(r"\]\(#([^)]+)\)", toc.group(1))
    sections = {slug(h) for h in re.findall(r"^## (.*)$", prose(text), re.M)} - {"contents"}
    assert set(targets) == sections, f"table of contents {targets} vs sections {sorted(sections)}"
    for command in ("bash scripts/demo.sh", "bash .ci/run", "pip install .", "constraints.txt"):
        assert command in text, f"README.md does not mention {command!r}"
