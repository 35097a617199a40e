"""The benchmark's default corpus: deterministic PDFs of realistic English prose (fpdf2).

Same seed, same bytes: runs on different days and machines measure the same work.
"""

from __future__ import annotations

import random
from pathlib import Path

from fpdf import FPDF

PEOPLE = [
    "Ada Lovelace",
    "Charles Babbage",
    "Grace Hopper",
    "Alan Turing",
    "Marie Curie",
    "Albert Einstein",
    "Rosalind Franklin",
    "Niels Bohr",
    "Emmy Noether",
    "John von Neumann",
]
PLACES = [
    "London",
    "Paris",
    "Berlin",
    "Cambridge",
    "New York",
    "Tokyo",
    "Geneva",
    "Vienna",
    "Princeton",
    "Copenhagen",
]
ORGS = [
    "the Royal Society",
    "the University of Cambridge",
    "IBM",
    "the European Space Agency",
    "the National Physical Laboratory",
    "Bell Labs",
    "CERN",
    "the Academy of Sciences",
]
NOUNS = [
    "analysis",
    "engine",
    "experiment",
    "theory",
    "method",
    "measurement",
    "archive",
    "committee",
    "report",
    "instrument",
    "manuscript",
    "laboratory",
    "proposal",
    "budget",
]
ADJECTIVES = [
    "careful",
    "remarkable",
    "detailed",
    "early",
    "controversial",
    "practical",
    "theoretical",
    "annual",
    "independent",
    "systematic",
]
VERBS = [
    "described",
    "reviewed",
    "funded",
    "published",
    "rejected",
    "extended",
    "tested",
    "presented",
    "questioned",
    "improved",
]
TEMPLATES = [
    "In {year}, {person} {verb} a {adj} {noun} in {place}.",
    "The {noun} was later {verb} by {org}, which had offices in {place}.",
    "According to {person}, the {adj} {noun} cost more than {amount} pounds.",
    "{person} and {person2} met in {place} to discuss the {noun}.",
    "A {adj} {noun} {verb} by {org} changed how scientists in {place} worked.",
    "Critics in {place} argued that the {noun} was too {adj} to be useful.",
    "By {year}, {org} had {verb} every {noun} that {person} had proposed.",
]
SIZES = (1, 2, 5, 10, 20, 40)  # pages per document, cycled


def sentence(rng: random.Random) -> str:
    person, person2 = rng.sample(PEOPLE, 2)
    return rng.choice(TEMPLATES).format(
        year=rng.randint(1820, 2020),
        person=person,
        person2=person2,
        verb=rng.choice(VERBS),
        adj=rng.choice(ADJECTIVES),
        noun=rng.choice(NOUNS),
        place=rng.choice(PLACES),
        org=rng.choice(ORGS),
        amount=rng.randint(2, 900) * 100,
    )


def prose_pdf(pages: int, seed: int, words_per_page: int = 330) -> bytes:
    """`pages` pages of prose paragraphs (about `words_per_page` words each)."""
    rng = random.Random(seed)
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    pdf.set_title(f"Benchmark document {seed}")
    for number in range(1, pages + 1):
        pdf.add_page()
        words = 0
        paragraphs = []
        while words < words_per_page:
            paragraph = " ".join(sentence(rng) for _ in range(rng.randint(3, 6)))
            words += len(paragraph.split())
            paragraphs.append(paragraph)
        pdf.set_auto_page_break(True, margin=20)
        pdf.multi_cell(0, 5, "\n\n".join(paragraphs))
        pdf.set_auto_page_break(False)  # the footer sits below the text area on purpose
        pdf.set_y(-15)
        pdf.cell(0, 5, f"Page {number}", align="C")
    return bytes(pdf.output())


def write_corpus(folder: Path, documents: int = 48, seed: int = 7) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(documents):
        path = folder / f"bench-{i:03d}-{SIZES[i % len(SIZES)]}p.pdf"
        if not path.exists():
            path.write_bytes(prose_pdf(SIZES[i % len(SIZES)], seed * 1000 + i))
        paths.append(path)
    return paths


def padded_pdf(target_bytes: int, seed: int) -> bytes:
    """A small prose PDF padded (after %%EOF, which readers ignore) to about target_bytes."""
    data = prose_pdf(1, seed)
    missing = max(0, target_bytes - len(data))
    return data + b"\n%" + b"p" * missing + b"\n"
