"""Documents with known text for the quality benchmark (fpdf2, deterministic).

Every line is placed by hand, so the truth is exact: which words are body text, which lines
are running headers and footers, which words were hyphenated across lines, the order of
sentences on two-column pages, each page's language, and keyphrase labels (a document's
headings name its topics: free labels).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from fpdf import FPDF

FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  # Debian/Ubuntu fonts-dejavu-core
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",  # Fedora, Alpine
    "/Library/Fonts/Arial Unicode.ttf",
)
LIGATURES = (
    ("ffi", "\ufb03"),
    ("ffl", "\ufb04"),
    ("ff", "\ufb00"),
    ("fi", "\ufb01"),
    ("fl", "\ufb02"),
)
HYPHENS = ("-", "-", "\u2010", "\u00ad")
PAGE_W, PAGE_H, MARGIN = 210.0, 297.0, 18.0
LINE_MM = 5.0

PEOPLE = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Marie Curie", "Emmy Noether"]
PLACES = ["London", "Paris", "Berlin", "Geneva", "Vienna", "Lyon", "Hamburg"]
TEMPLATES = {
    "en": [
        "The {t} was described in detail by {p} in {y}.",
        "{p} wrote that the {t} gives a clear picture of how the work in {c} was organised.",
        "Early reports on the {t} were written in {c} and later translated into French.",
        "Most of the text about the {t} focuses on practical questions rather than theory.",
        "In {y}, a committee in {c} compared the {t} with the {u}.",
        "It is often said that the {t} changed how engineers in {c} thought about the {u}.",
        "The results show that the {t} works well when the {u} is kept simple.",
        "A short note gives the main figures for the {t} and explains how they were measured.",
        "Several chapters discuss the {t}, and one of them is entirely about the {u}.",
        "Critics argued that the {t} was too expensive, but {p} disagreed with them.",
    ],
    "de": [
        "Zum Thema {t} schrieb {p} im Jahr {y} einen ausführlichen Bericht.",
        "Der Abschnitt über {t} zeigt, wie die Arbeit in {c} organisiert war.",
        "Viele Leser halten {t} für wichtiger als {u}, obwohl beides zusammengehört.",
        "Im Jahr {y} verglich eine Kommission in {c} {t} mit {u}.",
        "Es wird oft gesagt, dass {t} das Denken über {u} grundlegend verändert hat.",
        "Die Ergebnisse zeigen, dass {t} gut funktioniert, wenn {u} einfach bleibt.",
        "Eine kurze Notiz nennt die wichtigsten Zahlen zu {t} und erklärt ihre Messung.",
        "Mehrere Kapitel behandeln {t}, und eines davon ist ganz {u} gewidmet.",
        "Kritiker meinten, {t} sei zu teuer, aber {p} widersprach ihnen entschieden.",
        "Nach Ansicht von {p} ist {t} ohne {u} kaum zu verstehen.",
    ],
    "fr": [
        "Le rapport sur {t} a été rédigé par {p} à {c} en {y}.",
        "Selon {p}, {t} donne une image claire du travail mené à {c}.",
        "La plupart des textes consacrés à {t} traitent de questions pratiques.",
        "En {y}, une commission de {c} a comparé {t} et {u}.",
        "On dit souvent que {t} a changé la manière de penser {u}.",
        "Les résultats montrent que {t} fonctionne bien lorsque {u} reste simple.",
        "Une courte note donne les chiffres principaux sur {t} et explique leur mesure.",
        "Plusieurs chapitres portent sur {t}, et l'un d'eux est entièrement consacré à {u}.",
        "Les critiques jugeaient {t} trop coûteux, mais {p} n'était pas de cet avis.",
        "Pour {p}, il est difficile de comprendre {t} sans {u}.",
    ],
}
TOPICS = {
    "en": [
        ["analytical engine", "punched cards", "difference engine"],
        ["solar panels", "battery storage", "grid frequency"],
        ["river delta", "sediment transport", "flood defences"],
        ["neural networks", "gradient descent", "training data"],
        ["field trial", "soil moisture", "crop rotation"],
        ["office building", "heat pump", "efficient insulation"],
    ],
    "de": [
        ["Wärmepumpen", "Fernwärme", "Stromnetze"],
        ["Graphentheorie", "kürzeste Wege", "Knotenfärbung"],
        ["Hochwasserschutz", "Flussbett", "Sedimenttransport"],
    ],
    "fr": [
        ["énergie solaire", "réseau électrique", "stockage thermique"],
        ["transport fluvial", "écluses", "canal latéral"],
        ["apprentissage automatique", "réseaux de neurones", "données d'entraînement"],
    ],
}


@dataclass
class TruthPage:
    body: list[str] = field(default_factory=list)  # body text as written (before wrapping)
    furniture: list[str] = field(default_factory=list)  # header/footer lines as written
    joins: list[str] = field(default_factory=list)  # words hyphenated across two lines
    order: list[str] = field(default_factory=list)  # sentences of a two-column page, in order
    language: str = "en"


@dataclass
class TruthDoc:
    name: str
    language: str
    pages: list[TruthPage]
    labels: list[str] = field(default_factory=list)  # keyphrases the document is about
    path: Path | None = None


def font_path() -> str | None:
    return next((p for p in FONT_PATHS if Path(p).is_file()), None)


def prose(rng: random.Random, lang: str, topics: list[str], words: int) -> list[str]:
    """Sentences about `topics` (each mentioned often, as a real text would) of about `words`."""
    out: list[str] = []
    count = 0
    while count < words:
        t, u = rng.sample(topics, 2)
        sentence = rng.choice(TEMPLATES[lang]).format(
            t=t, u=u, p=rng.choice(PEOPLE), c=rng.choice(PLACES), y=rng.randint(1850, 2020)
        )
        out.append(sentence[0].upper() + sentence[1:])
        count += len(sentence.split())
    return out


class Writer:
    """An fpdf2 document written line by line, recording the truth of every page."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.pdf = FPDF()
        self.pdf.set_auto_page_break(False)
        self.font = font_path()
        if self.font:
            self.pdf.add_font("body", fname=self.font)
            self.pdf.set_font("body", size=10)
        else:  # latin-1 only: no ligature code points
            self.pdf.set_font("Helvetica", size=10)
        self.pages: list[TruthPage] = []
        self.footer: str | None = None

    def page(self, language: str, header: str | None = None, footer: str | None = None) -> None:
        """A new page; its header is drawn first, its footer last (as most producers do)."""
        self._footer()
        self.pdf.add_page()
        self.pages.append(TruthPage(language=language))
        self.y = MARGIN + 10
        if header:
            self.pdf.text(MARGIN, MARGIN, header)
            self.pages[-1].furniture.append(header)
        self.footer = footer

    def _footer(self) -> None:
        if self.pages and self.footer:
            self.pdf.text(MARGIN, PAGE_H - MARGIN + 4, self.footer)
            self.pages[-1].furniture.append(self.footer)
        self.footer = None

    def line(self, text: str, x: float = MARGIN, ligatures: bool = False) -> None:
        if ligatures and self.font:
            for plain, glyph in LIGATURES:
                text = text.replace(plain, glyph)
        self.pdf.text(x, self.y, text)
        self.y += LINE_MM

    def heading(self, text: str) -> None:
        self.line(text)
        self.pages[-1].body.append(text)
        self.y += 2

    def wrap(self, text: str, width: float, hyphenate: bool = True) -> list[str]:
        """Lines of at most `width` mm; long words at a line end are sometimes hyphenated."""
        lines, current = [], ""
        for word in text.split():
            trial = f"{current} {word}".strip()
            if self.pdf.get_string_width(trial) <= width:
                current = trial
                continue
            cut = self.rng.randint(3, max(3, len(word) - 3))
            # Producers draw the break as hyphen-minus, U+2010 or a visible soft hyphen.
            mark = self.rng.choice(HYPHENS if self.font else HYPHENS[:1])
            head = f"{current} {word[:cut]}{mark}".strip()
            if (
                hyphenate
                and len(word) >= 8
                and word.isalpha()
                and word[cut].islower()
                and self.pdf.get_string_width(head) <= width
                and self.rng.random() < 0.6
            ):
                lines.append(head)
                self.pages[-1].joins.append(word)
                current = word[cut:]
            else:
                lines.append(current)
                current = word
        return [*lines, current] if current else lines

    def paragraph(self, sentences: list[str], ligatures: bool = False) -> None:
        text = " ".join(sentences)
        self.pages[-1].body.append(text)
        for line in self.wrap(text, PAGE_W - 2 * MARGIN):
            self.line(line, ligatures=ligatures)
        self.y += 2

    def columns(self, sentences: list[str]) -> None:
        """Two columns, written column by column as typesetters do."""
        width = (PAGE_W - 2 * MARGIN - 8) / 2
        lines = self.wrap(" ".join(sentences), width)
        half = (len(lines) + 1) // 2
        top = self.y
        for column, x in ((lines[:half], MARGIN), (lines[half:], MARGIN + width + 8)):
            self.y = top
            for text in column:
                self.line(text, x=x)
        self.pages[-1].body.append(" ".join(sentences))
        self.pages[-1].order.extend(sentences)

    def table(self, rows: list[list[str]]) -> None:
        for row in rows:
            for k, cell in enumerate(row):
                self.pdf.text(MARGIN + 45 * k, self.y, cell)
            self.pages[-1].body.append(" ".join(row))
            self.y += LINE_MM

    def save(self, path: Path) -> None:
        self._footer()
        path.write_bytes(bytes(self.pdf.output()))


