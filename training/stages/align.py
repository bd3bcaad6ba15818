"""Stage 0, alignment: teach the student to hear, by training it to transcribe TTS speech.

Only the projector and the LM's LoRA adapters learn; the Whisper encoder is frozen, so its frames
are computed once and cached. Two phases, each with its budget in steps:

1. CTC pre-alignment (`ctc_steps`): the projector alone learns to emit, where a word is spoken, a
   vector close to that word's own token embedding in the LM (CTC over the LM's vocabulary, scored
   by dot products with the frozen embedding table). No LM pass is needed, so a step costs a tenth
   of an LM step, and the LM stage starts from audio it can already half read instead of noise.
2. LM alignment: projector + LoRA minimize the negative log-likelihood of the transcript's tokens
   given the audio, with the CTC loss kept on as an anchor (`ctc_weight`).

Then the student transcribes held-out utterances of other texts and the word error rate is measured.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from models.llm import Decoding
from models.progress import Progress, scaled
from models.student import TRANSCRIBE, Generated, Student, StudentConfig, build_student
from storage.settings import Settings
from training.config import option
from training.data.frames import encoder_frames
from training.data.items import DEV_FILE, data_hash, load_items, split
from training.data.utterances import clean_sentences, passages, speak_all, utterances
from training.losses import nll_loss
from training.metrics import word_error_rate
from training.stages.runs import LoopConfig, Run, config_dict, finish, fit


@dataclass
class AlignConfig(LoopConfig):
    """Two phases, each a budget in steps; `minutes`, if set, caps both together."""

    items: int = option(2000, "training utterances", ge=1)
    held_out: int = option(100, "test utterances, of texts the student never heard", ge=1)
    steps: int = option(975, "optimizer steps of the LM phase (the 2026-11-25 run's: about 30 minutes here)", ge=0)
    batch_size: int = option(8, "utterances per step of the LM phase", ge=1)
    lr: float = option(1e-3, "peak learning rate of the LM phase", gt=0)
    warmup_steps: int = option(30, "steps of linear warm-up, in each phase", ge=1)
    weight_decay: float = option(0.01, "AdamW's weight decay, both phases", ge=0)
    ctc_steps: int = option(1394, "steps of the CTC pre-alignment of the projector (0: none; the 2026-11-25 "
                                  "run's: about 10 minutes here)", ge=0)
    ctc_batch_size: int = option(32, "utterances per CTC step", ge=1)
    ctc_lr: float = option(2e-3, "peak learning rate of the CTC phase", gt=0)
    ctc_weight: float = option(0.3, "the CTC loss's share in the LM phase", ge=0)
    beams: int = option(8, "beam search for the held-out transcripts (greedy is reported too)", ge=1)
    ctc_rescore: float = option(0.3, "weight of the CTC score when choosing among the beams (0: the LM's best beam)",
                                ge=0)
    data: Path | None = option(None, "QMSum items (default: <SPEECHSUM_SHARED_DATA>/qmsum_dev.jsonl)")
    student: StudentConfig = option(StudentConfig(), "the student's architecture")


@dataclass
class AlignData:
    """Spoken utterances as the encoder's frames, and their texts: the training ones and the test ones."""

    train_frames: list[torch.Tensor]
    train_texts: list[str]
    test_frames: list[torch.Tensor]
    test_texts: list[str]


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


def pre_align(settings: Settings, cfg: AlignConfig, student: Student, ctc: TokenCTC, data: AlignData,
              ids: list[list[int]], progress: Progress | None = None) -> tuple[Run, dict]:
    """Phase 1: the projector (and the CTC head) alone, for `ctc_steps`, on the shared loop (its own run)."""
    phase = dataclasses.replace(cfg, steps=cfg.ctc_steps, batch_size=cfg.ctc_batch_size, lr=cfg.ctc_lr)
    run = Run(settings.data_dir, "align-ctc", config_dict(cfg), None, data_hash(data.train_texts))
    model = nn.ModuleDict({"projector": student.projector, "ctc": ctc})
    frames = data.train_frames
    report = fit(run, model, lambda b: (ctc.loss([student.projector(frames[i]) for i in b], [ids[i] for i in b]), {}),
                 [f.shape[0] for f in frames], phase, "pre-aligning (CTC)", progress)
    return run, report


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


def prepare(settings: Settings, cfg: AlignConfig, student: Student) -> AlignData:
    """The utterances spoken and encoded, all cached on disk."""
    parts = split(load_items(cfg.data or settings.shared_data / DEV_FILE), cfg.seed)
    test_utts = utterances(clean_sentences(parts["held_out"]), cfg.held_out, cfg.seed + 1)
    train_texts = passages(parts["dev"], exclude={u.text.lower() for u in test_utts})
    train_utts = utterances(train_texts, cfg.items, cfg.seed)
    root = settings.data_dir / "align"
    frames = encoder_frames(student.encoder, speak_all(train_utts + test_utts, root / "audio"), root,
                            student.encoder_tag, student.device)
    return AlignData(frames[: cfg.items], [u.text for u in train_utts], frames[cfg.items :],
                     [u.text for u in test_utts])


