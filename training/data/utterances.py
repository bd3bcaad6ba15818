"""Alignment's texts: short stretches of the training meetings' speech, each spoken by a seeded voice.

Alignment (stage 0) needs (audio, text) pairs. The texts are sentences of the QMSum transcripts;
training takes them from the dev part of the split and testing from its held-out part, so the
student is tested on texts it never heard.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from models.grounding import sentences
from training.data.items import EvalItem
from training.data.speech import VOICES

_FILLERS = re.compile(r"\b(?:um+|uh+|hmm+|mm-hmm|erm|uh-huh)\b,?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Utterance:
    text: str
    engine: str
    voice: str | None
    speed: float

    @property
    def key(self) -> str:
        return hashlib.sha256(repr((self.text, self.engine, self.voice, self.speed)).encode()).hexdigest()[:24]


def _clean(sentence: str) -> str:
    """The sentence without fillers, starting with a capital."""
    text = " ".join(_FILLERS.sub("", sentence).split())
    return text[:1].upper() + text[1:]


def _speakable(text: str) -> bool:
    return sum(c.isalpha() for c in text) > 0.7 * len(text)


def clean_sentences(items: list[EvalItem], min_words: int = 6, max_words: int = 20) -> list[str]:
    """Distinct sentences of the items' speech, without fillers, of a speakable length (the test texts)."""
    seen: dict[str, None] = {}
    for item in items:
        for sentence in sentences(item.spoken_text):
            text = _clean(sentence)
            if min_words <= len(text.split()) <= max_words and _speakable(text):
                seen.setdefault(text, None)
    return list(seen)


def passages(items: list[EvalItem], min_words: int = 6, max_words: int = 20, exclude: set[str] = frozenset()
             ) -> list[str]:
    """Distinct stretches of one speaker's speech, without fillers, of a speakable length (the training texts).

    Unlike `clean_sentences`, nothing said is wasted: short sentences ("Yeah. Okay.") join their
    neighbours and long ones are cut in even pieces, so the training texts hold about three times
    the words of whole sentences alone, and the utterances repeat no text. Sentences in `exclude`
    (lower-cased; the test texts) are left out, so no test sentence is heard in training."""
    seen: dict[str, None] = {}

    def flush(words: list[str]) -> None:
        text = " ".join(words)
        if len(words) >= min_words and _speakable(text):
            seen.setdefault(text[0].upper() + text[1:], None)
        words.clear()

    for item in items:
        for _, turn in item.turns:
            chunk: list[str] = []
            for sentence in sentences(turn):
                words = _clean(sentence).split()
                if not words or " ".join(words).lower() in exclude:
                    flush(chunk)
                    continue
                pieces = math.ceil(len(words) / max_words)
                size = math.ceil(len(words) / pieces)
                for piece in (words[i : i + size] for i in range(0, len(words), size)):
                    if len(chunk) + len(piece) > max_words:
                        flush(chunk)
                    chunk += piece
            flush(chunk)
    return list(seen)


def utterances(texts: list[str], n: int, seed: int = 0) -> list[Utterance]:
    """`n` utterances: every text once before any repeats, each time with another voice and speed."""
    rng = random.Random(seed)
    order = texts[:]
    rng.shuffle(order)
    return [Utterance(order[i % len(order)], *VOICES[rng.randrange(len(VOICES))]) for i in range(n)]


def speak_all(batch: list[Utterance], cache_dir: Path) -> list[Path]:
    from training.data.tts import synthesize

    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for u in tqdm(batch, desc="speaking (cached)", unit="utt"):
        path = cache_dir / f"{u.key}.wav"
        if not path.exists():
            partial = cache_dir / f"{u.key}.partial.wav"
            synthesize(u.text, partial, engine=u.engine, speed=u.speed, vary=True, voice=u.voice)
            partial.rename(path)
        paths.append(path)
    return paths