def report(seed: int, pages: int = 8) -> tuple[Writer, list[str]]:
    """English report: title-only cover, running header, "Page N of M", headings, ligatures."""
    w = Writer(seed)
    topics = TOPICS["en"][seed % len(TOPICS["en"])]
    w.page("en")
    w.heading(f"A Report on the {topics[0].title()}")
    for n in range(2, pages + 1):
        w.page("en", "Tori Research \u00b7 Annual Report 2024", f"Page {n} of {pages}")
        for k in range(2):
            w.heading(topics[(n + k) % 3].capitalize())
            w.paragraph(prose(w.rng, "en", topics, 130), ligatures=n % 2 == 0)
    return w, topics


def book(seed: int, pages: int = 12) -> tuple[Writer, list[str]]:
    """German book: chapter headers that change with each section, page number inside."""
    w = Writer(seed)
    topics = TOPICS["de"][seed % len(TOPICS["de"])]
    sections = [("1.6.", "WEGE UND KNOTEN"), ("2.1.", "BÄUME UND WÄLDER"), ("3.4.", "FLÜSSE")]
    chapters = ["KAPITEL 1. GRUNDBEGRIFFE", "KAPITEL 2. BÄUME", "KAPITEL 3. NETZWERKE"]
    for n in range(1, pages + 1):
        part = min(2, (n - 1) * 3 // pages)
        number = 17 + n
        if number % 2 == 0:
            w.page("de", f"{number} {sections[part][0]} {sections[part][1]}")
        else:
            w.page("de", f"{chapters[part]} {number}")
        w.paragraph(prose(w.rng, "de", topics, 150))
        w.paragraph(prose(w.rng, "de", topics, 120))
    return w, topics


def article(seed: int, pages: int = 6) -> tuple[Writer, list[str]]:
    """French article in two columns, running header and "- N -" footers."""
    w = Writer(seed)
    topics = TOPICS["fr"][seed % len(TOPICS["fr"])]
    for n in range(1, pages + 1):
        w.page("fr", "Revue de l'ingestion \u00b7 numéro 12", f"- {n} -")
        w.columns(prose(w.rng, "fr", topics, 260))
    return w, topics


def tables(seed: int, pages: int = 4) -> tuple[Writer, list[str]]:
    """English pages with a table each, bare page numbers as footers."""
    w = Writer(seed)
    topics = TOPICS["en"][(seed + 1) % len(TOPICS["en"])]
    for n in range(1, pages + 1):
        w.page("en", None, str(n))
        w.paragraph(prose(w.rng, "en", topics, 90))
        regions = ["North", "South", "East", "West", "Central"]
        rows = [["Region", "Revenue", "Growth", "Staff"]]
        rows += [
            [r, f"{w.rng.randint(100, 999)}", f"{w.rng.randint(1, 30)}%", str(n + k)]
            for k, r in enumerate(regions)
        ]
        w.table(rows)
        w.paragraph(prose(w.rng, "en", topics, 90))
    return w, topics


def slides(seed: int, pages: int = 8) -> tuple[Writer, list[str]]:
    """A deck: title-only first slide, bullet slides with "Slide N" footers."""
    w = Writer(seed)
    topics = TOPICS["en"][(seed + 2) % len(TOPICS["en"])]
    w.page("en")
    w.heading("Quarterly Review")
    for n in range(2, pages + 1):
        w.page("en", None, f"Tori Ingest \u00b7 Slide {n}")
        w.heading(topics[n % 3].capitalize())
        for sentence in prose(w.rng, "en", topics, 40):
            w.line("- " + sentence)
            w.pages[-1].body.append(sentence)
    return w, topics


def repeated(text: str, pages: int) -> tuple[Writer, list[str]]:
    """Every page says the same thing and nothing else (a deck of "Background" slides)."""
    w = Writer(0)
    for _ in range(pages):
        w.page("en")
        w.heading(text)
    return w, []


def quality_set(folder: Path, scale: int = 1) -> list[TruthDoc]:
    """The benchmark's documents; `scale` multiplies page counts (1 = 44 pages)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        _save(folder, "report-en", "en", report(1, 8 * scale)),
        _save(folder, "book-de", "de", book(2, 12 * scale)),
        _save(folder, "article-fr", "fr", article(3, 6 * scale)),
        _save(folder, "tables-en", "en", tables(4, 4 * scale)),
        _save(folder, "slides-en", "en", slides(5, 8 * scale)),
        _save(folder, "background-en", "en", repeated("Background", 6)),
    ]


def labelled_set(folder: Path) -> list[TruthDoc]:
    """Short documents per topic set (headings name the topics): keyphrase labels."""
    folder.mkdir(parents=True, exist_ok=True)
    docs = []
    for lang, topic_sets in TOPICS.items():
        for k in range(len(topic_sets)):
            build = {"en": report, "de": book, "fr": article}[lang]
            docs.append(_save(folder, f"labelled-{lang}-{k}", lang, build(k, 4)))
    return docs


def _save(folder: Path, name: str, lang: str, built: tuple[Writer, list[str]]) -> TruthDoc:
    writer, labels = built
    path = folder / f"{name}.pdf"
    writer.save(path)
    return TruthDoc(name, lang, writer.pages, [t.lower() for t in labels], path)


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())
