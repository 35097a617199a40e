"""spaCy annotation: entities merged across pages, keyphrases, stats, bounded input, model
choice (chunks follow the document's structure: tests/unit/test_blocks_output.py)."""

import io
from collections.abc import Iterable
from typing import Any

import pytest
from pypdf import PdfReader
from spacy.language import Language

from tori_ingest.bench import shapes
from tori_ingest.core.errors import ModelError
from tori_ingest.pipeline import nlp


def pypdf_text(pdf: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)


@pytest.fixture(scope="module")
def full() -> Language:
    language, info = nlp.load_pipeline("auto")
    assert info.model in nlp.AUTO_MODELS
    assert language.pipe_names == ["ner", "sentencizer"]  # only what the result needs
    return language


@pytest.fixture(scope="module")
def blank() -> Language:
    return nlp.load_pipeline("blank:en")[0]


PAGES = [
    "Ada Lovelace worked with Charles Babbage in London.\nShe wrote notes on the engine.",
    "",
    "Charles Babbage designed the Analytical Engine in London. Ada Lovelace explained it.",
]


def test_entities_merged_with_pages_most_frequent_first(full: Language) -> None:
    out = nlp.annotate(full, PAGES)
    ents = {(e["text"], e["label"]): e for e in out["entities"]}
    assert ents[("Charles Babbage", "PERSON")]["count"] == 2
    assert ents[("Charles Babbage", "PERSON")]["pages"] == [1, 3]
    assert ents[("London", "GPE")]["pages"] == [1, 3]
    counts = [e["count"] for e in out["entities"]]
    assert counts == sorted(counts, reverse=True)


def test_keyphrases_are_content_word_runs(full: Language) -> None:
    phrases = {k["text"]: k["count"] for k in nlp.annotate(full, PAGES)["keyphrases"]}
    assert phrases["charles babbage"] == 2
    assert phrases["london"] == 2
    assert "analytical engine" in phrases  # "the Analytical Engine" without "the"
    assert "ada lovelace" in phrases  # an entity is a phrase of its own: not "ada lovelace worked"
    assert not any(p.split()[0] in ("the", "a", "in", "with") for p in phrases)


def test_keyphrases_rank_terms_before_lone_lowercase_words(blank: Language) -> None:
    page = (
        "The heat pump was written up. The heat pump gives heat. Engineers wrote that the "
        "office building needs a heat pump. The office building was written about."
    )
    ranked = [k["text"] for k in nlp.annotate(blank, [page])["keyphrases"]]
    assert ranked[0] == "heat pump"  # three times; "written" twice, but a lone lowercase word
    assert ranked.index("written") > ranked.index("office building")


def test_keyphrases_bridge_of_and_de() -> None:
    french = nlp.blank_pipeline("fr")[0]
    page = "Les réseaux de neurones apprennent. Les réseaux de neurones sont utiles."
    phrases = {k["text"] for k in nlp.annotate(french, [page])["keyphrases"]}
    assert "réseaux de neurones" in phrases


def test_german_text_uses_german_stop_words() -> None:
    german = nlp.blank_pipeline("de")[0]
    page = (
        "Ein Weg ist eine Folge von Knoten und Kanten, und der Graph sei zusammenhängend, "
        "wenn je zwei Knoten mit einem Weg verbunden sind. Der Weg ist kurz."
    )
    phrases = {k["text"] for k in nlp.annotate(german, [page])["keyphrases"]}
    assert not phrases & {"und", "sei", "ist", "mit", "der", "ein"}
    assert {"knoten", "weg"} <= phrases


def test_stats(full: Language) -> None:
    out = nlp.annotate(full, PAGES)
    assert out["stats"] == {"words": 26, "sentences": 4, "chars": sum(map(len, PAGES))}
    assert "chunks" not in out  # the structure's chunks, not NLP's


def test_progress_reports_every_page_once_in_order(blank: Language) -> None:
    seen: list[int] = []
    nlp.annotate(blank, ["One.", "", "Three.", "Four."], on_page=seen.append)
    assert seen == sorted(seen) and seen[-1] == 4


def test_long_page_is_segmented(blank: Language) -> None:
    page = ("Word " * 10_000).strip()  # 50k chars
    parts = list(nlp.segments([page], limit=20_000))
    assert len(parts) == 3 and all(len(t) <= 20_000 for _, t in parts)
    assert " ".join(t for _, t in parts) == page


