"""Loading what serves summaries: the recognizer, the cascade's LM and the served student.

The web app, the CLI, the workers and the evaluation all load models through these functions.
What is served is read from the registry on every call (a cheap query), so a promotion or a
rollback reaches the next summary without a restart, while a summary under way keeps the model
object it started with. Loaded models are cached per process, keyed by what they were loaded from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from models.asr import SpeechRecognizer
from models.cascade import CascadeSummarizer
from models.llm import ChatLM
from models.sources import ModelSource, resolve_asr, resolve_llm, writes_notes
from models.student import Student, StudentError, load_student
from models.summarizer import StudentSummarizer, reading_prompt
from storage import registry
from storage.db import ensure_schema, session_scope
from storage.settings import Settings


@lru_cache(maxsize=2)
def _recognizer(source: ModelSource, device: str) -> SpeechRecognizer:
    return SpeechRecognizer(source, device=device)


@lru_cache(maxsize=2)
def _chat_lm(source: ModelSource, device: str, adapter: str | None = None, version: str = "") -> ChatLM:
    return ChatLM.load(source, device=device, adapter=adapter, version=version)


def load_recognizer(settings: Settings) -> SpeechRecognizer:
    return _recognizer(resolve_asr(settings.asr_model, settings.models_dir), settings.device)


@lru_cache(maxsize=1)
def _diarizer(device: str):
    from models.diarize import Diarizer

    return Diarizer(device)


def load_diarizer(settings: Settings):
    return _diarizer(settings.device)


@dataclass(frozen=True)
class Served:
    """What serves a kind right now: a checkpoint, the name summaries record, and its registry id."""

    checkpoint: Path
    name: str
    version_id: int | None
    bases: dict = field(default_factory=dict)  # the base models it was trained on


def served_version(settings: Settings, kind: str, name: str | None = None) -> Served | None:
    """The served version of `kind` ("student" or "teacher"), or the version `name`; read from the
    registry on every call, so a promotion or a rollback reaches the next summary without a restart."""
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        version = registry.get(session, name) if name else registry.served(session, kind)
        return Served(Path(version.checkpoint), version.name, version.id, version.bases) if version else None


def load_summarizer(settings: Settings, teacher: str = "served") -> CascadeSummarizer:
    """The cascade: the configured LM alone ("raw"), with the served fine-tuned teacher's adapter when
    there is one ("served"), or with a named teacher version's; a teacher gets the prompts it learned.
    Every LM but the light SmolLM2 writes the meeting notes itself, fine-tuned or not (its teacher
    learned the notes prompts); SmolLM2's teacher learned `reading_prompt`."""
    source = resolve_llm(settings.llm_model, settings.models_dir)
    named = None if teacher in ("raw", "served") else teacher
    teacher = None if teacher == "raw" else served_version(settings, "teacher", named)
    if teacher is not None and teacher.bases.get("llm", source.version) != source.version:
        teacher = None  # an adapter trained on another LM than the configured one cannot serve it
    notes = writes_notes(source.name)
    if teacher is None:
        return CascadeSummarizer(_chat_lm(source, settings.device), chunk_tokens=settings.chunk_tokens,
                                 n_key_points=settings.key_points, notes=notes)
    llm = _chat_lm(source, settings.device, str(teacher.checkpoint), f"teacher:{teacher.name}")
    return CascadeSummarizer(llm, chunk_tokens=settings.chunk_tokens, n_key_points=settings.key_points,
                             prompt=reading_prompt, notes=notes, model_version_id=teacher.version_id)


def served_student(settings: Settings, name: str | None = None) -> Served:
    """The student version `name`, else `SPEECHSUM_STUDENT` when set (a checkpoint dir), else the
    registry's served student."""
    if settings.student and not name:
        path = Path(settings.student).expanduser()
        return Served(path, path.name, None)
    found = served_version(settings, "student", name)
    if found is None:
        raise StudentError("no student is served yet: train one with `speechsum train all`, "
                           "then `speechsum models promote VERSION`")
    return found


@lru_cache(maxsize=1)
def _student(checkpoint: str, models_dir: Path, device: str) -> Student:
    return load_student(checkpoint, models_dir, device)


def load_student_summarizer(settings: Settings, name: str | None = None) -> StudentSummarizer:
    served = served_student(settings, name)
    student = _student(str(served.checkpoint), settings.models_dir, settings.device)
    return StudentSummarizer(student, f"student:{served.name}", n_key_points=settings.key_points,
                             model_version_id=served.version_id)
