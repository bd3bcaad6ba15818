"""Stage 0, alignment: teach the student to hear, by training it to transcribe TTS speech.

Only the projector and the LM's LoRA adapters learn; the Whisper encoder is frozen, so its frames
are computed once and cached. Two phases share the time budget:

1. CTC pre-alignment (`ctc_minutes`): the projector alone learns to emit, where a word is spoken, a
   vector close to that word's own token embedding in the LM (CTC over the LM's vocabulary, scored
   by dot products with the frozen embedding table). No LM pass is needed, so a step costs a tenth
   of an LM step, and the LM stage starts from audio it can already half read instead of noise.
2. LM alignment: projector + LoRA minimize the negative log-likelihood of the transcript's tokens
   given the audio, with the CTC loss kept on as an anchor (`ctc_weight`).

Then the student transcribes held-out utterances of other texts and the word error rate is measured.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from models.llm import Decoding
from models.student import TRANSCRIBE, Generated, Student, StudentConfig, build_student
from storage.config import Settings
from training.data import (
    clean_sentences,
    encoder_frames,
    passages,
    speak_all,
    utterances,
)
from training.evaluate import QMSUM, load_items, split
from training.losses import nll_loss
from training.metrics import word_error_rate
from training.runs import (
    length_batches,
    lr_at,
    register_version,
    steps_in_budget,
    update,
)


@dataclass
class AlignConfig:
    items: int = 2000  # training utterances
    held_out: int = 100  # test utterances, from texts the student never heard
    batch_size: int = 8
    lr: float = 1e-3
    warmup_steps: int = 30
    epochs: int = 20
    max_minutes: float = 45.0  # training time budget, both phases; evaluation comes after it
    ctc_minutes: float = 10.0  # of which the CTC pre-alignment of the projector
    ctc_batch_size: int = 32
    ctc_lr: float = 2e-3
    ctc_weight: float = 0.3  # the CTC loss's share in the LM phase
    beams: int = 8  # beam search for the held-out transcripts (greedy is reported too)
    ctc_rescore: float = 0.3  # weight of the CTC score when choosing among the beams; 0 = the LM's best beam
    seed: int = 0
    data: Path | None = None  # QMSum items; None: <settings.shared_data>/qmsum_dev.jsonl
    student: StudentConfig = field(default_factory=StudentConfig)


class TokenCTC(nn.Module):
    """CTC from projected audio onto the LM's own (frozen) token embeddings, plus a learned blank.

    A position's logit for token v is its dot product with v's input embedding, so minimizing the
    loss puts the projected audio near the embeddings of the words spoken there: the LM can then
    read the audio almost as text. (LegoSLM, arXiv 2505.11352, also bridges an encoder and an LLM
    through CTC over the LLM's vocabulary.) The softmax runs over `vocab`, the tokens of the
    training texts, not all ~50k: ten times cheaper, and those are the only ones with targets."""

    def __init__(self, embeddings: torch.Tensor, vocab: list[int]):
        super().__init__()
        self.vocab = sorted(set(vocab))
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self.register_buffer("embeddings", embeddings.detach()[self.vocab].clone(), persistent=False)
        self.blank = nn.Parameter(torch.zeros(embeddings.shape[1]))
        self.log_scale = nn.Parameter(torch.tensor(1.0))  # logits need a wide range over many tokens

    @property
    def blank_id(self) -> int:
        return len(self.vocab)

    def logprobs(self, projected: torch.Tensor) -> torch.Tensor:
        """(T, d) -> (T, V + 1) log-probabilities; the blank is the last class."""
        logits = torch.cat([projected @ self.embeddings.T, (projected @ self.blank)[:, None]], dim=-1)
        return torch.log_softmax(self.log_scale.exp() * logits, dim=-1)

    def loss(self, projected: list[torch.Tensor], token_ids: list[list[int]]) -> torch.Tensor:
        logprobs = nn.utils.rnn.pad_sequence([self.logprobs(p) for p in projected])  # (T, B, V + 1)
        # Speech too fast for its tokens scores 0, not inf.
        return self._ctc(logprobs, [p.shape[0] for p in projected], token_ids, zero_infinity=True)

    def _ctc(self, logprobs: torch.Tensor, lengths: list[int], token_ids: list[list[int]], **kwargs) -> torch.Tensor:
        """CTC loss of (T, B, V + 1) log-probs, each column `lengths[b]` positions long, against its tokens."""
        return nn.functional.ctc_loss(
            logprobs, torch.tensor([self.index[t] for ids in token_ids for t in ids], dtype=torch.long),
            torch.tensor(lengths), torch.tensor([len(ids) for ids in token_ids]), blank=self.blank_id, **kwargs,
        )

    def widened(self, embeddings: torch.Tensor) -> TokenCTC:
        """The same head over all of the LM's tokens, to score any transcript.

        Every CTC path spends one class on every frame, so the softmax's wider normalizer lowers all
        of a clip's scores alike: the ranking of transcripts the narrow head could score is kept."""
        wide = TokenCTC(embeddings, list(range(embeddings.shape[0]))).to(embeddings.device)
        wide.load_state_dict(self.state_dict())
        return wide

    @torch.no_grad()
    def loglik(self, projected: torch.Tensor, transcripts: list[list[int]]) -> torch.Tensor:
        """log P(transcript | audio) of each token sequence; -inf where the audio is too short for it."""
        logprobs = self.logprobs(projected)[:, None].expand(-1, len(transcripts), -1)
        return -self._ctc(logprobs, [projected.shape[0]] * len(transcripts), transcripts, reduction="none")

    @torch.no_grad()
    def greedy(self, projected: torch.Tensor) -> list[int]:
        """Best path: argmax per position, repeats merged, blanks dropped."""
        best = self.logprobs(projected).argmax(-1).tolist()
        return [self.vocab[t] for i, t in enumerate(best) if t != self.blank_id and (i == 0 or t != best[i - 1])]


def token_ids(student: Student, texts: list[str]) -> list[list[int]]:
    return [student.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def train_step(student: Student, frames: list[torch.Tensor], texts: list[str], ctc: TokenCTC | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The transcript's NLL given the audio, and the CTC loss of the same projection (0 without `ctc`)."""
    embeds = [student.projector(f) for f in frames]
    ids = token_ids(student, texts)
    eos = student.tokenizer.eos_token_id
    logprobs, mask = student.continuation_logprobs(embeds, [TRANSCRIBE] * len(texts), [t + [eos] for t in ids])
    return nll_loss(logprobs, mask), ctc.loss(embeds, ids) if ctc is not None else torch.zeros(())


def pre_align(student: Student, ctc: TokenCTC, frames: list[torch.Tensor], ids: list[list[int]], cfg: AlignConfig,
              rng: random.Random) -> list[tuple[int, float, float]]:
    """Phase 1: the projector (and the CTC head) alone, for `ctc_minutes`; returns the loss curve."""
    params = list(student.projector.parameters()) + list(ctc.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.ctc_lr, weight_decay=0.01)
    lengths = [f.shape[0] for f in frames]
    batches = (b for _ in itertools.count() for b in length_batches(lengths, cfg.ctc_batch_size, rng))
    losses, started, step = [], time.monotonic(), 0
    bar = tqdm(desc="pre-aligning (CTC)", unit="step")
    while time.monotonic() - started < cfg.ctc_minutes * 60:
        chosen = next(batches)
        loss = ctc.loss([student.projector(frames[i]) for i in chosen], [ids[i] for i in chosen])
        update(optimizer, params, loss, cfg.ctc_lr * min(1.0, (step + 1) / cfg.warmup_steps))
        losses.append((step, round(loss.item(), 4), round(time.monotonic() - started, 1)))
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        step += 1
    bar.close()
    return losses


def transcribe(student: Student, projected: list[torch.Tensor], beams: int = 1, batch_size: int = 8
               ) -> list[list[Generated]]:
    """Each clip's `beams` best transcripts, best first (greedy when `beams` is 1), from projected audio."""
    # Words do repeat in speech ("the ... the"): no penalty on them, only on looping n-grams.
    decoding = Decoding(max_new_tokens=48, repetition_penalty=1.0, no_repeat_ngram_size=3, num_beams=beams)
    out = []
    for i in tqdm(range(0, len(projected), batch_size), desc=f"transcribing held-out ({beams} beams)", unit="batch"):
        embeds = projected[i : i + batch_size]
        found = student.generate_from_embeddings(embeds, [TRANSCRIBE] * len(embeds), decoding, candidates=beams)
        out += [found[j : j + beams] for j in range(0, len(found), beams)]
    return out


def rescore(student: Student, ctc: TokenCTC, projected: torch.Tensor, beams: list[Generated], weight: float) -> str:
    """Joint CTC/attention decoding as n-best rescoring: the beam with the best LM log-likelihood plus
    `weight` x CTC log-likelihood. CTC must account for every frame of the audio, so a transcript
    that skips words that were spoken, or adds words that were not, loses."""
    eos = student.tokenizer.eos_token_id
    ctc_scores = ctc.loglik(projected, [[t for t in b.token_ids if t != eos] for b in beams])
    scores = [sum(b.logprobs) + weight * float(c) for b, c in zip(beams, ctc_scores)]
    return beams[max(range(len(beams)), key=scores.__getitem__)].text


def prepare(settings: Settings, cfg: AlignConfig, student: Student):
    """(train frames, train texts, test frames, test texts), all cached on disk."""
    parts = split(load_items(cfg.data or settings.shared_data / QMSUM.name), cfg.seed)
    test_utts = utterances(clean_sentences(parts["held_out"]), cfg.held_out, cfg.seed + 1)
    train_texts = passages(parts["dev"], exclude={u.text.lower() for u in test_utts})
    train_utts = utterances(train_texts, cfg.items, cfg.seed)
    root = settings.data_dir / "align"
    frames = encoder_frames(student.encoder, speak_all(train_utts + test_utts, root / "audio"), root,
                            student.encoder_tag, student.device)
    return (frames[: cfg.items], [u.text for u in train_utts], frames[cfg.items :], [u.text for u in test_utts])


def align(settings: Settings, cfg: AlignConfig, student: Student | None = None) -> dict:
    """Both phases, then evaluation; saves the checkpoint and returns the report (curves, WER, examples)."""
    torch.manual_seed(cfg.seed)
    command_started = time.monotonic()
    student = student or build_student(cfg.student, settings.models_dir, settings.device)
    train_frames, train_texts, test_frames, test_texts = prepare(settings, cfg, student)
    rng, started = random.Random(cfg.seed), time.monotonic()
    student.train()
    train_ids = token_ids(student, train_texts)
    ctc = TokenCTC(student.lm.get_input_embeddings().weight, [t for ids in train_ids for t in ids]).to(student.device)
    ctc_losses = pre_align(student, ctc, train_frames, train_ids, cfg, rng) if cfg.ctc_minutes > 0 else []
    with torch.no_grad():
        ctc_hypotheses = [student.tokenizer.decode(ctc.greedy(student.projector(f))) for f in test_frames]
    budget_s = cfg.max_minutes * 60 - (time.monotonic() - started)

    params = student.trainable_parameters() + list(ctc.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    lengths = [f.shape[0] for f in train_frames]
    epoch = length_batches(lengths, cfg.batch_size, rng)
    steps_per_epoch = len(epoch)
    total = steps_per_epoch * cfg.epochs
    losses, lm_started, step = [], time.monotonic(), 0
    bar = tqdm(total=total, desc="aligning", unit="step")
    while step < total and time.monotonic() - lm_started < budget_s:
        if step and step % steps_per_epoch == 0:
            epoch = length_batches(lengths, cfg.batch_size, rng)
        chosen = epoch[step % steps_per_epoch]
        if step == cfg.warmup_steps:  # the pace is known now: fit the decay into the time left
            total = steps_in_budget(step, time.monotonic() - lm_started, budget_s, total)
            bar.total = total
        nll, ctc_loss = train_step(student, [train_frames[i] for i in chosen], [train_texts[i] for i in chosen],
                                   ctc if cfg.ctc_weight else None)
        update(optimizer, params, nll + cfg.ctc_weight * ctc_loss, lr_at(step, total, cfg))
        losses.append((step, round(nll.item(), 4), round(time.monotonic() - started, 1)))
        bar.update(1)
        bar.set_postfix(nll=f"{nll.item():.3f}")
        step += 1
    bar.close()
    train_minutes = round((time.monotonic() - started) / 60, 1)
    student.eval()
    with torch.no_grad():
        projected = [student.projector(f) for f in test_frames]
    greedy = [g[0].text for g in transcribe(student, projected)]
    beams = transcribe(student, projected, cfg.beams)
    reader = ctc.widened(student.lm.get_input_embeddings().weight)
    hypotheses = [rescore(student, reader, p, b, cfg.ctc_rescore) for p, b in zip(projected, beams)]
    name = f"align-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    checkpoint = student.save(settings.data_dir / "students" / name)
    report = {"checkpoint": str(checkpoint), "config": json.loads(json.dumps(asdict(cfg), default=str)),
              "ctc_steps": len(ctc_losses), "steps": step, "train_minutes": train_minutes,
              "ctc_wer": word_error_rate(test_texts, ctc_hypotheses), "wer": word_error_rate(test_texts, hypotheses),
              "beam_wer": word_error_rate(test_texts, [b[0].text for b in beams]),
              "greedy_wer": word_error_rate(test_texts, greedy),
              "ctc_losses": ctc_losses, "losses": losses,
              "examples": [{"reference": r, "student": h, "ctc": c}
                           for r, h, c in list(zip(test_texts, hypotheses, ctc_hypotheses))[:10]]}
    report["wall_minutes"] = round((time.monotonic() - command_started) / 60, 1)  # load, TTS, train, evaluate
    (checkpoint / "align.json").write_text(json.dumps(report, indent=1))
    report["version"] = register_version(
        settings, name=name, kind="student", stage="align", checkpoint=checkpoint, parent=None, bases=student.bases,
        config=report["config"], data=str(len(train_texts)),
        metrics={"wer": report["wer"], "steps": step, "train_minutes": train_minutes})
    return report


def write_report(report: dict, out_dir: Path, name: str = "align") -> Path:
    """bench/results/<date>-<name>.{json,md,png}: WERs, examples and the curves of both phases."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{datetime.now():%Y-%m-%d}-{name}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1))
    cfg, wer, ctc_wer = report["config"], 100 * report["wer"], 100 * report["ctc_wer"]
    beam_wer, greedy_wer = 100 * report["beam_wer"], 100 * report["greedy_wer"]
    lines = [f"# Student alignment {datetime.now():%Y-%m-%d}", "",
             f"{cfg['items']} TTS utterances; {report['train_minutes']} min of training in all: "
             f"{report['ctc_steps']} CTC steps of the projector (batch {cfg['ctc_batch_size']}, lr {cfg['ctc_lr']}, "
             f"{cfg['ctc_minutes']} min), then {report['steps']} steps of projector + LoRA (batch {cfg['batch_size']}, "
             f"lr {cfg['lr']}, CTC weight {cfg['ctc_weight']}). The whole command, with model loading, "
             f"speech synthesis and encoding (unless cached) and evaluation: {report['wall_minutes']} min.", "",
             f"Held-out WER on {cfg['held_out']} utterances of other texts: **{wer:.1f}%**, the best of "
             f"{cfg['beams']} beams by LM + {cfg['ctc_rescore']} x CTC log-likelihood. The LM's own best beam: "
             f"{beam_wer:.1f}%; greedy: {greedy_wer:.1f}%; the projector's CTC reading alone, after phase 1: "
             f"{ctc_wer:.1f}%.", "",
             f"Checkpoint: `{report['checkpoint']}`", "",
             "| reference | student | CTC after phase 1 |", "|---|---|---|"]
    lines += [f"| {e['reference']} | {e['student'].replace(chr(10), ' ')} | {e['ctc']} |" for e in report["examples"]]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "ctc_losses", "phase 1: CTC loss per token"),
                           (axes[1], "losses", "phase 2: transcript NLL per token")):
        steps, values = [s for s, _, _ in report[key]], [v for _, v, _ in report[key]]
        ax.plot(steps, values, linewidth=0.6, alpha=0.5, label="batch")
        window = 25
        if len(values) > window:
            smooth = [sum(values[i - window : i]) / window for i in range(window, len(values) + 1)]
            ax.plot(steps[window - 1 :], smooth, label=f"mean of {window}")
        ax.set_xlabel("step")
        ax.set_title(label)
        ax.legend()
    fig.suptitle(f"alignment: held-out WER {wer:.1f}% (CTC alone {ctc_wer:.1f}%)")
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=110)
    plt.close(fig)
    return stem
