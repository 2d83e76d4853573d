"""Every relative link and `#anchor` in README.md and docs/*.md leads somewhere: the file exists and, for an
anchor, one of its headings makes that anchor the way GitHub does (lower case, punctuation dropped, spaces
to dashes, `-1`, `-2` for repeats)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")
def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (a `#` or `[x](y)` inside a code block is not markdown)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def github_anchor(heading: str) -> str:
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    found: set[str] = set()
    counts: dict[str, int] = {}
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        anchor = github_anchor(match.group(1))
        seen = counts.get(anchor, 0)
        counts[anchor] = seen + 1
        found.add(anchor if seen == 0 else f"{anchor}-{seen}")
    return found


def links_of(path: Path) -> list[str]:
    text = "\n".join(re.sub(r"`[^`]*`", "", line) for line in prose_lines(path.read_text(encoding="utf-8")))
    return [a or b for a, b in LINK.findall(text)]


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in links_of(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not checked here
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors_of(destination):
            broken.append(f"{target}: no heading makes #{anchor} in {destination.name}")
    return broken


def test_the_anchor_rule_matches_github() -> None:
    assert github_anchor("Cost for 1,000 leads a month") == "cost-for-1000-leads-a-month"
    assert github_anchor("1. Compile and preview (do this first)") == "1-compile-and-preview-do-this-first"
    assert github_anchor("What CI checks (and what it cannot)") == "what-ci-checks-and-what-it-cannot"
    assert github_anchor("`LEADS_SMTP_HOST` and e-mail") == "leads_smtp_host-and-e-mail"


def test_a_broken_link_is_found_and_code_is_not_read_as_a_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [gone](#nowhere) [file](missing.md) `[code](x.md)`\n"
                    "```\n[fenced](also-missing.md)\n# not a heading\n```\n![picture](shot.png)\n",
                    encoding="utf-8")
    assert broken_links(page) == ["#nowhere: no heading makes #nowhere in page.md", "missing.md: no such file",
                                  "shot.png: no such file"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(document: Path) -> None:
    assert broken_links(document) == []
