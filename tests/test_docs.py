"""Document citations in the repository point at documents (and sections) that exist in it.

Every tracked or new, not ignored, text file (``*.py``, ``*.md``, ``*.toml``, ``*.txt``, ``Makefile``) is
scanned for

* paths ending in ``.md``, optionally followed by a section: ``, "Heading"`` (a heading of that
  document, compared without case, backticks or emphasis), ``§ N`` (a heading numbered N) or
  ``#anchor`` (a GitHub-style heading slug);
* the bare upper-case names of the two planning documents that used to live outside the repository,
  which count as citations of the ``.md`` file of that name.

A cited path must exist relative to the repository root or to the citing file's folder; a cited
section must be a heading of that document. Problems are reported as ``file:line: message``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".py", ".md", ".toml", ".txt"}
NAMES = {"Makefile"}
_SKIP_DIRS = {".venv", "build", "dist", "node_modules", "__pycache__"}

#: a path ending in ``.md``, with an optional section: ``, "Heading"``, ``§ 1.2`` or ``#anchor``
_PATH = re.compile(
    r"(?<![\w.\-/])(?P<path>[\w.\-/]*\w\.md)(?![\w/])"
    r"(?:#(?P<anchor>[\w\-]+)|\s*,\s*\"(?P<heading>[^\"\n]+)\"|,?\s*§\s*(?P<number>\d+(?:\.\d+)*))?"
)
#: the old out-of-tree documents, named bare (spelled in two parts so this file does not cite them)
_BARE_NAMES = ("REFER" + "ENCE", "DES" + "IGN")
_BARE = re.compile(
    r"(?<![\w.\"'`/])(?P<name>" + "|".join(_BARE_NAMES) + r")(?![\w.\"`]|'(?!s\b))"
    r"(?:\s*§\s*(?P<number>\d+(?:\.\d+)*))?"
)


def text_files(root: Path) -> list[Path]:
    """The files to scan: git's tracked and untracked-but-not-ignored files, or a plain walk without git."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
        paths = [root / p for p in out.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        paths = [
            p
            for p in root.rglob("*")
            if not any(part in _SKIP_DIRS or part.startswith(".") for part in p.relative_to(root).parts[:-1])
        ]
    return sorted(p for p in paths if (p.suffix in SUFFIXES or p.name in NAMES) and p.is_file())


def _normalize(heading: str) -> str:
    heading = re.sub(r"[`*_]", "", heading.strip().lstrip("#"))
    return " ".join(heading.split()).casefold()


def _slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lstrip("#").strip().lower())
    return text.replace(" ", "-")


def headings(doc: Path) -> list[str]:
    """The Markdown headings of ``doc`` (ATX style, outside fenced code blocks), as written."""
    found, fenced = [], False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6}\s", line):
            found.append(line.lstrip("#").strip())
    return found


def _resolve(root: Path, citing: Path, cited: str) -> Path | None:
    for base in (root, citing.parent):
        target = (base / cited).resolve()
        if target.is_file() and target.is_relative_to(root.resolve()):
            return target
    return None


def _section_problem(doc: Path, heading: str | None, number: str | None, anchor: str | None) -> str | None:
    if heading is None and number is None and anchor is None:
        return None
    titles = headings(doc)
    if heading is not None and _normalize(heading) not in {_normalize(t) for t in titles}:
        return f'no section "{heading}"'
    if number is not None:
        pattern = re.compile(rf"^(§\s*)?{re.escape(number)}(\.|\s|$)")
        if not any(pattern.match(_normalize(t)) for t in titles):
            return f"no section numbered {number}"
    if anchor is not None and anchor.lower() not in {_slug(t) for t in titles}:
        return f"no section with anchor #{anchor}"
    return None


