"""Every link into the project's documentation folder resolves.

Scans the repository's text files (`*.py`, `*.md`, `*.toml`, `Makefile`, files under
`.ci/`) for references of the form  docs/<page>.md  or  docs/<page>.md#<anchor>, and the
Markdown files for relative links such as  (retry-plan.md#decision-rules)  or  (#anchor).
A reference is broken when the page does not exist or the anchor is not a heading of that
page, by GitHub's anchor rules (lowercase, punctuation removed, spaces to '-', repeated
headings suffixed -1, -2, ...).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = "docs"
SKIPPED_DIRS = {".venv", "data", "reports", ".git", "__pycache__", ".pytest_cache", ".hypothesis", "node_modules"}
TEXT_SUFFIXES = {".py", ".md", ".toml"}

# A reference into the docs folder from anywhere: <docs dir>/<path>.md[#anchor].
DOC_REFERENCE = re.compile(r"(?<![\w-])" + DOCS + r"/((?:[\w.-]+/)*[\w.-]+\.md)(?:#([\w-]+))?")
# A Markdown inline link or image target: ](target) or ](target "title").
MARKDOWN_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^ {0,3}(```|~~~)")
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
HTML_ANCHOR = re.compile(r"<a\s[^>]*?\b(?:name|id)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (github-slugger), before duplicate suffixes."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # punctuation and symbols go; letters, digits, _ and - stay
    return text.replace(" ", "-")


def _headings(lines: list[str]) -> list[str]:
    """Heading texts of a Markdown file, in order, outside fenced code blocks."""
    headings, fence, previous = [], None, ""
    for line in lines:
        opened = FENCE.match(line)
        if fence:
            if opened and opened.group(1) == fence:
                fence = None
            previous = ""
            continue
        if opened:
            fence, previous = opened.group(1), ""
            continue
        atx = ATX_HEADING.match(line)
        if atx:
            headings.append(atx.group(2) or "")
            previous = ""
            continue
        if (SETEXT_UNDERLINE.match(line) and previous.strip()
                and not re.match(r"^ {0,3}([|>*+-]|\d+[.)]\s)", previous)):
            headings.append(previous.strip())
            previous = ""
            continue
        previous = line
    return headings


@lru_cache(maxsize=None)
def anchors_of(path: Path) -> frozenset[str]:
    """Every anchor GitHub gives a Markdown file: heading slugs with -1, -2 suffixes for repeats,
    plus explicit <a name/id> anchors."""
    text = path.read_text(encoding="utf-8")
    seen: dict[str, int] = {}
    anchors = set()
    for heading in _headings(text.splitlines()):
        base = slug = github_slug(heading)
        while slug in seen:
            seen[base] += 1
            slug = f"{base}-{seen[base]}"
        seen[slug] = 0
        anchors.add(slug)
    anchors.update(HTML_ANCHOR.findall(text))
    return frozenset(anchors)


def _is_scanned(relative: Path) -> bool:
    return (relative.suffix in TEXT_SUFFIXES or relative.name == "Makefile"
            or (len(relative.parts) > 1 and relative.parts[0] == ".ci"))


def repository_files() -> list[Path]:
    """The repository's text files: tracked and new (not ignored) files when git is there,
    else a walk of the tree without virtualenv, data, reports and .git."""
    names: list[str] | None = None
    if shutil.which("git"):
        result = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=ROOT, capture_output=True)
        if result.returncode == 0:
            names = [name for name in result.stdout.decode("utf-8", "replace").split("\0") if name]
    if names is None:
        names = [str(path.relative_to(ROOT)) for path in ROOT.rglob("*")
                 if path.is_file() and not SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts[:-1])]
    files = {Path(name) for name in names}
    return sorted(ROOT / name for name in files if _is_scanned(name) and (ROOT / name).is_file())


def _problem(target: Path, anchor: str | None) -> str | None:
    if not target.is_file():
        return "file missing"
    if anchor is not None and anchor not in anchors_of(target):
        return f"no heading with anchor #{anchor}"
    return None


def broken_links() -> list[str]:
    broken = []
    for path in repository_files():
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            continue
        relative = path.relative_to(ROOT)
        in_fence = None
        for number, line in enumerate(lines, start=1):
            for match in DOC_REFERENCE.finditer(line):
                page, anchor = match.groups()
                problem = _problem(ROOT / DOCS / page, anchor)
                if problem:
                    broken.append(f"{relative}:{number}: {match.group(0)} ({problem})")
            if path.suffix != ".md":
                continue
            opened = FENCE.match(line)
            if in_fence:
                in_fence = None if opened and opened.group(1) == in_fence else in_fence
                continue
            if opened:
                in_fence = opened.group(1)
                continue
            for match in MARKDOWN_LINK.finditer(line):
                target = match.group(1)
                if URL_SCHEME.match(target) or target.startswith("/"):
                    continue
                page, _, anchor = target.partition("#")
                if page and not page.endswith(".md"):
                    continue
                destination = (path.parent / page).resolve() if page else path
                problem = _problem(destination, anchor or None)
                if problem:
                    broken.append(f"{relative}:{number}: ({target}) ({problem})")
    return broken


@pytest.mark.parametrize(("heading", "anchor"), [
    ("Decision rules", "decision-rules"),
    ("1. Timestamps", "1-timestamps"),
    ("`quarantine` table", "quarantine-table"),
    ("Retry executions log (planned)", "retry-executions-log-planned"),
    ("retry-executions.json", "retry-executionsjson"),
    ("What is **never** stored", "what-is-never-stored"),
    ("Link [text](other.md) here", "link-text-here"),
    ("error_code — trimmed", "error_code--trimmed"),
])
def test_github_anchor_rules(heading, anchor):
    assert github_slug(heading) == anchor


def test_duplicate_headings_get_numbered_suffixes(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Notes\n\n## Notes\n\n```\n# not a heading\n```\n\nNotes\n---\n\n## Notes-1\n", encoding="utf-8")
    assert anchors_of(page) == {"notes", "notes-1", "notes-2", "notes-1-1"}


def test_documentation_links_resolve():
    assert (ROOT / DOCS / "README.md").is_file(), "the documentation folder has no README.md"
    broken = broken_links()
    assert not broken, "broken documentation links:\n" + "\n".join(broken)


# A clone holds only the repository: nothing may point at the workshop files it was built from,
# or at issue numbers a reader cannot open.
OUTSIDE_REFERENCE = re.compile(r"\.\./shared|shared/|SPEC\.md|STACK_NOTES|FORMATS\.md|\bSPEC \d|\bissue \d+", re.IGNORECASE)


def test_nothing_refers_outside_the_repository():
    this_file = Path(__file__).resolve()
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}"
        for path in repository_files() if path.resolve() != this_file
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE_REFERENCE.search(line)
    ]
    assert not found, "references outside the repository:\n" + "\n".join(found)
