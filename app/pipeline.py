"""The one path from a recording to a stored transcript and summary.

The CLI, the web page and the workers all call these functions and add nothing of their own.
Order matters for "bad input loses nothing": the audio is validated before anything is written,
the recording and its transcript are committed together once ASR succeeded, and the summary is
committed once it exists. A failure at any step leaves only complete rows behind.
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from models.asr import NoSpeechError, Segment, Transcript
from models.diarize import label_speakers, named
from models.llm import Decoding
from models.progress import Progress, scaled
from models.serving import (
    load_diarizer,
    load_recognizer,
    load_student_summarizer,
    load_summarizer,
)
from models.sources import LIGHT_LLM, ModelSource, ModelSourceError, resolve_asr, resolve_llm
from models.student import StudentError
from models.summarizer import Summary
from storage import registry, schema
from storage.audio import AudioError, decode, inspect_audio, read_samples
from storage.db import ensure_schema, session_scope
from storage.files import store_audio
from storage.history import NotFound, owned_summary, safe_name
from storage.jobs import JobError
from storage.settings import Settings
from storage.speakers import SpeakerError, names_of
from storage.votes import VoteError

SYSTEMS = ("cascade", "student")


class UnknownSystemError(ValueError):
    pass


# Errors whose message is meant for the user: the shells show it and carry on.
USER_ERRORS = (AudioError, NoSpeechError, ModelSourceError, NotFound, VoteError, StudentError, UnknownSystemError,
               registry.RegistryError, JobError, SpeakerError)


def _check_systems(*systems: str) -> None:
    """Refuses an unknown system before anything is transcribed or stored."""
    for system in systems:
        if system not in SYSTEMS:
            raise UnknownSystemError(f"unknown system {system!r}: {' or '.join(SYSTEMS)}")


@dataclass
class Result:
    recording_id: int
    transcript_id: int | None
    transcript: Transcript  # segments carry speaker labels ("Speaker 2"), not the names users gave
    summary_id: int | None = None
    summary: Summary | None = None
    speakers: dict[str, str] = dataclasses.field(default_factory=dict)  # label -> the name a user gave

    def speaker(self, label: str) -> str:
        return self.speakers.get(label, label)

    @property
    def named_transcript(self) -> Transcript:
        """The transcript with the names users gave its speakers: what people and summarizers read."""
        return named(self.transcript, self.speakers)

    def as_dict(self) -> dict:
        shown = self.named_transcript
        out = {
            "recording_id": self.recording_id,
            "transcript_id": self.transcript_id,
            "transcript": {
                "language": self.transcript.language,
                "duration_s": self.transcript.duration_s,
                "model_version": self.transcript.model_version,
                "segments": [s | {"label": label} for s, label in
                             zip(shown.segment_dicts(), (seg.speaker for seg in self.transcript.segments))],
                "text": shown.labelled_text(),
                "speakers": {label: self.speaker(label) for label in self.labels},
            },
        }
        if self.summary:
            s = self.summary
            points = [p | ({"speaker": self.speaker(p["speaker"])} if p.get("speaker") else {}) for p in s.key_points]
            out |= {"summary_id": self.summary_id, "summary": s.text, "key_points": points, "query": s.query,
                    "system": s.system, "model_version": s.model_version, "latency_s": s.latency_s,
                    "dropped_sentences": s.dropped, "chapters": s.chapters, "notes": self.named_notes}
        return out

    @property
    def named_notes(self) -> dict:
        """The summary's notes with the names users gave the speakers (owners included)."""
        notes = dict(self.summary.notes) if self.summary and self.summary.notes else {}
        for key in ("decisions", "action_items"):
            notes[key] = [i | {k: self.speaker(i[k]) for k in ("speaker", "owner") if i.get(k)}
                          for i in notes.get(key, [])]
        return notes

    @property
    def labels(self) -> list[str]:
        """The recording's speaker labels in order of first appearance."""
        return list(dict.fromkeys(s.speaker for s in self.transcript.segments if s.speaker))


def prepare_models(settings: Settings) -> list[ModelSource]:
    """Builds the offline model cache (a no-op once built) and checks that each model loads; the light LM
    too, which the student and its training use."""
    sources = [resolve_asr(settings.asr_model, settings.models_dir),
               resolve_llm(settings.llm_model, settings.models_dir), resolve_llm(LIGHT_LLM, settings.models_dir)]
    load_recognizer(settings)
    load_summarizer(settings)
    return sources


def _find_recording(session, sha256: str, uploader: str) -> schema.Recording | None:
    return session.scalar(
        select(schema.Recording).where(schema.Recording.sha256 == sha256, schema.Recording.uploader == uploader)
    )


