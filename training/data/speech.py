"""Items spoken by TTS: one voice per speaker, cached by content hash.

The evaluation speaks every item with the same four voices (`EVAL_VOICES`); training hears its
items with a seeded spread of voices and speeds (`VOICES`, `item_voices`), as alignment hears its
utterances. A file is written aside and renamed, so a crash never leaves half of one under its name.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from storage.audio import SAMPLE_RATE
from training.data.items import EvalItem

# One voice per speaker, in order of first appearance (a meeting with more speakers reuses them).
EVAL_VOICES = ("piper", "espeak:en-us", "espeak:en-gb", "espeak:en-us+f3")
TURN_GAP_S = 0.4
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


def _voice_of(item: EvalItem, voices: tuple[str, ...]) -> dict[str, str]:
    speakers = list(dict.fromkeys(s for s, _ in item.turns))
    return {s: voices[i % len(voices)] for i, s in enumerate(speakers)}


def speech_path(item: EvalItem, cache_dir: Path, voices: tuple[str, ...] = EVAL_VOICES, speed: float = 1.0,
                vary: bool = False) -> Path:
    """Where `speak` caches the item spoken with these voices and speed (a hash of all that decides it)."""
    settings = [item.turns, _voice_of(item, voices)] + ([speed, vary] if (speed, vary) != (1.0, False) else [])
    return cache_dir / f"{hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:24]}.wav"


def speak(item: EvalItem, cache_dir: Path, voices: tuple[str, ...] = EVAL_VOICES, speed: float = 1.0,
          vary: bool = False) -> Path:
    """The item's transcript as a 16 kHz WAV, one voice per speaker ("engine" or "engine:voice", in order
    of first appearance); made once, then cached. Training audio passes other voices, a speed and vary."""
    out = speech_path(item, cache_dir, voices, speed, vary)
    if out.exists():
        return out
    from storage.audio import read_samples  # PyAV and the TTS engines, only when there is something to speak
    from training.data.tts import synthesize

    voice_of = _voice_of(item, voices)
    cache_dir.mkdir(parents=True, exist_ok=True)
    pieces, gap = [], np.zeros(int(TURN_GAP_S * SAMPLE_RATE), dtype=np.float32)
    tmp = cache_dir / f"{out.stem}.{os.getpid()}.turn.wav"  # two processes may speak the same item at once
    for speaker, text in item.turns:
        engine, _, voice = voice_of[speaker].partition(":")
        synthesize(text, tmp, engine=engine, voice=voice or None, speed=speed, vary=vary)
        pieces += [read_samples(tmp), gap]
    tmp.unlink(missing_ok=True)
    _write_wav(out, np.concatenate(pieces))
    return out


def _write_wav(path: Path, samples: np.ndarray) -> None:
    partial = path.with_suffix(f".{os.getpid()}.partial.wav")  # its own per process, as the turns
    soundfile.write(partial, samples, SAMPLE_RATE, subtype="PCM_16")
    partial.rename(path)  # a crash never leaves a half-written file under the cached name


def eval_wavs(items: list[EvalItem], data_dir: Path) -> list[Path]:
    """Each item spoken as the evaluation speaks it (`EVAL_VOICES`), cached under <data dir>/eval-audio."""
    return [speak(item, data_dir / "eval-audio") for item in tqdm(items, desc="speaking transcripts (cached)", unit="item")]


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


