"""Evaluation metrics, each a plain deterministic function of text: ROUGE, a hallucination proxy, WER.

No metric here needs a model or the network, so every number in a benchmark can be recomputed
from the stored summaries alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from models.grounding import STOPWORDS, names, normalize, stem
from models.notes import without_headings

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
# Words a summary uses to talk about a discussion rather than its content; the transcript need
# not contain them ("The team discussed ...", "She mentioned ...").
META_WORDS = frozenset(
    """agreed agreement argued asked believed concerned concluded conclusion decided decision described
    discussed emphasized explained expressed felt firstly gave group highlighted idea important
    included indicated mentioned meeting need noted point proposed raised recommended said say
    secondly stated suggested summarized talked team thought took wanted""".split()
)


@cache
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def rouge(summary: str, references: list[str]) -> dict[str, float]:
    """ROUGE-1/2/L F1 against the best-matching reference, per metric (as QMSum reports it)."""
    scores = [_rouge_scorer().score(ref, summary) for ref in references]
    return {t: max(s[t].fmeasure for s in scores) for t in ROUGE_TYPES}


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER after normalizing both sides (errors summed over all pairs / reference words)."""
    import jiwer

    pairs = [(normalize(r), normalize(h)) for r, h in zip(references, hypotheses, strict=True)]
    pairs = [(r, h) for r, h in pairs if r]
    return jiwer.wer([r for r, _ in pairs], [h for _, h in pairs])


def _units(text: str) -> tuple[set[str], set[str]]:
    """(numbers, content-word stems) of a text, after Whisper normalization (so "forty" is "40"); of
    notes, what they state (not their headings)."""
    tokens = re.findall(r"[a-z][a-z']*|\d[\d.]*", normalize(without_headings(text)))
    numbers = {t.rstrip(".") for t in tokens if t[0].isdigit()}
    words = {stem(t) for t in tokens if t[0].isalpha() and len(t) > 2 and t not in STOPWORDS}
    words -= {stem(w) for w in META_WORDS}
    return numbers, words


def values(text: str) -> set[str]:
    """The values a text states: its numbers and dates (after Whisper's normalizer, so "forty" is "40")
    and its names, stemmed. What a DPO pair compares: which sample carries more of the transcript's."""
    numbers, _ = _units(text)
    return numbers | {stem(n) for n in names(without_headings(text))}


@dataclass(frozen=True)
class Hallucination:
    rate: float  # unsupported units / all units of the summary; 0.0 for an empty summary
    unsupported: tuple[str, ...]  # what was not found, names first: the evidence behind the rate
    units: int


def hallucination(summary: str, source: str) -> Hallucination:
    """The share of a summary's numbers and content words (names included) that the source lacks.

    Both texts are normalized the same way (numbers written out become digits, words are stemmed,
    function words and the words summaries use to report a discussion, META_WORDS, are ignored),
    and each distinct number or word stem counts once. A unit is
    supported when the source has it too. Paraphrase with new words counts as unsupported, so the
    rate is a proxy with a floor above zero even for honest summaries; compare systems with it,
    not against zero.
    """
    numbers, words = _units(summary)
    source_numbers, source_words = _units(source)
    missing_numbers = sorted(numbers - source_numbers)
    missing_words = words - source_words
    name_stems = {stem(n) for n in names(summary)} & missing_words
    unsupported = (*sorted(name_stems), *missing_numbers, *sorted(missing_words - name_stems))
    total = len(numbers) + len(words)
    return Hallucination(len(unsupported) / total if total else 0.0, unsupported, total)
