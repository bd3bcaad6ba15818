"""ASR word error rate on real recorded human speech (Debian's pocketsphinx-testdata)."""

from __future__ import annotations

import time
from pathlib import Path

import soundfile
from tqdm import tqdm

from storage.settings import Settings

POCKETSPHINX_DATA = Path("/usr/share/pocketsphinx/test/data")


def human_speech(root: Path = POCKETSPHINX_DATA) -> list[tuple[Path, str]]:
    """Real recorded speech with transcripts from Debian's pocketsphinx-testdata: (wav, text) pairs."""
    pairs = []
    for folder, transcripts in (("librivox", "transcription"), ("cards", "cards.transcription")):
        path = root / folder / transcripts
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing (apt-get install pocketsphinx-testdata)")
        for line in path.read_text().splitlines():
            text, _, file_id = line.rpartition("(")
            text = text.replace("<s>", "").replace("</s>", "").strip()
            pairs.append((root / folder / f"{file_id.strip(') ')}.wav", text))
    return pairs


def asr_word_error_rate(settings: Settings, pairs: list[tuple[Path, str]]) -> dict:
    """WER of the configured ASR model on (wav, reference) pairs, with Whisper's normalizer."""
    from models.serving import load_recognizer
    from storage.audio import read_samples
    from training.metrics import word_error_rate

    recognizer = load_recognizer(settings)
    hypotheses, seconds, audio_seconds = [], 0.0, 0.0
    for wav, _ in tqdm(pairs, desc=f"WER {settings.asr_model}", unit="clip"):
        duration = soundfile.info(wav).duration
        started = time.perf_counter()
        hypotheses.append(recognizer.transcribe([read_samples(wav)], duration).text)
        seconds, audio_seconds = seconds + time.perf_counter() - started, audio_seconds + duration
    return {"asr_model": settings.asr_model, "model_version": recognizer.source.version, "clips": len(pairs),
            "wer": word_error_rate([ref for _, ref in pairs], hypotheses), "rtf": seconds / audio_seconds}
