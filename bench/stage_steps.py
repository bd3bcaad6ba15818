"""Times one step of each training stage and one summary at the real model shapes, on a CPU or a GPU.

The student and the teacher are built from the real configs (Whisper base encoder, SmolLM2-135M)
with random weights, so this runs where the packaged weights are not (a lent GPU has no network
and no room to carry them): the cost of a step depends on the shapes, not on the weights' values.

    python bench/stage_steps.py --configs DIR --out results.json [--device cuda] [--fp32]

DIR holds `whisper/config.json` and `lm/` (config.json + the tokenizer files) copied from the model
cache (`speechsum models prepare` builds it). Each row: the median seconds of `--repeat` steps
after a warm-up, the examples per second, and the peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import models.student as student_module  # noqa: E402
from models.llm import Decoding  # noqa: E402
from models.student import AudioEncoder, Projector, Student, StudentConfig, autocast, with_lora  # noqa: E402
from training.data.items import EvalItem  # noqa: E402
from training.losses import dpo_loss  # noqa: E402
from training.stages.dpo import Pair, pair_logprobs  # noqa: E402
from training.stages.kd import Example, KDConfig, kd_loss  # noqa: E402
from training.stages.sft import sft_loss  # noqa: E402
from training.stages.teacher import Teacher  # noqa: E402

WORDS = ("we should move the launch to may because the supplier needs two more weeks and the budget "
         "stays at forty thousand euros so maria takes the design and tom leads the interviews").split()


def build(configs: Path, device: str) -> tuple[Student, Teacher]:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    torch.manual_seed(0)
    whisper = WhisperConfig.from_pretrained(configs / "whisper")
    encoder = AudioEncoder(WhisperEncoder(whisper).eval(), whisper.num_mel_bins)
    tokenizer = AutoTokenizer.from_pretrained(configs / "lm")
    lm_config = AutoConfig.from_pretrained(configs / "lm")
    config = StudentConfig()
    projector = Projector(whisper.d_model, config.stack, config.projector_hidden, lm_config.hidden_size, 0.14)
    lm = AutoModelForCausalLM.from_config(lm_config)
    student = Student(config, encoder, projector, with_lora(lm, config), tokenizer, {"encoder": "random"})
    teacher_lm = AutoModelForCausalLM.from_config(lm_config).requires_grad_(False)
    return student.to(device), Teacher(teacher_lm.to(device), tokenizer, "random")


def text(words: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, words))


def timed(fn, repeat: int, device: str) -> float:
    fn()  # warm-up: kernels, allocator, autotuning
    times = []
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=90.0, help="audio per example (training items: 0.5-3 min)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=96, help="tokens sampled or generated per summary")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast on a CPU that has bf16 units")
    args = parser.parse_args()
    if args.fp32:
        student_module.cpu_has_bf16 = lambda: False
    device, b = args.device, args.batch
    student, teacher = build(args.configs, device)
    frames = [torch.randn(int(args.seconds * 50), 512, device=device) for _ in range(b)]
    items = [EvalItem(f"i{i}", "What did they decide about the launch?", f"A: {text(230, i)}", text(55, i + 100))
             for i in range(b)]
    examples = [Example(i.transcript, i.query, i.reference) for i in items]
    params = student.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=1e-5)

    def step(loss_fn):
        def run():
            loss = loss_fn()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return run

    def dpo_step():
        pairs = [Pair(i.query, i.reference, text(60, 7), "auto") for i in items]
        with autocast(device):
            chosen, rejected = pair_logprobs(student, [student.projector(f) for f in frames], pairs)
        return dpo_loss(chosen, rejected, chosen.detach() - 1, rejected.detach(), 0.1)[0]

    audio = (0.1 * np.random.default_rng(0).standard_normal(int(60 * 16000))).astype(np.float32)

    def summary():
        with torch.no_grad(), autocast(device):
            student.generate([audio], ["What did they decide?"],
                             Decoding(max_new_tokens=args.new_tokens, repetition_penalty=1.0))

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rows = {
        "sft": timed(step(lambda: sft_loss(student, frames, items)), args.repeat, device),
        "kd_on_policy": timed(step(lambda: kd_loss(student, teacher, frames, examples,
                                                   KDConfig(lam=0.0, max_new_tokens=args.new_tokens))[0]),
                              args.repeat, device),
        "kd_teacher_forced": timed(step(lambda: kd_loss(student, teacher, frames, examples, KDConfig(lam=1.0))[0]),
                                   args.repeat, device),
        "dpo": timed(step(dpo_step), args.repeat, device),
        "summary_60s_audio": timed(summary, args.repeat, device),
    }
    report = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "torch": torch.__version__,
              "bf16_autocast": device == "cuda" or student_module.cpu_has_bf16(),
              "batch": b, "seconds_of_audio_per_example": args.seconds, "new_tokens": args.new_tokens,
              "median_s": {k: round(v, 4) for k, v in rows.items()},
              "examples_per_s": {k: round(b / v, 2) for k, v in rows.items() if not k.startswith("summary")},
              "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20) if device == "cuda" else None}
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
