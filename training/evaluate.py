"""The evaluation runner: human-referenced items, spoken by TTS, summarized by each system, scored.

Items come from ../shared/data/qmsum_dev.jsonl (a meeting span, a query, a human answer). Each
transcript is spoken once, one voice per speaker, and cached by content hash. Every system gets
the query as a user would type it into the focus field, and decodes greedily, so a rerun gives
the same numbers. Each system runs in a fresh process, so its peak memory is its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import random
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from storage.config import Settings
from training.judge import Judge, load_judge
from training.metrics import hallucination, rouge

# The development data beside the repository (../shared/data; see its README for the licence).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
QMSUM = SHARED_DATA / "qmsum_dev.jsonl"
QMSUM_POOL = SHARED_DATA / "qmsum_train_pool.jsonl"  # training only: more items of the same meetings and others
SYSTEMS = ("cascade", "teacher-on-reference")
# One voice per speaker, in order of first appearance (a meeting with more speakers reuses them).
VOICES = ("piper", "espeak:en-us", "espeak:en-gb", "espeak:en-us+f3")
SAMPLE_RATE = 16_000
TURN_GAP_S = 0.4


@dataclass(frozen=True)
class EvalItem:
    id: str
    query: str
    transcript: str  # "Speaker: text" lines
    reference: str  # the human-written answer

    @property
    def turns(self) -> list[tuple[str, str]]:
        out = []
        for line in self.transcript.splitlines():
            speaker, sep, text = line.partition(": ")
            if line.strip() == "[...]" or not text.strip():
                continue
            out.append((speaker.strip(), text.strip()) if sep else ("", line.strip()))
        return out

    @property
    def spoken_text(self) -> str:
        """What the recording says: the transcript without speaker labels."""
        return " ".join(text for _, text in self.turns)

    @property
    def meeting(self) -> str:
        """The meeting an item is asked about ("qmsum-train-Bed004-q05" -> "Bed004"); other ids stand alone."""
        parts = self.id.split("-")
        return parts[2] if len(parts) == 4 and parts[0] == "qmsum" else self.id

    @property
    def is_summarize_query(self) -> bool:
        return self.query.lower().startswith("summarize")


def load_items(path: str | Path) -> list[EvalItem]:
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [EvalItem(r["id"], r["query"], r["transcript"], r["summary"]) for r in rows]


def held_out_meeting(meeting: str, seed: int = 0, held_out_share: float = 0.5) -> bool:
    h = int(hashlib.sha256(f"{seed}:{meeting}".encode()).hexdigest()[:8], 16) / 16**8
    return h < held_out_share


def split(items: list[EvalItem], seed: int = 0, held_out_share: float = 0.5) -> dict[str, list[EvalItem]]:
    """A fixed dev / held-out split by meeting: each item's side depends only on its meeting and the seed.

    QMSum asks several questions about each meeting and their spans overlap, so a split by item
    would let training hear parts of held-out spans. A meeting with a held-out item gives no
    training data at all."""
    def side(item: EvalItem) -> str:
        return "held_out" if held_out_meeting(item.meeting, seed, held_out_share) else "dev"

    parts: dict[str, list[EvalItem]] = {"dev": [], "held_out": []}
    for item in sorted(items, key=lambda i: i.id):
        parts[side(item)].append(item)
    for part in parts.values():  # a seeded order, so "the first 50" is a fair sample
        random.Random(seed).shuffle(part)
    return parts


def training_items(seed: int = 0, root: Path = SHARED_DATA) -> list[EvalItem]:
    """Every labelled item of a meeting on the training side of the split: the dev part plus the pool's."""
    data, pool = root / QMSUM.name, root / QMSUM_POOL.name
    extra = [i for i in load_items(pool) if not held_out_meeting(i.meeting, seed)] if pool.exists() else []
    return split(load_items(data), seed)["dev"] + extra


def _voice_of(item: EvalItem, voices: tuple[str, ...]) -> dict[str, str]:
    speakers = list(dict.fromkeys(s for s, _ in item.turns))
    return {s: voices[i % len(voices)] for i, s in enumerate(speakers)}


def speech_path(item: EvalItem, cache_dir: Path, voices: tuple[str, ...] = VOICES, speed: float = 1.0,
                vary: bool = False) -> Path:
    """Where `speak` caches the item spoken with these voices and speed (a hash of all that decides it)."""
    settings = [item.turns, _voice_of(item, voices)] + ([speed, vary] if (speed, vary) != (1.0, False) else [])
    return cache_dir / f"{hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:24]}.wav"


