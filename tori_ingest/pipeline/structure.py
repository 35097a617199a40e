"""The structured output of a document: blocks in reading order and section-aware chunks.

Pages were analysed as they were extracted (`layout.analyse_page`); here, after cleaning, the
document is put together: cleaning's furniture is left out, pages read without positions get
their paragraphs from the cleaned text, and the chunks follow the blocks' sections.
"""

from __future__ import annotations

from typing import Any

from tori_ingest.core.formats import MediaType
from tori_ingest.core.vocab import Extractor, PageSource
from tori_ingest.pipeline import chunking, clean, extract, layout, scan


def blocks_and_chunks(
    read: scan.Read, cleaned: list[clean.Cleaned], chunk_words: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    structures = [
        _from_cleaned(structure, page.text)
        if structure.paragraphs is not None and source.source is PageSource.TEXT
        else structure
        for structure, page, source in zip(read.structures, cleaned, read.pages, strict=True)
    ]
    blocks = layout.build_blocks(structures, [page.removed for page in cleaned], read.outline)
    return blocks, chunking.chunk_blocks(blocks, chunk_words)


def _from_cleaned(structure: layout.PageStructure, text: str) -> layout.PageStructure:
    """A page without positions: paragraphs of its cleaned text (furniture already off)."""
    return layout.plain_page(structure.number, text, structure.width, structure.height)


def document_blocks(data: bytes, password: str | None = None) -> list[dict[str, Any]]:
    """The blocks of a PDF's text layer, without OCR or NLP (the benchmark, tests)."""
    raw = extract.extract(data, password=password, extractor=Extractor.PDFIUM)
    read = scan.Read(
        pages=[scan.PageText(text) for text in raw.pages],
        media_type=MediaType.PDF,
        structures=raw.structures,
        outline=raw.outline,
    )
    margins = [layout.margin_lines(structure) for structure in raw.structures]
    cleaned = clean.clean_pages(raw.pages, margins)
    return blocks_and_chunks(read, cleaned, chunking.CHUNK_WORDS)[0]
