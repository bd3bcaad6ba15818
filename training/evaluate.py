"""The evaluation runner: human-referenced items, spoken by TTS, summarized by each system, scored.

Items come from ../shared/data/qmsum_dev.jsonl (a meeting span, a query, a human answer). Each
transcript is spoken once, one voice per speaker, and cached by content hash. Every system gets
the query as a user would type it into the focus field, and decodes greedily, so a rerun gives
the same numbers. Each system runs in a fresh process, so its peak memory is its own.
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from storage.settings import Settings
from training.data.items import EvalItem
from training.judge import Judge, load_judge
from training.metrics import hallucination, rouge

# The text systems the runner knows besides `lead` and `student`: the cascade, and its LM reading the human transcript.
LM_SYSTEMS = ("cascade", "teacher-on-reference")


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
    file by an earlier system, so a stage table does not run Whisper once per student. The words are
    stored too: the speaker labels split segments at them, so a reused transcript reads as a fresh one
    (a file stored without them is transcribed again)."""
    from models.asr import Segment, Transcript, Word

    path = wav.with_suffix(f".{recognizer.source.version.replace(' ', '_').replace('/', '_')}.json")
    raw = json.loads(path.read_text()) if reuse and path.exists() else {}
    if "words" in raw:
        return Transcript([Segment(**s) for s in raw["segments"]], raw["language"], raw["language_probability"],
                          duration, raw["model_version"], [[Word(**w) for w in ws] for ws in raw["words"]])
    transcript = recognizer.transcribe([samples], duration)
    path.write_text(json.dumps({"segments": transcript.segment_dicts(), "language": transcript.language,
                                "language_probability": transcript.language_probability,
                                "model_version": transcript.model_version,
                                "words": [[asdict(w) for w in ws] for ws in transcript.words]}))
    return transcript


def hear(recognizer, diarizer, wav: Path):
    """A spoken meeting as served: its samples, and its ASR transcript (stored beside the file and
    reused) with the diarizer's speaker labels."""
    from models.diarize import label_speakers
    from storage.audio import SAMPLE_RATE, read_samples

    samples = read_samples(wav)
    transcript = cached_transcript(recognizer, samples, len(samples) / SAMPLE_RATE, wav, reuse=True)
    return samples, label_speakers(transcript, diarizer.turns(samples))


def stated(summary) -> str:
    """What a summary states: its text, then its notes' decisions and action items (owner, task, due date).
    Key points are transcript quotes and are left out: quoting the meeting is the lead baseline's job."""
    notes = summary.notes or {}
    items = [d["text"] for d in notes.get("decisions", [])]
    items += [f"{a['owner']}: {a['text'].rstrip('.')}" + (f", due {a['due']}." if a["due"] else ".")
              for a in notes.get("action_items", [])]
    return "\n".join([summary.text, *items])


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
    from storage.audio import read_samples

    name, _, variant = system.partition(":")
    if name not in (*LM_SYSTEMS, "student", "lead"):
        raise ValueError(f"unknown system {system!r}; choose from lead[:N], {', '.join(LM_SYSTEMS)}[:raw|:TEACHER] "
                         "or student[:VERSION]")
    summarizer, version = None, f"first {variant or 70} words"
    if name == "student":
        where = Path(variant) if variant and Path(variant).is_dir() else None
        if where:
            settings = settings.model_copy(update={"student": str(where)})
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