def _transcript_of(row: schema.Transcript) -> Transcript:
    segments = [Segment(**s) for s in row.segments]
    return Transcript(segments, row.language, row.language_probability, row.recording.duration_s, row.model_id)


def transcribe_file(
    settings: Settings,
    path: str | Path,
    original_name: str | None = None,
    uploader: str = "cli",
    progress: Progress | None = None,
) -> Result:
    """Validates, transcribes and stores a recording; reuses a stored transcript of the same file."""
    info = inspect_audio(path, settings.max_upload_bytes, settings.max_duration_s)
    ensure_schema(settings.db_url)
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
            return Result(recording.id, cached.id, _transcript_of(cached), speakers=names_of(session, recording.id))

    started = time.perf_counter()
    transcript = recognizer.transcribe(decode(path), info.duration_s, scaled(progress, 0.0, 0.85))
    if settings.speakers and info.duration_s <= settings.speakers_max_min * 60:
        if progress:
            progress(0.85, "finding the speakers")
        transcript = label_speakers(transcript, load_diarizer(settings).turns(read_samples(path)))
    latency = round(time.perf_counter() - started, 3)
    stored, created = store_audio(info.path, info.sha256, settings.audio_dir)
    try:
        with session_scope(settings.db_url) as session:
            recording = _find_recording(session, info.sha256, uploader)
            if recording is None:
                recording = schema.Recording(
                    sha256=info.sha256, original_name=safe_name(original_name or Path(path).name),
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
            return Result(recording.id, row.id, transcript, speakers=names_of(session, recording.id))
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
    system: str = "cascade",
) -> Result:
    """Transcribes (or reuses the transcript), summarizes with `system`, and stores the summary.

    The student hears the audio itself; the transcript is still made, for the page's transcript
    view, the key points and the grounding check."""
    _check_systems(system)
    result = transcribe_file(settings, path, original_name, uploader, scaled(progress, 0.0, 0.5))
    decoding = decoding or Decoding(max_new_tokens=settings.summary_max_tokens)
    return _summarize(settings, result, path, system, query, decoding, scaled(progress, 0.5, 1.0))


def compare_file(
    settings: Settings,
    path: str | Path,
    query: str | None = None,
    original_name: str | None = None,
    uploader: str = "cli",
    progress: Progress | None = None,
    systems: tuple[str, str] = ("cascade", "cascade"),
) -> tuple[Result, Result]:
    """Two candidate summaries of one recording for an A/B vote, in random left/right order.

    Two of the same system are two sampled decodings, each with its own seed (stored with the
    summary, so either can be reproduced); two different systems each decode greedily.
    """
    _check_systems(*systems)
    result = transcribe_file(settings, path, original_name, uploader, scaled(progress, 0.0, 0.4))
    sampled = systems[0] == systems[1]
    seeds = random.sample(range(2**31), 2)
    pair = [
        _summarize(
            settings, result, path, system, query,
            Decoding(max_new_tokens=settings.summary_max_tokens, do_sample=sampled, temperature=0.8, seed=seed),
            scaled(progress, 0.4 + 0.3 * i, 0.7 + 0.3 * i),
        )
        for i, (system, seed) in enumerate(zip(systems, seeds, strict=True))
    ]
    random.shuffle(pair)
    return pair[0], pair[1]


def _summarize(
    settings: Settings, result: Result, path: str | Path, system: str, query: str | None, decoding: Decoding,
    progress: Progress | None,
) -> Result:
    transcript = result.named_transcript  # so that the summary can say who, by the names users gave
    if system == "student":
        student = load_student_summarizer(settings)
        summary = student.summarize(read_samples(path), transcript, query, decoding, progress)
    else:
        summary = load_summarizer(settings).summarize(transcript, query, decoding, progress)
    made_from = result.transcript_id if system == "cascade" else None  # the student hears the audio
    with session_scope(settings.db_url) as session:
        row = schema.Summary(recording_id=result.recording_id, transcript_id=made_from, **summary.fields())
        session.add(row)
        session.flush()
        return dataclasses.replace(result, summary_id=row.id, summary=summary)


def load_result(settings: Settings, summary_id: int, owner: str) -> Result:
    """A stored summary with its transcript, as it was when made; only its owner may read it."""
    with session_scope(settings.db_url) as session:
        row = owned_summary(session, summary_id, owner)
        transcript = session.get(schema.Transcript, row.transcript_id) if row.transcript_id else next(
            iter(row.recording.transcripts), None)  # a student summary: show the recording's transcript
        summary = Summary.from_record(row)
        empty = Transcript([], "", 0.0, row.recording.duration_s, "")
        return Result(row.recording_id, row.transcript_id, _transcript_of(transcript) if transcript else empty,
                      row.id, summary, names_of(session, row.recording_id))
























