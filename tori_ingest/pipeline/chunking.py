"""Section-aware chunks of a document's blocks, for retrieval (embeddings, RAG).

A search index wants pieces of bounded size that each say where they sit. So a chunk ends at
every heading (its `headings` path is true for all of its text) and never spans two top-level
sections; it is cut at sentence ends, mid-sentence only when one sentence is longer than a
chunk; and a table is cut by rows with its header repeated, so every piece is a readable table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tori_ingest.core.vocab import BlockType
from tori_ingest.pipeline.markdown import table_lines

CHUNK_WORDS = 200

_HEADINGS = frozenset({BlockType.TITLE, BlockType.HEADING})
# End punctuation (and closing quotes/brackets), whitespace: a sentence end when what follows
# starts a sentence (checked in code: str.isupper knows every script's capitals).
_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*\s+")
_OPENERS = "\"'\u201c\u2018(["
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # e.g, i.e, U.S (the last dot is the end)
_ABBREVIATIONS = frozenset(
    "Dr Mr Mrs Ms Prof Fig Figs fig figs al vs cf Eq Eqs eq eqs No Nos Vol vol pp Sec sec Ch "
    "approx ca St Jr Sr Ref Refs Tab resp".split()
)


def chunk_blocks(
    blocks: list[dict[str, Any]], chunk_words: int = CHUNK_WORDS
) -> list[dict[str, Any]]:
    """Chunks `{text, page_start, page_end, headings, words}` of at most `chunk_words` words,
    except a table piece whose header and one row alone are longer."""
    if chunk_words < 1:
        raise ValueError(f"chunk_words must be at least 1, not {chunk_words}")
    headed = [
        _level(block) for block in blocks if block.get("type") == BlockType.HEADING and _text(block)
    ]
    chunker = _Chunker(chunk_words, top=min(headed, default=1))
    for block in blocks:
        chunker.block(block)
    chunker.flush()
    return chunker.chunks


@dataclass
class _Chunker:
    limit: int
    top: int  # the level that starts a section (the title, level 0, always does)
    chunks: list[dict[str, Any]] = field(default_factory=list)
    path: list[tuple[int, str]] = field(default_factory=list)  # (level, heading), outermost first
    text: str = ""  # the open chunk
    words: int = 0
    pages: list[int] = field(default_factory=list)
    body: bool = False  # it holds more than heading text
    last: str = ""  # the type of its last block

    def block(self, block: dict[str, Any]) -> None:
        kind, text, page = str(block.get("type")), _text(block), int(block.get("page") or 1)
        rows = block.get("rows") or []
        if kind in _HEADINGS and text:
            level = 0 if kind == BlockType.TITLE else _level(block)
            self.heading(" ".join(text.split()), level, page)
        elif kind == BlockType.TABLE and any(rows):
            self.whole(kind, table_lines(rows), 2, page)
        elif kind in (BlockType.CODE, BlockType.FORMULA) and text:
            self.whole(kind, _code_lines(str(block["text"]), self.limit), 0, page)
        elif text:
            self.prose(text, kind, page)

    def heading(self, text: str, level: int, page: int) -> None:
        # Headings with nothing under them yet are carried into a subsection's first chunk
        # rather than left alone in one, unless a section starts (the title, level 0, is
        # carried into the first section: it is no section of its own).
        nested = (
            bool(self.path)
            and self.path[-1][0] < level
            and (level != self.top or self.path[-1][0] == 0)
        )
        if self.body or not nested:
            self.flush()
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        self.path.append((level, text))
        self.prose(text, BlockType.HEADING, page)

    def prose(self, text: str, kind: str, page: int) -> None:
        """Whole when it fits in what is left, else cut at sentence ends."""
        sep = "\n" if kind == BlockType.LIST_ITEM == self.last else "\n\n"
        body = kind not in _HEADINGS
        if _count(text) <= self.limit - self.words:
            self.add(text, page, sep, body)
        else:
            self.pack(_atoms(text, self.limit), page, sep, body)
        self.last = kind

    def pack(self, atoms: list[str], page: int, sep: str, body: bool) -> None:
        group: list[str] = []
        words = 0
        for atom in atoms:
            count = _count(atom)
            if words + count > self.limit - self.words:
                if group:
                    self.add(" ".join(group), page, sep, body)
                self.flush()
                group, words = [], 0
            group.append(atom)
            words += count
        if group:
            self.add(" ".join(group), page, sep, body)

    def whole(self, kind: str, lines: list[str], head: int, page: int) -> None:
        """A table, code or formula: whole in what is left, else in chunks of its own, cut
        between rows (the `head` header lines repeated at the top of each) or lines."""
        text = "\n".join(lines)
        if _count(text) <= self.limit - self.words:
            self.add(text, page, "\n\n", True)
            self.last = kind
            return
        if self.body:
            self.flush()
        header, items = (lines[:head], lines[head:]) if len(lines) > head else ([], [text])
        base = _count("\n".join(header))
        group: list[str] = []
        words = base
        for item in items:
            count = _count(item)
            if words + count > self.limit - self.words and (group or self.text):
                if group:
                    self.add("\n".join(header + group), page, "\n\n", True)
                self.flush()
                group, words = [], base
            group.append(item)
            words += count
        self.add("\n".join(header + group), page, "\n\n", True)
        self.flush()

    def add(self, text: str, page: int, sep: str, body: bool) -> None:
        self.text = f"{self.text}{sep}{text}" if self.text else text
        self.words += _count(text)
        self.pages.append(page)
        self.body = self.body or body

    def flush(self) -> None:
        if self.text.strip():
            self.chunks.append(
                {
                    "text": self.text,
                    "page_start": min(self.pages),
                    "page_end": max(self.pages),
                    "headings": [heading for _, heading in self.path],
                    "words": _count(self.text),
                }
            )
        self.text, self.words, self.pages, self.body, self.last = "", 0, [], False, ""


def sentences(text: str) -> list[str]:
    """Sentences of `text`: cut after .!? and whitespace before a capital, digit or quote,
    except after an abbreviation ("e.g.", "Dr.", "Fig.", "et al.") or an initial ("J.")."""
    out: list[str] = []
    start = 0
    for end in _END.finditer(text):
        after = text[end.end() : end.end() + 1]
        if not (after.isupper() or after.isdigit() or (after and after in _OPENERS)):
            continue
        if text[end.start()] == "." and _abbreviation(text[start : end.start()]):
            continue
        out.append(text[start : end.end()].strip())
        start = end.end()
    tail = text[start:].strip()
    return [*out, tail] if tail else out


def _abbreviation(before: str) -> bool:
    words = before.split()
    word = words[-1].lstrip(_OPENERS) if words else ""
    initial = len(word) == 1 and word.isupper()
    return initial or word in _ABBREVIATIONS or bool(_DOTTED.fullmatch(word))


def _atoms(text: str, limit: int) -> list[str]:
    """Sentences, and the words of any sentence longer than a chunk."""
    return [
        atom
        for sentence in sentences(text)
        for atom in (sentence.split() if _count(sentence) > limit else [sentence])
    ]


def _code_lines(text: str, limit: int) -> list[str]:
    """Lines, a line longer than a chunk cut into runs of `limit` words."""
    lines: list[str] = []
    for line in text.strip("\n").rstrip().splitlines():
        words = line.split()
        if len(words) <= limit:
            lines.append(line)
        else:
            lines += [" ".join(words[i : i + limit]) for i in range(0, len(words), limit)]
    return lines


def _level(block: dict[str, Any]) -> int:
    level = block.get("level")
    return level if isinstance(level, int) and level >= 1 else 1


def _text(block: dict[str, Any]) -> str:
    return str(block.get("text") or "").strip()


def _count(text: str) -> int:
    return len(text.split())
