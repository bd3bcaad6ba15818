"""Stage 0, alignment: teach the student to hear, by training it to transcribe TTS speech.

Only the projector and the LM's LoRA adapters learn; the Whisper encoder is frozen, so its frames
are computed once and cached. The loss is the mean negative log-likelihood of the transcript's
tokens given the audio. Training stops at `max_minutes` (or `epochs`), then the student
transcribes held-out utterances of other texts and the word error rate is measured.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import torch
from tqdm import tqdm

from app.config import Settings
from models.llm import Decoding
from models.student import TRANSCRIBE, Student, StudentConfig, build_student
from training.data import clean_sentences, encoder_frames, speak_all, utterances
from training.evaluate import QMSUM, load_items, split
from training.metrics import word_error_rate


@dataclass
class AlignConfig:
    items: int = 2000  # training utterances
    held_out: int = 100  # test utterances, from texts the student never heard
    batch_size: int = 8
    lr: float = 1e-3
    warmup_steps: int = 30
    epochs: int = 20
    max_minutes: float = 45.0  # training time budget; evaluation comes after it
    seed: int = 0
    data: Path = QMSUM
    student: StudentConfig = field(default_factory=StudentConfig)


def nll_loss(logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood over the real (unmasked) target tokens."""
    return -(logprobs * mask).sum() / mask.sum().clamp(min=1)


def lr_at(step: int, total: int, cfg: AlignConfig) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def steps_in_budget(step: int, elapsed_s: float, budget_s: float, planned: int) -> int:
    """The number of steps the time budget allows at the pace so far, so the schedule decays within it."""
    if step == 0 or elapsed_s <= 0:
        return planned
    return min(planned, step + int((budget_s - elapsed_s) / (elapsed_s / step)))


def targets(student: Student, texts: list[str]) -> list[list[int]]:
    eos = student.tokenizer.eos_token_id
    return [student.tokenizer(t, add_special_tokens=False)["input_ids"] + [eos] for t in texts]


def train_step(student: Student, frames: list[torch.Tensor], texts: list[str]) -> torch.Tensor:
    embeds = [student.projector(f) for f in frames]
    logprobs, mask = student.continuation_logprobs(embeds, [TRANSCRIBE] * len(texts), targets(student, texts))
    return nll_loss(logprobs, mask)


def transcribe(student: Student, frames: list[torch.Tensor], batch_size: int = 8) -> list[str]:
    decoding = Decoding(max_new_tokens=48, repetition_penalty=1.15)
    out = []
    for i in tqdm(range(0, len(frames), batch_size), desc="transcribing held-out", unit="batch"):
        with torch.no_grad():
            embeds = [student.projector(f) for f in frames[i : i + batch_size]]
        out += [g.text for g in student.generate_from_embeddings(embeds, [TRANSCRIBE] * len(embeds), decoding)]
    return out


def prepare(settings: Settings, cfg: AlignConfig, student: Student):
    """(train frames, train texts, test frames, test texts), all cached on disk."""
    parts = split(load_items(cfg.data), cfg.seed)
    train_utts = utterances(clean_sentences(parts["dev"]), cfg.items, cfg.seed)
    test_utts = utterances(clean_sentences(parts["held_out"]), cfg.held_out, cfg.seed + 1)
    root = settings.data_dir / "align"
    tag = student.bases["encoder"] + student.bases["encoder_sha256"]
    frames = encoder_frames(student.encoder, speak_all(train_utts + test_utts, root / "audio"), root / "frames", tag)
    return (frames[: cfg.items], [u.text for u in train_utts], frames[cfg.items :], [u.text for u in test_utts])


def align(settings: Settings, cfg: AlignConfig, student: Student | None = None) -> dict:
    """Trains, evaluates, saves the checkpoint; returns the report (loss curve, WER, examples)."""
    torch.manual_seed(cfg.seed)
    student = student or build_student(cfg.student, settings.models_dir, settings.device)
    train_frames, train_texts, test_frames, test_texts = prepare(settings, cfg, student)
    params = student.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train_texts) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    order, rng = list(range(len(train_texts))), random.Random(cfg.seed)
    losses, started, step = [], time.monotonic(), 0
    student.train()
    bar = tqdm(total=total, desc="aligning", unit="step")
    while step < total and time.monotonic() - started < cfg.max_minutes * 60:
        if step % steps_per_epoch == 0:
            rng.shuffle(order)
        chosen = order[(step % steps_per_epoch) * cfg.batch_size :][: cfg.batch_size]
        if step == cfg.warmup_steps:  # the pace is known now: fit the decay into the time left
            total = steps_in_budget(step, time.monotonic() - started, cfg.max_minutes * 60, total)
            bar.total = total
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, total, cfg)
        loss = train_step(student, [train_frames[i] for i in chosen], [train_texts[i] for i in chosen])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append((step, round(loss.item(), 4), round(time.monotonic() - started, 1)))
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        step += 1
    bar.close()
    student.eval()
    hypotheses = transcribe(student, test_frames)
    name = f"align-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    checkpoint = student.save(settings.data_dir / "students" / name)
    report = {"checkpoint": str(checkpoint), "config": json.loads(json.dumps(asdict(cfg), default=str)),
              "steps": step, "train_minutes": round((time.monotonic() - started) / 60, 1),
              "wer": word_error_rate(test_texts, hypotheses), "losses": losses,
              "examples": [{"reference": r, "student": h} for r, h in list(zip(test_texts, hypotheses))[:10]]}
    (checkpoint / "align.json").write_text(json.dumps(report, indent=1))
    return report


def write_report(report: dict, out_dir: Path, name: str = "align") -> Path:
    """bench/results/<date>-<name>.{json,md,png}: WER, examples and the training-loss curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{datetime.now():%Y-%m-%d}-{name}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1))
    cfg = report["config"]
    lines = [f"# Student alignment {datetime.now():%Y-%m-%d}", "",
             f"{cfg['items']} TTS utterances, batch {cfg['batch_size']}, lr {cfg['lr']}, {report['steps']} steps in "
             f"{report['train_minutes']} min. Held-out WER on {cfg['held_out']} utterances of other texts: "
             f"**{100 * report['wer']:.1f}%**.", "", f"Checkpoint: `{report['checkpoint']}`", "",
             "| reference | student |", "|---|---|"]
    lines += [f"| {e['reference']} | {e['student'].replace(chr(10), ' ')} |" for e in report["examples"]]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    steps, losses = [s for s, _, _ in report["losses"]], [v for _, v, _ in report["losses"]]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, losses, linewidth=0.6, alpha=0.5, label="batch loss")
    window = 25
    if len(losses) > window:
        smooth = [sum(losses[i - window : i]) / window for i in range(window, len(losses) + 1)]
        ax.plot(steps[window - 1 :], smooth, label=f"mean of {window}")
    ax.set_xlabel("step")
    ax.set_ylabel("transcript NLL per token")
    ax.set_title(f"alignment: held-out WER {100 * report['wer']:.1f}%")
    ax.legend()
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=110)
    plt.close(fig)
    return stem
