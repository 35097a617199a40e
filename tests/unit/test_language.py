"""Language detection: pages of ≥ 50 words in each benchmark language, undetectable text, and
the document's language by vote."""

import random

import pytest

from tori_ingest.bench.quality_docs import TOPICS, prose
from tori_ingest.pipeline.language import Detector, name


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


@pytest.mark.parametrize("lang", ["en", "de", "fr"])
def test_pages_of_fifty_words_are_recognised(detector: Detector, lang: str) -> None:
    rng = random.Random(3)
    for topics in TOPICS[lang]:
        text = " ".join(prose(rng, lang, topics, 50))
        assert detector.page(text)[0] == lang, text


def test_nothing_to_tell_is_none(detector: Detector) -> None:
    assert detector.page("")[0] is None
    assert detector.page("12 34 - 5 -")[0] is None
    assert detector.page("Slide 3")[0] is None  # too little to be sure
    assert detector.document(["", "7", "iv"]) is None
    assert detector.document(["clownfish"]) is None  # one word is not a language


def test_document_language_is_the_majority(detector: Detector) -> None:
    rng = random.Random(4)
    german = [" ".join(prose(rng, "de", TOPICS["de"][0], 120)) for _ in range(3)]
    english = " ".join(prose(rng, "en", TOPICS["en"][0], 60))
    assert detector.document([*german, english, ""]) == "de"
    assert detector.document(["Background"] * 6) == "en"


def test_language_names_for_warnings() -> None:
    assert name("de") == "German (de)"
    assert name("xh") == "xh"
