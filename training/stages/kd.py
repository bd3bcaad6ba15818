"""Stage 2, on-policy knowledge distillation: the student samples from the audio, the teacher reads the transcript.

Each step the student samples a summary of the audio (on policy: it learns on its own mistakes, as
GKD, arXiv 2306.13649); the teacher scores the same tokens while reading the transcript and the
query; the loss is the generalized Jensen-Shannon divergence between their next-token
distributions over the full vocabulary, at every sampled position (beta 0: forward KL; 1: reverse
KL). A share `lam` of the steps uses the human answer instead of a sample (teacher-forced), which
keeps the summaries in the human answers' shape. The teacher reads what the audio says: the
transcript without QMSum's speaker labels, which the student never hears (a teacher that reads
"Project Manager:" scores that name up, and the student learns to write a name it cannot know).
Users' uploads are unlabeled data: the teacher reads their stored transcripts, so no human answer
is needed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

import torch

from models.llm import Decoding
from models.notes import NOTES_QUERY
from models.sources import llm_version
from models.student import Student, autocast, instruction, load_student
from models.summarizer import notes_decoding
from storage import feedback, registry
from storage.db import ensure_schema, session_scope
from storage.settings import Settings
from training.config import option
from training.data.items import EvalItem, answer_for, data_hash
from training.data.speech import SPEAKER_VOICES
from training.losses import generalized_jsd
from training.stages.runs import LoopConfig, Run, config_dict, finish, fit, resolve_parent
from training.stages.sft import answer_ids, student_items
from training.stages.teacher import Teacher, load_teacher


@dataclass
class KDConfig(LoopConfig):
    steps: int = option(36, "optimizer steps (the benched chain's: about 17 minutes here, sampling most of it)", ge=0)
    batch_size: int = option(4, "items per step", ge=1)
    lr: float = option(1e-4, "peak learning rate (AdamW)", gt=0)
    epochs: int = option(3, "passes over the items, when `steps` is 0", ge=1)
    beta: float = option(0.5, "generalized JSD: 0 forward KL, 1 reverse KL", ge=0, le=1)
    temperature: float = option(1.0, "temperature of both distributions in the divergence", gt=0)
    lam: float = option(0.25, "share of steps on teacher-forced human answers instead of student samples", ge=0, le=1)
    sample_temperature: float = option(1.0, "the student's sampling temperature", gt=0)
    max_new_tokens: int = option(96, "longest sample, in tokens", ge=1)
    max_words: int = option(450, "longest transcript heard, in words", ge=1)
    items: int = option(0, "at most this many training items (0: every one short enough)", ge=0)
    meetings: int = option(24, "generated meetings whose notes and focus answer the student samples too, so the "
                               "teacher (fine-tuned on the same notes) teaches the notes token by token", ge=0)
    heard_answers: bool = option(True, "the supervised share's answers as SFT teaches them (no unheard speaker names)")
    uploads: int = option(200, "at most this many users' recordings join as unlabeled data (0: none)", ge=0)
    upload_max_s: float = option(600.0, "longest user recording that joins, in seconds", gt=0)
    uploads_since: str = option("", "ISO time: only recordings uploaded after it (a refresh's new uploads)")
    teacher: str = option("", "a teacher version (default: the newest fine-tuned teacher, else the raw LM)")
    teacher_model: str = option("", "the teacher's base LM: a packaged name, a dir or a hub id of the student's "
                                    "tokenizer (default: the student's own LM)")
    parent: str | None = option(None, "the SFT student version to start from (default: the newest)")


@dataclass
class Example:
    """What distillation needs of one recording: the teacher's transcript, the query, maybe a human answer."""

    transcript: str
    query: str | None
    reference: str | None = None


def upload_examples(settings: Settings, student: Student, limit: int, max_s: float, since: str = ""
                    ) -> tuple[list[Example], list[torch.Tensor]]:
    """Users' recordings with a stored transcript (newest first; with `since`, an ISO time, only those
    uploaded after it), and the student encoder's frames of them."""
    if limit <= 0:
        return [], []
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        rows = feedback.uploads(session, limit, max_s, datetime.fromisoformat(since) if since else None)
    examples, frames = [], []
    if rows:
        from storage.audio import read_samples  # PyAV, only when there is a recording to read
    for path, text, query in rows:
        with torch.no_grad():
            frames.append(student.encoder.encode(read_samples(path)))
        examples.append(Example(text, query))
    return examples, frames


