"""Keyphrases without a tagger: stop-word-delimited phrases (RAKE candidates), ranked so that
repeated multi-word terms come first and lone lowercase words (mostly verbs and adjectives:
"written", "gives") last.

Measured on the labelled set of `tori-ingest bench --quality` (12 generated documents in
en/de/fr, 48 pages, whose headings name their topics: labels = the topics; k = a document's
number of labels) with the time added to the NER + sentencizer pipeline (10 ms/page):

| method                                 | labels in top k | in top 10 | one-word share | ms/page |
|----------------------------------------|-----------------|-----------|----------------|---------|
| phrases ranked by count (before)       | 0.889           | 0.944     | 0.53           | 0.19    |
| RAKE degree/frequency scores           | 0.000           | -         | 0.00           | 0.26    |
| noun phrases from the tagger (en only) | 0.944           | 0.944     | 0.30           | +5.8    |
| multi-word bonus, capitalisation       | 0.889           | 0.917     | 0.17           | 0.21    |
| the same + "of"/"de"/"d'" bridges      | 0.944           | 0.972     | 0.16           | 0.46    |

The last is used: 0.3 ms/page more, about 1 % of the pipeline's pages/s. RAKE's scores favour
long accidental runs ("critiques jugeaient stockage thermique trop coûteux"); the tagger needs
the shared tok2vec that the small models' NER does not use: +56 % NLP time, a third fewer
pages/s, for one language. Capitalisation is the tagger-free noun signal: names everywhere,
every noun in German.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from spacy.tokens import Doc, Span

MAX_TOKENS = 4  # longer runs are lists, tables or whole clauses, not phrases
MULTI_WORD_BONUS = 0.25  # per extra word
ONCE = 0.5  # a multi-word phrase seen once is likely accidental
LOWERCASE_WORD = 0.25  # a lone word that is not mostly capitalised mid-sentence
CAPITALISED_SHARE = 0.6
# Short words that may sit inside a term: "bill of rights", "réseaux de neurones".
CONNECTORS = frozenset("of de d' d\u2019 du des der von del di della".split())
_WS = re.compile(r"\s+")
_SENTENCE_PUNCT = frozenset(".!?:;•")


def _runs(doc: Doc) -> list[tuple[int, int]]:
    """Token ranges of content words between stop words and punctuation (never across an
    entity's edge: a name is a phrase of its own)."""
    entity_of = {t.i: k for k, ent in enumerate(doc.ents) for t in ent}
    runs: list[tuple[int, int]] = []
    start: int | None = None
    group: int | None = None
    for token in doc:
        here = entity_of.get(token.i)
        content = token.is_alpha and not token.is_stop and len(token) > 1
        if content and start is not None and here == group:
            continue
        if start is not None:
            runs.append((start, token.i))
            start = None
        if content:
            start, group = token.i, here
    if start is not None:
        runs.append((start, len(doc)))
    return runs


def candidates(doc: Doc) -> Iterator[Span]:
    """Runs of 1-4 content words, and two runs joined by one connector ("of", "de") when
    neither is a name."""
    runs = _runs(doc)
    for k, (start, end) in enumerate(runs):
        length = end - start
        if length <= MAX_TOKENS and (length > 1 or len(doc[start]) > 2):
            yield doc[start:end]
        if k + 1 < len(runs):
            after, last = runs[k + 1]
            joinable = after == end + 1 and doc[end].lower_ in CONNECTORS
            # A name stays a phrase of its own: no "réseau électrique de Lyon".
            named = doc[end - 1].ent_type_ or doc[after].ent_type_
            if joinable and last - start <= MAX_TOKENS and not named:
                yield doc[start:last]


def _capitalised(token: Any) -> bool:
    """Upper-case initial where a sentence does not force it: a name, or a German noun."""
    if not token.is_title or token.i == 0 or token.is_sent_start:
        return False
    return token.doc[token.i - 1].text not in _SENTENCE_PUNCT


class Keyphrases:
    """Counts candidates over a document's segments, then ranks them."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.capitalised: Counter[str] = Counter()

    def add(self, doc: Doc) -> None:
        for span in candidates(doc):
            text = _WS.sub(" ", span.text.lower())
            self.counts[text] += 1
            if len(span) == 1 and _capitalised(span[0]):
                self.capitalised[text] += 1

    def add_counts(self, other: Keyphrases) -> None:
        """Another part of the same document (counts add up; ranking comes after)."""
        self.counts.update(other.counts)
        self.capitalised.update(other.capitalised)

    def score(self, text: str, count: int) -> float:
        words = text.count(" ") + 1
        if words > 1:
            return count * (1 + MULTI_WORD_BONUS * (words - 1)) * (1 if count > 1 else ONCE)
        if self.capitalised[text] >= CAPITALISED_SHARE * count:
            return float(count)
        return count * LOWERCASE_WORD

    def ranked(self, limit: int) -> list[dict[str, Any]]:
        scored = sorted(self.counts.items(), key=lambda kv: (-self.score(*kv), -kv[1], kv[0]))
        return [{"text": text, "count": count} for text, count in scored[:limit]]