def check_citations(root: Path, files: Iterable[Path]) -> list[str]:
    """``file:line: message`` for every citation of a missing document or section."""
    problems = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        rel = path.relative_to(root).as_posix()
        for lineno, line in enumerate(text.splitlines(), 1):
            cites = [
                (m["path"], m["heading"], m["number"], m["anchor"])
                for m in _PATH.finditer(line)
                if not m["path"].startswith("/")
            ]
            cites += [(m["name"] + ".md", None, m["number"], None) for m in _BARE.finditer(line)]
            for cited, heading, number, anchor in cites:
                doc = _resolve(root, path, cited)
                if doc is None:
                    problems.append(f"{rel}:{lineno}: cites {cited}, which is not in the repository")
                    continue
                problem = _section_problem(doc, heading, number, anchor)
                if problem:
                    problems.append(f"{rel}:{lineno}: cites {cited}, which has {problem}")
    return problems


def test_every_cited_document_and_section_exists() -> None:
    files = text_files(ROOT)
    assert any(p.name == "test_docs.py" for p in files)
    problems = check_citations(ROOT, files)
    assert not problems, "bad document citations:\n" + "\n".join(problems)


def test_docs_folder_is_indexed() -> None:
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for doc in sorted((ROOT / "docs").glob("*.md")):
        if doc.name != "README.md":
            assert f"({doc.name})" in index, f"docs/README.md does not link {doc.name}"


def test_checker_reports_bad_citations(tmp_path: Path) -> None:
    md = ".md"  # kept apart so that this file's own source cites nothing
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / f"good{md}").write_text(
        "# Good\n\n## Alpha beta\n\n```\n## Not a heading\n```\n\n## 2. Numbered\n", encoding="utf-8"
    )
    (tmp_path / "docs" / f"other{md}").write_text(
        f'See good{md}, "Alpha beta" and [it](good{md}#alpha-beta).\n', encoding="utf-8"
    )
    (tmp_path / "pkg.py").write_text(
        "\n".join(
            [
                f'"""Fine: (docs/good{md}, "alpha   `beta`") and docs/good{md} § 2."""',
                f'# bad section: (docs/good{md}, "Gamma")',
                f"# bad anchor: docs/good{md}#gamma",
                f"# bad number: docs/good{md} § 3",
                f'# in a code block only: (docs/good{md}, "Not a heading")',
                f"# missing file: see docs/missing{md}",
                f"# bare name: ({_BARE_NAMES[0]} § 1)",
                f"# bare name, possessive: {_BARE_NAMES[1]}'s layers",
                f"# not citations: {_BARE_NAMES[0]}_TABLE, obj.{_BARE_NAMES[1]}, https://example.org/a/b{md}",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    (tmp_path / "Makefile").write_text(f"# see docs/gone{md}\n", encoding="utf-8")
    files = [tmp_path / "docs" / f"good{md}", tmp_path / "docs" / f"other{md}", tmp_path / "pkg.py"]
    files.append(tmp_path / "Makefile")
    problems = check_citations(tmp_path, files)
    assert problems == [
        f'pkg.py:2: cites docs/good{md}, which has no section "Gamma"',
        f"pkg.py:3: cites docs/good{md}, which has no section with anchor #gamma",
        f"pkg.py:4: cites docs/good{md}, which has no section numbered 3",
        f'pkg.py:5: cites docs/good{md}, which has no section "Not a heading"',
        f"pkg.py:6: cites docs/missing{md}, which is not in the repository",
        f"pkg.py:7: cites {_BARE_NAMES[0]}{md}, which is not in the repository",
        f"pkg.py:8: cites {_BARE_NAMES[1]}{md}, which is not in the repository",
        f"Makefile:1: cites docs/gone{md}, which is not in the repository",
    ]


def test_text_files_without_git(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n", encoding="utf-8")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "b.py").write_text("x = 1\n", encoding="utf-8")
    (tmp_path / "c.bin").write_bytes(b"\0")
    names = [p.relative_to(tmp_path).as_posix() for p in text_files(tmp_path)]
    assert names == ["a.py"]