def load_kd_teacher(settings: Settings, cfg: KDConfig, student: Student) -> Teacher:
    """The teacher version asked for, else the newest fine-tuned one of the teacher's LM (not the
    shipped notes teacher, an adapter of another LM), else the raw LM."""
    ensure_schema(settings.db_url)
    model = cfg.teacher_model or student.config.llm
    base = llm_version(model)
    with session_scope(settings.db_url) as session:
        version = registry.get(session, cfg.teacher) if cfg.teacher else registry.latest(session, "teacher", llm=base)
        trained_on = (version.bases or {}).get("llm") if version else None
        if trained_on and trained_on != base:  # its adapter would not fit the LM
            raise registry.RegistryError(f"teacher {version.name} is an adapter of {trained_on}, not of {model}: "
                                         "pass --teacher-model with its LM, or another --teacher")
        adapter, name = (version.checkpoint, version.name) if version else (None, model)
    return load_teacher(settings, model, adapter, name, student_tokenizer=student.tokenizer)


def sample(student: Student, embeds: list[torch.Tensor], prompts: list[str], cfg: KDConfig) -> list[list[int]]:
    """The student's own summaries of the audio (token ids, with the end token when it stopped); a batch
    with a notes prompt is sampled as notes are served (room for every item, the notes' n-gram ban)."""
    decoding = Decoding(max_new_tokens=cfg.max_new_tokens, do_sample=True, temperature=cfg.sample_temperature,
                        top_p=1.0, repetition_penalty=1.0)
    if instruction(NOTES_QUERY) in prompts:
        decoding = notes_decoding(decoding)
    eos = student.tokenizer.eos_token_id
    with autocast(student.device):
        found = student.generate_from_embeddings([e.detach() for e in embeds], prompts, decoding)
    return [g.token_ids or [eos] for g in found]


def kd_loss(student: Student, teacher: Teacher, frames: list[torch.Tensor], examples: list[Example], cfg: KDConfig
            ) -> tuple[torch.Tensor, dict]:
    """One distillation step's loss: on the student's samples, or (a share `lam`) on the human answers."""
    prompts = [instruction(e.query) for e in examples]
    supervised = random.random() < cfg.lam and all(e.reference for e in examples)
    with autocast(student.device):
        embeds = [student.projector(f) for f in frames]
    tokens = answer_ids(student, [e.reference for e in examples]) if supervised else sample(student, embeds, prompts,
                                                                                            cfg)
    with autocast(student.device):
        student_logits, _, mask = student.continuation_logits(embeds, prompts, tokens)
        with torch.no_grad():
            teacher_logits, _, _ = teacher.continuation_logits([e.transcript for e in examples],
                                                               [e.query for e in examples], tokens)
    vocab = min(student_logits.shape[-1], teacher_logits.shape[-1])  # padded embedding tables may differ
    loss = generalized_jsd(student_logits[..., :vocab], teacher_logits[..., :vocab], mask, cfg.beta, cfg.temperature)
    return loss, {"supervised": supervised, "tokens": round(float(mask.sum(-1).float().mean()), 1)}


def kd(settings: Settings, cfg: KDConfig = KDConfig(), progress=None, student: Student | None = None,
       data: tuple[list[EvalItem], list[torch.Tensor]] | None = None, teacher: Teacher | None = None) -> str:
    """Distils the teacher into the SFT student; registers the result as a candidate and returns its name.
    (`student`, `data` and `teacher` stand in for what it would load, as in `sft`.)"""
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    parent, checkpoint = resolve_parent(settings, cfg.parent, "student", "sft")
    student = student or load_student(checkpoint, settings.models_dir, settings.device)
    teacher = teacher or load_kd_teacher(settings, cfg, student)
    items, frames = data or student_items(settings, student, cfg.max_words, cfg.items or None, cfg.seed, cfg.meetings)
    examples = [Example(i.spoken_text, i.query, answer_for(i, cfg.heard_answers)) for i in items]
    more, more_frames = upload_examples(settings, student, cfg.uploads, cfg.upload_max_s, cfg.uploads_since)
    examples, frames = examples + more, frames + more_frames
    data = data_hash("kd", [i.id for i in items], len(more), SPEAKER_VOICES, teacher.name)
    run = Run(settings.data_dir, "kd", config_dict(cfg), parent, data)
    report = fit(run, student, lambda b: kd_loss(student, teacher, [frames[i] for i in b], [examples[i] for i in b],
                                                 cfg), [f.shape[0] for f in frames], cfg, "distilling", progress)
    return finish(settings, run, kind="student", stage="kd", write=student.save, bases=student.bases, parent=parent,
                  cfg=cfg, data=data, report=report,
                  metrics={"items": len(items), "uploads": len(more), "teacher": teacher.name})
