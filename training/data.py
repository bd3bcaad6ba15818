"""Synthetic speech for training: meeting transcripts spoken by several TTS voices, and their encoder frames.

Alignment (stage 0) needs (audio, text) pairs. The texts are sentences of the QMSum transcripts;
training takes them from the evaluation's dev part and testing from its held-out part, so the
student is tested on texts it never heard. The later stages hear whole training items (a meeting
span, one voice per speaker, as the evaluation speaks them) with the alignment's variety of voices
and speeds. Audio and encoder frames are cached on disk by content hash, so later epochs and later
runs never re-run TTS or the encoder.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from models.grounding import sentences
from training.evaluate import EvalItem, speak

# (engine, voice, speed): a spread of voices and speaking rates.
VOICES = (
    ("piper", None, 1.0), ("piper", None, 0.85), ("piper", None, 1.2),
    ("espeak", "en-us", 1.0), ("espeak", "en-gb", 0.9), ("espeak", "en-us+f3", 1.1),
    ("espeak", "en-gb-scotland", 1.0), ("espeak", "en-029", 0.95),
    ("flite", "slt", 1.0), ("flite", "rms", 0.9), ("flite", "awb", 1.05),
)
# The distinct voices of VOICES, for one voice per speaker of a spoken meeting.
SPEAKER_VOICES = tuple(dict.fromkeys(f"{engine}:{voice}" if voice else engine for engine, voice, _ in VOICES))
SPEEDS = (0.9, 1.0, 1.1)
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
    from training.tts import synthesize

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


def frames_dir(root: Path, tag: str) -> Path:
    """Where the frames of the files spoken under `root` are cached for the encoder named by `tag`."""
    return root / "frames" / hashlib.sha256(tag.encode()).hexdigest()[:12]


def encoder_frames(encoder, wavs: list[Path], root: Path, tag: str, device: str | torch.device = "cpu"
                   ) -> list[torch.Tensor]:
    """The frozen encoder's frames of each file (float16 on disk), computed once per encoder `tag`."""
    cache_dir = frames_dir(root, tag)
    cache_dir.mkdir(parents=True, exist_ok=True)
    frames = []
    for wav in tqdm(wavs, desc="encoding audio (cached)", unit="utt"):
        path = cache_dir / f"{wav.stem}.pt"
        if not path.exists():
            from storage.files import read_samples  # PyAV, only when there is audio to read

            with torch.no_grad():
                torch.save(encoder.encode(read_samples(wav)).half(), path)
        frames.append(torch.load(path, map_location=device).float())
    return frames


def data_hash(*parts: object) -> str:
    """A short digest of what a run trains on (item ids, voices, sizes): part of its identity."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def item_voices(item: EvalItem, seed: int = 0) -> tuple[tuple[str, ...], float]:
    """A seeded choice of voices (one per speaker, all different) and a speaking speed for one item."""
    rng = random.Random(f"{seed}:{item.id}")
    voices = list(SPEAKER_VOICES)
    rng.shuffle(voices)
    return tuple(voices), rng.choice(SPEEDS)


def spoken_wavs(items: list[EvalItem], root: Path, seed: int = 0) -> list[Path]:
    """Each item spoken (one voice per speaker, seeded voices and speed), cached under root/audio."""
    wavs = []
    for item in tqdm(items, desc="speaking training items (cached)", unit="item"):
        voices, speed = item_voices(item, seed)
        wavs.append(speak(item, root / "audio", voices, speed, vary=True))
    return wavs


def spoken_frames(items: list[EvalItem], encoder, root: Path, tag: str, seed: int = 0,
                  device: str | torch.device = "cpu") -> list[torch.Tensor]:
    """Each item spoken (see `spoken_wavs`) and its encoder frames."""
    return encoder_frames(encoder, spoken_wavs(items, root, seed), root, tag, device)


def unspoken_labels(item: EvalItem) -> set[str]:
    """The item's speaker labels that its spoken text never says (QMSum's "Project Manager", "PhD F")."""
    spoken = item.spoken_text.lower()
    return {s for s, _ in item.turns if s and s.lower() not in spoken}


def heard_answer(item: EvalItem) -> str:
    """The human answer with the speakers the recording never names ("Project Manager", "PhD F":
    QMSum's speaker labels, which TTS does not speak) turned into "a participant".

    Half of the training answers name a speaker by such a label. Taught them as they are, the
    student learns to write names it cannot hear, and the grounding check then drops those
    sentences; the student can only say that somebody said it."""
    text = item.reference
    for label in sorted(unspoken_labels(item), key=len, reverse=True):
        text = re.sub(rf"\b(?:[Tt]he )?{re.escape(label)}\b", "a participant", text)
    text = re.sub(r"\ba participant and a participant\b", "two participants", text)
    return re.sub(r"(^|[.!?]\s+)(a participant|two participants)", lambda m: m.group(1) + m.group(2).capitalize(),
                  text)


def answer_for(item: EvalItem, heard: bool) -> str:
    """What a stage teaches as the item's answer: the heard answer, or with `heard` off the human one as written."""
    return heard_answer(item) if heard else item.reference


def short_items(items: list[EvalItem], max_words: int, limit: int | None = None) -> list[EvalItem]:
    """Items whose transcript has at most `max_words` words (a CPU step costs in proportion to length)."""
    chosen = [i for i in items if len(i.spoken_text.split()) <= max_words]
    return chosen[:limit] if limit else chosen
