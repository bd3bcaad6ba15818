"""The SQL schema: recordings, their transcripts and summaries, the votes users give, and model versions.

Votes are the raw material of training (DPO pairs, evaluation), so their constraints live in the
database itself: one thumb per (summary, voter) and one A/B vote per (pair of summaries, voter).
Every trained model is a row of `model_versions`; which one is served is its status, and every
change of it is a row of the append-only `promotions` log. Background work (training, refresh,
long summaries) is a row of `jobs`, the one truth the admin tab, the CLI and the workers share.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

AB_CHOICES = ("left", "right", "tie", "both_bad")
VERSION_STATUSES = ("candidate", "served", "retired", "failed")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """A stored time with its zone: SQLite returns the UTC times it was given without one."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Recording(Base):
    """One uploaded audio file of one uploader; the bytes live in the content-addressed store."""

    __tablename__ = "recordings"
    __table_args__ = (UniqueConstraint("sha256", "uploader", name="uq_recording_sha_uploader"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    original_name: Mapped[str] = mapped_column(String(512))
    duration_s: Mapped[float] = mapped_column(Float)
    size_bytes: Mapped[int] = mapped_column(Integer)
    stored_path: Mapped[str] = mapped_column(String(1024))
    uploader: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    transcripts: Mapped[list[Transcript]] = relationship(back_populates="recording")
    summaries: Mapped[list[Summary]] = relationship(back_populates="recording")


class Transcript(Base):
    __tablename__ = "transcripts"
    __table_args__ = (UniqueConstraint("recording_id", "model_id", name="uq_transcript_recording_model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str] = mapped_column(String(256))
    language: Mapped[str] = mapped_column(String(16))
    language_probability: Mapped[float] = mapped_column(Float)
    # [{"start": s, "end": s, "text": str}, ...]
    segments: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    text: Mapped[str] = mapped_column(Text)
    latency_s: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    recording: Mapped[Recording] = relationship(back_populates="transcripts")


class SpeakerName(Base):
    """The name a user gave one of a recording's speakers ("Speaker 2" -> "Priya")."""

    __tablename__ = "speaker_names"
    __table_args__ = (UniqueConstraint("recording_id", "label", name="uq_speaker_recording_label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Summary(Base):
    """A summary made by one system (cascade, student, ...) at one model version."""

    __tablename__ = "summaries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    # The transcript the summary was made from; empty for systems that hear the audio directly.
    transcript_id: Mapped[int | None] = mapped_column(ForeignKey("transcripts.id", ondelete="SET NULL"))
    query: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    # [{"text": str, "start": s, "end": s}, ...]
    key_points: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    system: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(256))
    # Decoding settings (greedy or sampled, temperature, seed) so a summary can be reproduced.
    decoding: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    latency_s: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The registered version that wrote it (none for the packaged base LM), what the model generated
    # before the grounding check, and the sentences that check dropped: a vote is on `text`, and
    # training needs to trace it back to the generation.
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    raw: Mapped[str | None] = mapped_column("raw_text", Text)  # what the model generated, before grounding
    dropped: Mapped[list[str] | None] = mapped_column(JSON, default=list)
    # A long recording's sections: [{"start": s, "end": s, "summary": str, "dropped": [...]}, ...]
    chapters: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=list)
    # Meeting notes: overview, decisions and action items (each with its time), and the items dropped.
    notes: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)

    recording: Mapped[Recording] = relationship(back_populates="summaries")


class ThumbVote(Base):
    __tablename__ = "thumb_votes"
    __table_args__ = (
        UniqueConstraint("summary_id", "voter", name="uq_thumb_summary_voter"),
        CheckConstraint("value IN (-1, 1)", name="ck_thumb_value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    summary_id: Mapped[int] = mapped_column(ForeignKey("summaries.id", ondelete="CASCADE"), index=True)
    voter: Mapped[str] = mapped_column(String(128))
    value: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class ABVote(Base):
    """A side-by-side vote. `pair` is "<low id>:<high id>" so that showing the same two summaries
    in the other order still counts as the same comparison for the one-vote rule."""

    __tablename__ = "ab_votes"
    __table_args__ = (
        UniqueConstraint("pair", "voter", name="uq_ab_pair_voter"),
        CheckConstraint("choice IN ('left', 'right', 'tie', 'both_bad')", name="ck_ab_choice"),
        CheckConstraint("left_summary_id <> right_summary_id", name="ck_ab_distinct"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    left_summary_id: Mapped[int] = mapped_column(ForeignKey("summaries.id", ondelete="CASCADE"), index=True)
    right_summary_id: Mapped[int] = mapped_column(ForeignKey("summaries.id", ondelete="CASCADE"), index=True)
    pair: Mapped[str] = mapped_column(String(64))
    voter: Mapped[str] = mapped_column(String(128))
    choice: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class ModelVersion(Base):
    """A trained model: a student stage (align, sft, kd, dpo) or a fine-tuned teacher.

    `kind` says what serves it: "student" (the speech LLM) or "teacher" (the cascade's text LM).
    A run registers its version as a candidate; only a promotion makes it served."""

    __tablename__ = "model_versions"
    __table_args__ = (CheckConstraint(f"status IN {VERSION_STATUSES}", name="ck_version_status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    checkpoint: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))  # of the checkpoint's files, so a changed one is noticed
    bases: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data_hash: Mapped[str] = mapped_column(String(64), default="")
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="candidate")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Promotion(Base):
    """One change of the served version of a kind; rows are only ever added."""

    __tablename__ = "promotions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    action: Mapped[str] = mapped_column(String(16))  # "promote" or "rollback"
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    """One piece of background work and how it goes: what the admin tab and `speechsum jobs` show.

    `lock` holds the job's lock key while it runs (training jobs share one key) and is NULL
    otherwise; its unique index lets only one such job run at a time, across processes and hosts.
    A cancel is a flag the running loop checks between steps, so it works with every broker."""

    __tablename__ = "jobs"
    __table_args__ = (CheckConstraint(f"status IN {JOB_STATUSES}", name="ck_job_status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    log: Mapped[str] = mapped_column(Text, default="")  # the last lines of progress and errors
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    lock: Mapped[str | None] = mapped_column(String(32), unique=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    actor: Mapped[str] = mapped_column(String(128), default="")
    worker: Mapped[str] = mapped_column(String(128), default="")  # "host:pid" of the process running it
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Worker(Base):
    """A running worker ("host:pid") and its last heartbeat; a worker that stops beating is gone."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    """A login: the name and a bcrypt hash of the password (never the password)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
