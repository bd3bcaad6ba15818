"""The one path from a recording to a stored transcript and summary.

The CLI, the web page and the workers all call these functions and add nothing of their own.
Order matters for "bad input loses nothing": the audio is validated before anything is written,
the recording and its transcript are committed together once ASR succeeded, and the summary is
committed once it exists. A failure at any step leaves only complete rows behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select

from app.config import Settings
from models.asr import Segment, SpeechRecognizer, Transcript
from models.llm import ChatLM, Decoding
from models.sources import ModelSource, resolve_asr, resolve_llm
from models.summarizer import CascadeSummarizer, Summary
from storage import schema
from storage.db import session_scope, upgrade
from storage.files import decode, inspect_audio, store_audio

Progress = Callable[[float, str], None]


@dataclass
class Result:
    recording_id: int
    transcript_id: int
    transcript: Transcript
    summary_id: int | None = None
    summary: Summary | None = None

    def as_dict(self) -> dict:
        out = {
            "recording_id": self.recording_id,
            "transcript_id": self.transcript_id,
            "transcript": {
                "language": self.transcript.language,
                "duration_s": self.transcript.duration_s,
                "model_version": self.transcript.model_version,
                "segments": self.transcript.segment_dicts(),
                "text": self.transcript.text,
            },
        }
        if self.summary:
            s = self.summary
            out |= {"summary_id": self.summary_id, "summary": s.text, "key_points": s.key_points, "query": s.query,
                    "system": s.system, "model_version": s.model_version, "latency_s": s.latency_s,
                    "dropped_sentences": s.dropped}
        return out


def _scaled(progress: Progress | None, start: float, end: float) -> Progress | None:
    if progress is None:
        return None
    return lambda fraction, message: progress(start + (end - start) * fraction, message)


@lru_cache(maxsize=4)
def ensure_database(url: str) -> None:
    """Creates or upgrades the schema, once per process and URL."""
    upgrade(url)


@lru_cache(maxsize=2)
def _recognizer(source: ModelSource, device: str) -> SpeechRecognizer:
    return SpeechRecognizer(source, device=device)


@lru_cache(maxsize=2)
def _chat_lm(source: ModelSource, device: str) -> ChatLM:
    return ChatLM.load(source, device=device)


def load_recognizer(settings: Settings) -> SpeechRecognizer:
    return _recognizer(resolve_asr(settings.asr_model, settings.models_dir), settings.device)


def load_summarizer(settings: Settings) -> CascadeSummarizer:
    llm = _chat_lm(resolve_llm(settings.llm_model, settings.models_dir), settings.device)
    return CascadeSummarizer(llm, chunk_tokens=settings.chunk_tokens, n_key_points=settings.key_points)


def prepare_models(settings: Settings) -> list[ModelSource]:
    """Builds the offline model cache (a no-op once built) and checks that each model loads."""
    sources = [resolve_asr(settings.asr_model, settings.models_dir), resolve_llm(settings.llm_model, settings.models_dir)]
    load_recognizer(settings)
    load_summarizer(settings)
    return sources


def _find_recording(session, sha256: str, uploader: str) -> schema.Recording | None:
    return session.scalar(
        select(schema.Recording).where(schema.Recording.sha256 == sha256, schema.Recording.uploader == uploader)
    )


def transcribe_file(
    settings: Settings,
    path: str | Path,
    original_name: str | None = None,
    uploader: str = "cli",
    progress: Progress | None = None,
) -> Result:
    """Validates, transcribes and stores a recording; reuses a stored transcript of the same file."""
    info = inspect_audio(path, settings.max_upload_bytes, settings.max_duration_s)
    ensure_database(settings.db_url)
    recognizer = load_recognizer(settings)
    model_id = recognizer.source.version
    with session_scope(settings.db_url) as session:
        recording = _find_recording(session, info.sha256, uploader)
        cached = recording and session.scalar(
            select(schema.Transcript).where(
                schema.Transcript.recording_id == recording.id, schema.Transcript.model_id == model_id
            )
        )
        if cached:
            segments = [Segment(**s) for s in cached.segments]
            transcript = Transcript(segments, cached.language, cached.language_probability, recording.duration_s, model_id)
            return Result(recording.id, cached.id, transcript)

    started = time.perf_counter()
    transcript = recognizer.transcribe(decode(path), info.duration_s, progress)
    latency = round(time.perf_counter() - started, 3)
    stored, created = store_audio(info, settings.audio_dir)
    try:
        with session_scope(settings.db_url) as session:
            recording = _find_recording(session, info.sha256, uploader)
            if recording is None:
                recording = schema.Recording(
                    sha256=info.sha256, original_name=original_name or Path(path).name,
                    duration_s=info.duration_s, size_bytes=info.size_bytes, stored_path=str(stored),
                    uploader=uploader,
                )
                session.add(recording)
                session.flush()
            row = schema.Transcript(
                recording_id=recording.id, model_id=model_id, language=transcript.language,
                language_probability=transcript.language_probability, segments=transcript.segment_dicts(),
                text=transcript.text, latency_s=latency,
            )
            session.add(row)
            session.flush()
            return Result(recording.id, row.id, transcript)
    except BaseException:
        if created:  # no row will point at the file: take it back
            stored.unlink(missing_ok=True)
        raise


def summarize_file(
    settings: Settings,
    path: str | Path,
    query: str | None = None,
    original_name: str | None = None,
    uploader: str = "cli",
    decoding: Decoding | None = None,
    progress: Progress | None = None,
) -> Result:
    """Transcribes (or reuses the transcript), summarizes with the cascade, and stores the summary."""
    result = transcribe_file(settings, path, original_name, uploader, _scaled(progress, 0.0, 0.5))
    summarizer = load_summarizer(settings)
    decoding = decoding or Decoding(max_new_tokens=settings.summary_max_tokens)
    summary = summarizer.summarize(result.transcript, query, decoding, _scaled(progress, 0.5, 1.0))
    with session_scope(settings.db_url) as session:
        row = schema.Summary(
            recording_id=result.recording_id, transcript_id=result.transcript_id, query=summary.query,
            text=summary.text, key_points=summary.key_points, system=summary.system,
            model_version=summary.model_version, decoding=summary.decoding, latency_s=summary.latency_s,
        )
        session.add(row)
        session.flush()
        result.summary_id, result.summary = row.id, summary
    return result
