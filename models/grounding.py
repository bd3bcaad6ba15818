"""Is a summary supported by its source? Plain, deterministic text checks.

A small LLM sometimes invents numbers, dates and names. These checks find the numbers and proper
names in a summary that never occur in the source transcript (a number counts as said in digits or
in words), and the values the source took back ("Thursday, not Friday"), so the summarizer can drop
the sentences that carry them (and evaluation can count them).
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache, lru_cache

import pysbd

_WORD = re.compile(r"[$£€]?\d[\d,.:]*(?:st|nd|rd|th|%|k)?|[A-Za-z][A-Za-z'-]*")
# Function and discourse words: never content, never names (even capitalised at a sentence start).
STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being below
    between both but by can could did do does doing done down during each either else even ever every
    few finally first for from further had has have having he her here hers him his how however i i'd
    i'll i'm i've if in into is it it's its just let's like lot many may maybe me might more most much
    must my no nor not now of off oh ok okay on once one only or other our ours out over overall own
    please quite rather really right second so some such than thank thanks that that's the their them
    then there these they third this those though through to today too um uh under until up us very
    was we well were what when where which while who whom why will with would yeah yes yet you your
    also additionally in conclusion summary furthermore moreover meanwhile next lastly""".split()
)


@cache
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False)


def sentences(text: str) -> list[str]:
    """Sentences by a rule-based splitter that knows abbreviations ("Mr.", "Dr.", "p.m.", "e.g."):
    a split after "Mr." would make the grounding check drop half a sentence and keep "Mr."."""
    text = " ".join(text.split())
    return [s.strip() for s in _segmenter().segment(text) if s.strip()] if text else []


def _number(token: str) -> str | None:
    digits = re.sub(r"[^\d.]", "", token.replace(",", "")).strip(".")
    return digits or None


_SCALED = re.compile(r"(\d+(?:\.\d+)?)(?:\s*(k)|\s+(thousand)|\s+(million))\b", re.I)


def _unscaled(found: re.Match) -> str:
    return f"{round(float(found.group(1)) * (1_000_000 if found.group(4) else 1000))}"


def numbers(text: str) -> set[str]:
    """Numbers written with digits, normalised: "$40,000", "$40k" and "40 thousand" -> "40000", "15th" -> "15"."""
    text = _SCALED.sub(_unscaled, text)
    return {n for tok in _WORD.findall(text) if tok[0].isdigit() or tok[0] in "$£€" if (n := _number(tok))}


def names(text: str) -> set[str]:
    """Capitalised words other than function words, lower-cased: a cheap proper-name detector.

    At a sentence start capitals prove nothing, so there the word also counts, unless it is a
    function word; checked against the source that errs on the side of flagging.
    """
    found = set()
    for sentence in sentences(text):
        for word in (w for w in _WORD.findall(sentence) if w[0].isalpha()):
            if word[0].isupper() and word.lower() not in STOPWORDS:
                found.add(word.lower())
    return found


@cache
def _whisper_normalizer():
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer({})


def normalize(text: str) -> str:
    """Whisper's English normalizer: lower case, no punctuation, "ten" -> "10", "Mr." -> "mister"."""
    return _whisper_normalizer()(text)


@lru_cache(maxsize=8)
def source_numbers(source: str) -> set[str]:
    """The numbers a source states, in digits or in words: ASR writes "six thousand five hundred
    euros" as often as "6,500 euros", and a summary's "6,500" is supported by either."""
    return numbers(source) | numbers(normalize(source))


_TAKEN_BACK = re.compile(r"(?P<new>[^,.;!?]{1,40}),\s*not (?:the )?(?P<old>[^,.;!?]{1,40}?)(?=[,.;!?]|$)", re.I)
_WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())


def values(text: str) -> list[str]:
    """The values a text states, as they compare: numbers in digits ("the fifth" -> "5"), weekdays, names."""
    tokens = [t.strip("$£€") for t in normalize(text).split()]
    found = [n for t in tokens if t[:1].isdigit() if (n := _number(re.sub(r"(st|nd|rd|th|%)$", "", t)))]
    return found + [t for t in tokens if t in _WEEKDAYS] + sorted(names(text) - _WEEKDAYS)