def speak(item: EvalItem, cache_dir: Path, voices: tuple[str, ...] = VOICES, speed: float = 1.0,
          vary: bool = False) -> Path:
    """The item's transcript as a 16 kHz WAV, one voice per speaker ("engine" or "engine:voice", in order
    of first appearance); made once, then cached. Training audio passes other voices, a speed and vary."""
    out = speech_path(item, cache_dir, voices, speed, vary)
    if out.exists():
        return out
    from storage.files import read_samples  # PyAV and the TTS engines, only when there is something to speak
    from training.tts import synthesize

    voice_of = _voice_of(item, voices)
    cache_dir.mkdir(parents=True, exist_ok=True)
    pieces, gap = [], np.zeros(int(TURN_GAP_S * SAMPLE_RATE), dtype=np.float32)
    tmp = cache_dir / f"{out.stem}.turn.wav"
    for speaker, text in item.turns:
        engine, _, voice = voice_of[speaker].partition(":")
        synthesize(text, tmp, engine=engine, voice=voice or None, speed=speed, vary=vary)
        pieces += [read_samples(tmp), gap]
    tmp.unlink(missing_ok=True)
    _write_wav(out, np.concatenate(pieces))
    return out


def _write_wav(path: Path, samples: np.ndarray) -> None:
    partial = path.with_suffix(".partial.wav")
    soundfile.write(partial, samples, SAMPLE_RATE, subtype="PCM_16")
    partial.rename(path)  # a crash never leaves a half-written file under the cached name


@dataclass
class ItemResult:
    id: str
    summarize_query: bool
    summary: str
    rouge1: float
    rouge2: float
    rougeL: float
    hallucination: float
    unsupported: list[str]
    words: int
    compression: float  # summary words / transcript words
    seconds: float
    audio_seconds: float
    judge: float | None = None  # 0-10, when a judge is configured
    raw_rougeL: float | None = None  # of what the model generated, before the grounding check dropped sentences
    raw_hallucination: float | None = None


@dataclass
class SystemResult:
    system: str
    items: list[ItemResult] = field(default_factory=list)
    peak_mb: float = 0.0
    model_version: str = ""

    def row(self, summarize_only: bool = False) -> dict:
        items = [i for i in self.items if i.summarize_query or not summarize_only]
        mean = lambda name: float(np.mean([getattr(i, name) for i in items])) if items else 0.0  # noqa: E731
        audio_min = sum(i.audio_seconds for i in items) / 60
        judged = [i.judge for i in items if i.judge is not None]
        raw = [i for i in items if i.raw_rougeL is not None]
        raw_means = {"raw_rougeL": float(np.mean([i.raw_rougeL for i in raw])),
                     "raw_hallucination": float(np.mean([i.raw_hallucination for i in raw]))} if raw else {}
        return ({"judge": float(np.mean(judged))} if judged else {}) | raw_means | {
            "system": self.system, "model_version": self.model_version, "items": len(items),
            "rouge1": mean("rouge1"), "rouge2": mean("rouge2"), "rougeL": mean("rougeL"),
            "hallucination": mean("hallucination"), "words": mean("words"), "compression": mean("compression"),
            "s_per_audio_min": sum(i.seconds for i in items) / audio_min if audio_min else 0.0,
            "rtf": sum(i.seconds for i in items) / (audio_min * 60) if audio_min else 0.0,
            "peak_mb": self.peak_mb,
        }


def score(item: EvalItem, summary: str, seconds: float, audio_seconds: float, judge: Judge | None = None,
          raw: str | None = None) -> ItemResult:
    r = rouge(summary, [item.reference])
    h = hallucination(summary, item.spoken_text)
    words = len(summary.split())
    raw_scores = (rouge(raw, [item.reference])["rougeL"], hallucination(raw, item.spoken_text).rate) if raw else (None,
                                                                                                                   None)
    return ItemResult(item.id, item.is_summarize_query, summary, r["rouge1"], r["rouge2"], r["rougeL"], h.rate,
                      list(h.unsupported), words, words / max(1, len(item.spoken_text.split())), seconds, audio_seconds,
                      judge.score(item.query, item.transcript, summary) if judge else None, *raw_scores)