def test_blank_pipeline_has_no_entities_but_keyphrases(blank: Language) -> None:
    out = nlp.annotate(blank, PAGES)
    assert out["entities"] == []
    assert {"text": "london", "count": 2} in out["keyphrases"]


def test_unknown_model_is_an_error_naming_the_fix() -> None:
    with pytest.raises(ModelError, match=r"pip install"):
        nlp.resolve_model("en_core_web_nonexistent")


# --- one pipeline per language ----------------------------------------------------------------


def test_per_language_setting_is_parsed_and_checked() -> None:
    installed = nlp.resolve_model("auto")
    assert nlp.parse_setting("auto") == {} and nlp.parse_setting(installed) == {}
    assert nlp.parse_setting(f"en={installed}, FR=fr_pkg") == {"en": installed, "fr": "fr_pkg"}
    assert nlp.resolve_model(f" en = {installed} ") == f"en={installed}"
    with pytest.raises(ModelError, match=r"fr_core_news_sm.*not an installed"):
        nlp.resolve_model(f"en={installed},fr=fr_core_news_sm")
    with pytest.raises(ModelError, match="language=package"):
        nlp.resolve_model("en=")


def test_models_give_each_language_its_pipeline() -> None:
    models = nlp.Models("auto")
    english = models.get("en")
    assert english.entities and english.info.model in nlp.AUTO_MODELS
    assert models.get(None) is english  # undetected: the default (English) pipeline
    german = models.get("de")
    assert not german.entities and german.info.model == "blank:de"
    assert german.nlp.vocab["und"].is_stop
    assert models.get("de") is german  # loaded once
    # A language whose tokenizer needs another package (Japanese: sudachipy) falls back.
    assert models.get("ja").info.model in ("blank:ja", "blank:xx")


def test_blank_setting_never_loads_a_model() -> None:
    models = nlp.Models("blank:en")
    assert models.blank and not models.get("en").entities
    assert models.get("fr").info.model == "blank:fr"


def test_auto_finds_installed_models_per_language() -> None:
    assert nlp.installed_model("en") in nlp.AUTO_MODELS
    assert nlp.installed_model("de") is None  # no German pipeline is installed (none on PyPI)


# --- shapes that made spaCy's tokenizer quadratic (the bench checks their cost per char) -------


@pytest.mark.parametrize("shape", sorted(shapes.SHAPES))
def test_long_runs_reach_spacy_bounded_and_come_back_whole(
    blank: Language, shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = shapes.SHAPES[shape](3_000)
    seen: list[str] = []
    pipe = blank.pipe

    def spy(texts: Iterable[str], **kw: Any) -> Any:
        return pipe((seen.append(t) or t for t in texts), **kw)

    monkeypatch.setattr(blank, "pipe", spy)
    out = nlp.annotate(blank, [page])
    assert seen and max(len(run) for t in seen for run in t.split()) <= nlp.MAX_RUN_CHARS
    assert "".join("".join(seen).split()) == "".join(page.split())  # only spaces added
    assert out["stats"]["chars"] == len(page)


def test_bounded_cuts_long_runs_with_spaces_only() -> None:
    text = "see " + "=" * 250 + " and https://example.org/" + "a" * 120 + " end"
    bounded = nlp.bounded(text)
    assert bounded.count(" ") == text.count(" ") + 3 and " " * 2 not in bounded
    assert max(len(run) for run in bounded.split()) == nlp.MAX_RUN_CHARS
    assert bounded.replace(" ", "") == text.replace(" ", "")
    assert nlp.bounded("short words only") == "short words only"


def test_a_pdf_of_rule_lines_keeps_its_text(full: Language) -> None:
    from tests.pdfs import make_pdf
    from tori_ingest.pipeline import process
    from tori_ingest.pipeline.chunking import chunk_blocks

    rule = "=" * 400
    pdf = make_pdf([["Totals", rule, "Signature: " + "_" * 300]])
    text = pypdf_text(pdf)
    nlp.annotate(full, [text])  # a 400-character run costs spaCy no quadratic time
    chunks = chunk_blocks([{"type": "paragraph", "text": text, "page": 1}])
    assert rule in " ".join(c["text"] for c in chunks)
    assert process.clean.clean_pages([text])[0].text.count("=") == 400