@lru_cache(maxsize=8)
def taken_back(source: str) -> list[tuple[set[str], set[str]]]:
    """The corrections a source makes, as (new values, old values): "make that Thursday, not Friday",
    "six thousand five hundred, not seven thousand". An old value counts as taken back only where the
    source says it no more often than it takes it back: "by Friday" for another task keeps Friday."""
    said = Counter(values(source))
    found = [(set(values(m["new"])), set(values(m["old"]))) for m in _TAKEN_BACK.finditer(source)]
    times = Counter(v for _, old in found for v in old)
    return [(new, {v for v in old if said[v] - times[v] <= times[v]}) for new, old in found]


def correction_of(value: str, text: str) -> str:
    """What `text` says instead of `value` ("Actually, make that Thursday, not Friday." and "Friday" give
    "Actually, make that Thursday"), or "" when it takes nothing of `value` back."""
    wanted = set(values(value))
    for found in _TAKEN_BACK.finditer(text):
        if wanted and wanted <= set(values(found["old"])):
            return found["new"]
    return ""


def unsupported_terms(summary: str, source: str) -> list[str]:
    """Numbers and names of `summary` that the source never mentions, and values it states that the
    source took back (without the value that replaced them): a correction wins."""
    source_words = {w.lower() for w in _WORD.findall(source)}
    missing = sorted(numbers(summary) - source_numbers(source))
    missing += sorted(n for n in names(summary) if n not in source_words)
    if "not" in source.lower():
        stated = set(values(summary))
        missing += sorted({v for new, old in taken_back(source) if not _same_kind(new, old) & stated
                           for v in old & stated})
    return missing


def _same_kind(new: set[str], old: set[str]) -> set[str]:
    """The new values that replace the old: numbers for numbers, words for words ("June 20th, not the
    first": 20 replaces 1, and June, said with both, replaces nothing)."""
    return {v for v in new if v[0].isdigit() in {o[0].isdigit() for o in old}}


@cache
def _porter():
    from nltk.stem import porter

    return porter.PorterStemmer()


@cache
def stem(word: str) -> str:
    """Porter's stem of a lower-case word ("decided", "decides" -> "decid"); other tokens as they are.
    The one stemmer: grounding's support check and the hallucination metric match words the same way."""
    return _porter().stem(word) if word.isalpha() else word


def support(sentence: str, source: str) -> float:
    """The share of the sentence's content words whose stem the source has (1.0 without content words)."""
    content = {stem(w.lower()) for w in _WORD.findall(sentence) if w[0].isalpha() and w.lower() not in STOPWORDS}
    if not content:
        return 1.0
    have = {stem(w.lower()) for w in _WORD.findall(source) if w[0].isalpha()}
    return len(content & have) / len(content)


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def drop_repeats(text: str, overlap: float = 0.8) -> tuple[str, list[str]]:
    """The text without sentences that say again what an earlier one said: a sentence goes when at
    least `overlap` of its distinct words stand in one earlier kept sentence (so the same sentence
    twice, or again with one word added, is said once). Returns (kept text, repeated sentences)."""
    kept, seen, repeats = [], [], []
    for sentence in sentences(text):
        words = set(_words(sentence))
        if words and any(len(words & before) >= overlap * len(words) for before in seen):
            repeats.append(sentence)
            continue
        kept.append(sentence)
        seen.append(words)
    return " ".join(kept), repeats


def keep_supported(summary: str, source: str, min_support: float = 0.0) -> tuple[str, list[str]]:
    """Drops summary sentences that carry unsupported terms, or (with `min_support`) whose content
    words the source mostly lacks: a summary of summaries can drift into text about nothing that was
    said. Returns (kept text, dropped sentences)."""
    kept, dropped = [], []
    for sentence in sentences(summary):
        off_topic = min_support and support(sentence, source) < min_support
        (dropped if unsupported_terms(sentence, source) or off_topic else kept).append(sentence)
    return " ".join(kept), dropped