def cached_transcript(recognizer, samples: np.ndarray, duration: float, wav: Path, reuse: bool):
    """The ASR transcript of an evaluation file. A system timed with its ASR (the cascade) transcribes;
    one that needs the transcript only for grounding (the student) reuses the one stored beside the
    file by an earlier system, so a stage table does not run Whisper once per student."""
    from models.asr import Segment, Transcript

    path = wav.with_suffix(f".{recognizer.source.version.replace(' ', '_').replace('/', '_')}.json")
    if reuse and path.exists():
        raw = json.loads(path.read_text())
        return Transcript([Segment(**s) for s in raw["segments"]], raw["language"], raw["language_probability"],
                          duration, raw["model_version"])
    transcript = recognizer.transcribe([samples], duration)
    path.write_text(json.dumps({"segments": transcript.segment_dicts(), "language": transcript.language,
                                "language_probability": transcript.language_probability,
                                "model_version": transcript.model_version}))
    return transcript


def lead(item: EvalItem, words: int) -> str:
    """The trivial baseline: the first `words` words the meeting says (its reference transcript)."""
    return " ".join(item.spoken_text.split()[:words])


def summarize_items(settings: Settings, system: str, items: list[EvalItem], audio: list[Path],
                    progress=None) -> SystemResult:
    """Runs one system over the items in this process (see `evaluate` for the fresh process).

    Systems: `lead[:N]` (the transcript's first N words), `cascade[:raw|:TEACHER]` (audio -> Whisper ->
    the LM as served, the raw LM, or a teacher version), `teacher-on-reference[:raw|:TEACHER]` (the
    same reading the human transcript) and `student[:VERSION|:DIR]`. The student's time is its summary
    alone (it needs no transcript; the ASR transcript is made before, only for grounding and key points)."""
    from models.asr import Segment, Transcript
    from models.llm import Decoding
    from models.serving import load_recognizer, load_student_summarizer, load_summarizer
    from storage.files import read_samples

    name, _, variant = system.partition(":")
    if name not in (*SYSTEMS, "student", "lead"):
        raise ValueError(f"unknown system {system!r}; choose from lead[:N], {', '.join(SYSTEMS)}[:raw|:TEACHER] "
                         "or student[:VERSION]")
    summarizer, version = None, f"first {variant or 70} words"
    if name == "student":
        where = Path(variant) if variant and Path(variant).is_dir() else None
        if where:
            settings = dataclasses.replace(settings, student=str(where))
        summarizer = load_student_summarizer(settings, None if where else variant or None)
        version = summarizer.version
    elif name != "lead":
        summarizer = load_summarizer(settings, variant or "served")
        version = summarizer.llm.version
    recognizer = load_recognizer(settings) if name in ("cascade", "student") else None
    decoding = Decoding(max_new_tokens=settings.summary_max_tokens)
    judge = load_judge(settings.judge, settings.models_dir, settings.device) if settings.judge else None
    result = SystemResult(system, model_version=version)
    for done, (item, wav) in enumerate(tqdm(list(zip(items, audio, strict=True)), desc=system, unit="item")):
        if progress:
            progress(done / len(items), f"{system}: item {done + 1} of {len(items)}")
        duration = soundfile.info(wav).duration  # our own WAV files: the header says it
        if name == "lead":
            result.items.append(score(item, lead(item, int(variant or 70)), 0.0, duration, judge))
            continue
        started = time.perf_counter()
        if recognizer is not None:
            samples = read_samples(wav)
            transcript = cached_transcript(recognizer, samples, duration, wav, name == "student")
        else:
            segments = [Segment(0.0, 0.0, text) for _, text in item.turns]
            transcript = Transcript(segments, "en", 1.0, duration, "reference")
        if name == "student":
            started = time.perf_counter()
            summary = summarizer.summarize(samples, transcript, item.query, decoding)
        else:
            summary = summarizer.summarize(transcript, item.query, decoding)
        seconds = time.perf_counter() - started
        result.items.append(score(item, summary.text, seconds, duration, judge, summary.raw))
    result.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _child(settings, system, items, audio, queue) -> None:
    try:
        queue.put(summarize_items(settings, system, items, audio))
    except BaseException as exc:  # the parent re-raises it with the message intact
        queue.put(exc)


def evaluate(settings: Settings, system: str, items: list[EvalItem], audio: list[Path]) -> SystemResult:
    """Runs one system in a fresh process, so that the peak memory measured is the system's own."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(settings, system, items, audio, queue))
    proc.start()
    out = queue.get()
    proc.join()
    if isinstance(out, BaseException):
        raise out
    return out


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
    from storage.files import read_samples
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
