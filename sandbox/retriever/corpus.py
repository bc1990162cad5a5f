"""The corpus: the project's Markdown notes, cut into passages small enough to embed well.

Chunking follows the document's own structure: each section (a heading and the text under it)
is cut at paragraph boundaries into passages of up to ``chunk_chars`` characters, and every
passage starts with its section's heading path, so "KV cache" in a heading helps a passage
whose body only says "blocks". A passage's ``source`` is ``path#section-slug``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Passage", "chunk_markdown", "collect_files", "load_corpus"]

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Passage:
    text: str
    source: str  # "docs/phases.md#the-kv-cache-in-one-paragraph"


def collect_files(root: Path, globs: Iterable[str]) -> list[Path]:
    """Every file matching one of ``globs`` under ``root``, once, in a stable order."""
    found: set[Path] = set()
    for pattern in globs:
        found.update(p for p in root.glob(pattern) if p.is_file())
    return sorted(found)


def _slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-") or "top"


def _sections(text: str) -> Iterator[tuple[list[str], list[str]]]:
    """(heading path, paragraphs) for each section; fenced code stays one paragraph."""
    path: list[str] = []
    paragraphs: list[str] = []
    current: list[str] = []
    in_fence = False

    def close_paragraph() -> None:
        if current:
            paragraphs.append("\n".join(current).strip())
            current.clear()

    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            current.append(line)
            continue
        heading = None if in_fence else _HEADING.match(line)
        if heading:
            close_paragraph()
            if paragraphs:
                yield list(path), list(paragraphs)
                paragraphs.clear()
            level = len(heading.group(1))
            path = [*path[: level - 1], heading.group(2)]
            continue
        if not line.strip() and not in_fence:
            close_paragraph()
        else:
            current.append(line)
    close_paragraph()
    if paragraphs:
        yield list(path), list(paragraphs)


def chunk_markdown(text: str, source: str, chunk_chars: int) -> list[Passage]:
    """Cut one Markdown document into passages (see the module docstring)."""
    passages: list[Passage] = []
    for path, paragraphs in _sections(text):
        title = " > ".join(path)
        anchor = f"{source}#{_slug(path[-1])}" if path else source
        batch: list[str] = []
        size = 0
        for paragraph in paragraphs:
            if batch and size + len(paragraph) > chunk_chars:
                passages.append(_passage(title, batch, anchor))
                batch, size = [], 0
            batch.append(paragraph)
            size += len(paragraph) + 2
        if batch:
            passages.append(_passage(title, batch, anchor))
    return passages


def _passage(title: str, paragraphs: list[str], source: str) -> Passage:
    body = "\n\n".join(paragraphs)
    return Passage(f"{title}\n\n{body}" if title else body, source)


def load_corpus(root: Path, globs: Iterable[str], chunk_chars: int) -> list[Passage]:
    """Read and chunk every matching file; ``source`` paths are relative to ``root``."""
    passages: list[Passage] = []
    for path in collect_files(root, globs):
        text = path.read_text(encoding="utf-8", errors="replace")
        passages.extend(chunk_markdown(text, path.relative_to(root).as_posix(), chunk_chars))
    return passages