def held_out_wer(student: Student, ctc: TokenCTC, data: AlignData, cfg: AlignConfig,
                 ctc_hypotheses: list[str]) -> dict:
    """The test utterances transcribed: WER rescored, of the LM's best beam, greedy and of the CTC reading."""
    with torch.no_grad():
        projected = [student.projector(f) for f in data.test_frames]
    greedy = [g[0].text for g in transcribe(student, projected)]
    beams = transcribe(student, projected, cfg.beams)
    reader = ctc.widened(student.lm.get_input_embeddings().weight)
    hypotheses = [rescore(student, reader, p, b, cfg.ctc_rescore) for p, b in zip(projected, beams)]
    texts = data.test_texts
    return {"ctc_wer": word_error_rate(texts, ctc_hypotheses), "wer": word_error_rate(texts, hypotheses),
            "beam_wer": word_error_rate(texts, [b[0].text for b in beams]), "greedy_wer": word_error_rate(texts, greedy),
            "examples": [{"reference": r, "student": h, "ctc": c}
                         for r, h, c in list(zip(texts, hypotheses, ctc_hypotheses))[:10]]}


def align(settings: Settings, cfg: AlignConfig, student: Student | None = None, data: AlignData | None = None,
          progress: Progress | None = None) -> dict:
    """Both phases on the shared loop (each resumes after a crash), then evaluation; registers the
    checkpoint as a candidate and returns the report (curves, WER, examples)."""
    torch.manual_seed(cfg.seed)
    command_started = time.monotonic()
    student = student or build_student(cfg.student, settings.models_dir, settings.device)
    data = data or prepare(settings, cfg, student)
    train_ids = token_ids(student, data.train_texts)
    ctc = TokenCTC(student.lm.get_input_embeddings().weight, [t for ids in train_ids for t in ids]).to(student.device)
    ctc_run, ctc_report = (pre_align(settings, cfg, student, ctc, data, train_ids, scaled(progress, 0, 0.2))
                           if cfg.ctc_steps else (None, {"curve": [], "train_minutes": 0.0, "capped": False}))
    with torch.no_grad():
        ctc_hypotheses = [student.tokenizer.decode(ctc.greedy(student.projector(f))) for f in data.test_frames]
    left = cfg.minutes and max(cfg.minutes - ctc_report["train_minutes"], 0.1)  # what the cap leaves the LM phase
    phase = dataclasses.replace(cfg, minutes=left or None)
    run = Run(settings.data_dir, "align", config_dict(cfg), None, data_hash(data.train_texts))
    frames, texts, weight = data.train_frames, data.train_texts, cfg.ctc_weight

    def loss_fn(batch: list[int]) -> tuple[torch.Tensor, dict]:
        nll, ctc_loss = train_step(student, [frames[i] for i in batch], [texts[i] for i in batch],
                                   ctc if weight else None)
        return nll + weight * ctc_loss, {"nll": round(nll.item(), 4)}

    lm_report = fit(run, nn.ModuleDict({"student": student, "ctc": ctc}), loss_fn, [f.shape[0] for f in frames],
                    phase, "aligning", scaled(progress, 0.2, 0.9))
    report = {"config": config_dict(cfg), "ctc_steps": len(ctc_report["curve"]), "steps": lm_report["steps"],
              "planned_steps": lm_report["planned_steps"], "capped": ctc_report["capped"] or lm_report["capped"],
              "steps_per_minute": lm_report["steps_per_minute"],
              "resumed_from": lm_report["resumed_from"], "skipped_steps": lm_report["skipped_steps"],
              "train_minutes": round(ctc_report["train_minutes"] + lm_report["train_minutes"], 1),
              "ctc_losses": [row[:3] for row in ctc_report["curve"]],
              "losses": [(row[0], row[3]["nll"], row[2]) for row in lm_report["curve"]], "curve": lm_report["curve"]}
    report |= held_out_wer(student, ctc, data, cfg, ctc_hypotheses)
    report["wall_minutes"] = round((time.monotonic() - command_started) / 60, 1)  # load, TTS, train, evaluate

    def write(path: Path) -> None:
        student.save(path)
        (path / "align.json").write_text(json.dumps({k: v for k, v in report.items() if k != "curve"}, indent=1))

    report["version"] = finish(settings, run, kind="student", stage="align", write=write, bases=student.bases,
                               parent=None, cfg=cfg, data=data_hash(data.train_texts), report=report,
                               metrics={"wer": report["wer"]})
    report["checkpoint"] = str(settings.data_dir / "students" / report["version"])
    if ctc_run is not None:
        ctc_run.finish(ctc_report)
    return report
