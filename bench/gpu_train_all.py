"""Times `speechsum train all` after alignment (teacher, SFT, KD, DPO) on a GPU, at the real shapes.

A lent GPU has no network and takes 64 MiB of files, so neither the packaged weights (~700 MB) nor
the training items' cached encoder frames (GBs) can go there. This script builds what the run
needs from small files instead, and then runs the stages with the CLI's own configs and code:
- bases of the real shapes (Whisper base encoder, SmolLM2-135M-Instruct with its tokenizer) from
  their configs, with random weights, and an aligned student on them (registered as `train all`
  expects);
- the frame cache filled with random frames of each training item's real length (measured on the
  machine that spoke them: `lengths`), so no stage speaks or encodes;
- DPO's kept parent samples from the CPU run for every item but `--sample-items` items that gave no
  pair there: those few are sampled here and timed, and DPO trains on the CPU run's pairs (a random
  model's samples make none).

    python bench/gpu_train_all.py lengths --out .device/train-lengths.json            # where the cache is
    python bench/gpu_train_all.py run --configs .device/configs --data .device/data \\
        --lengths .device/train-lengths.json --samples .device/dpo-samples.json --out result.json

Random weights never end a sample early, so sampling runs to `max_new_tokens` every time: an upper
bound for a trained student's. The result is written after every stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.student import encoder_tag  # noqa: E402
from storage import registry  # noqa: E402
from storage.db import ensure_schema, session_scope  # noqa: E402
from storage.settings import load_settings  # noqa: E402
from training.data.frames import frames_dir
from training.data.items import (
    short_items,  # noqa: E402
    training_items,  # noqa: E402
)
from training.data.speech import item_voices, speech_path
from training.stages.chain import STAGES, run_stage, stage_config  # noqa: E402
from training.stages.dpo import auto_pairs, samples_path  # noqa: E402

MAX_WORDS = 450  # the stages' max_words: the items SFT and KD hear
KD_MINUTES = 2.0  # of the CPU run's 16: a lease has 15 minutes in all, so KD's rate is what is measured


def items_of(shared_data: Path):
    return short_items(training_items(shared_data, 0), MAX_WORDS)


def lengths(args: argparse.Namespace) -> None:
    """Each training item's number of encoder frames, from this machine's frame cache."""
    settings = load_settings()
    root = settings.data_dir / "train-speech"
    with session_scope(settings.db_url) as s:  # the frames of the encoder the students were aligned on
        aligned = registry.latest(s, "student", "align")
        if aligned is None:
            raise SystemExit("no aligned student here: its encoder's frames are what is counted")
        tag = encoder_tag(aligned.bases)
    frames = {p.stem: p for p in frames_dir(root, tag).glob("*.pt")}
    found = {}
    for item in items_of(settings.shared_data):
        voices, speed = item_voices(item)
        stem = speech_path(item, root / "audio", voices, speed, vary=True).stem
        if stem in frames:
            found[item.id] = int(torch.load(frames[stem]).shape[0])
    args.out.write_text(json.dumps(found))
    print(f"{len(found)} items' frame counts -> {args.out}")


def random_bases(configs: Path, root: Path) -> tuple[Path, Path]:
    """Random-weight model dirs of the real shapes, as the packaged ones are converted: the Whisper
    encoder (config.json + encoder.safetensors) and the chat LM with its tokenizer."""
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM, WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    torch.manual_seed(0)
    whisper, lm = root / "whisper-base-encoder", root / "smollm2-135m-instruct"
    config = WhisperConfig.from_pretrained(configs / "whisper")
    config.save_pretrained(whisper)
    save_file(WhisperEncoder(config).state_dict(), whisper / "encoder.safetensors")
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(configs / "lm")).save_pretrained(lm)
    for f in (configs / "lm").iterdir():
        if f.name != "config.json":
            shutil.copy(f, lm / f.name)
    return whisper, lm


def run(args: argparse.Namespace) -> None:
    from models.student import StudentConfig, build_student

    work = Path(tempfile.mkdtemp(prefix="gpu-train-all-"))
    settings = load_settings(env={}, data_dir=work / "data", shared_data=args.data, device=args.device)
    ensure_schema(settings.db_url)
    whisper, lm = random_bases(args.configs, work / "bases")
    student = build_student(StudentConfig(encoder=str(whisper), llm=str(lm)), settings.models_dir, args.device)
    with session_scope(settings.db_url) as s:
        registry.register(s, name="align-random", kind="student", stage="align",
                          checkpoint=student.save(settings.data_dir / "students" / "align-random"),
                          bases=student.bases)

    items = items_of(args.data)
    counts = json.loads(args.lengths.read_text())
    missing = [i.id for i in items if i.id not in counts]
    if missing:
        raise SystemExit(f"no frame count for {len(missing)} items (e.g. {missing[0]}): rerun `lengths`")
    speech = settings.data_dir / "train-speech"
    cache = frames_dir(speech, student.encoder_tag)
    cache.mkdir(parents=True)
    width = student.encoder.whisper.config.d_model
    for item in items:  # what spoken_frames would find after speaking and encoding the item
        voices, speed = item_voices(item)
        wav = speech_path(item, speech / "audio", voices, speed, vary=True)
        wav.parent.mkdir(parents=True, exist_ok=True)
        wav.touch()
        torch.save(torch.randn(counts[item.id], width).half(), cache / f"{wav.stem}.pt")
    del student

    configs = {stage: stage_config(stage, {"model": str(lm), "teacher_model": str(lm), "votes": False})
               for stage in STAGES}
    configs["kd"] = dataclasses.replace(configs["kd"], minutes=args.kd_minutes)
    if args.minutes:  # a smoke run on a CPU
        configs = {k: dataclasses.replace(c, minutes=args.minutes) for k, c in configs.items()}
    dpo_items = items[: configs["dpo"].items]
    kept = json.loads(args.samples.read_text())
    cpu_pairs = {p.item for p in auto_pairs([kept[i.id] for i in dpo_items], dpo_items, configs["dpo"])}
    sampled_here = [i.id for n, i in enumerate(dpo_items) if n not in cpu_pairs][: args.sample_items]

    report = {"device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
              "torch": torch.__version__, "items": len(items),
              "audio_minutes": round(sum(counts[i.id] for i in items) / 50 / 60, 1),
              "configs": {k: dataclasses.asdict(c) for k, c in configs.items()},
              "dpo_items_sampled_here": len(sampled_here), "dpo_pairs_in_cpu_run": len(cpu_pairs),
              "minutes": {}, "metrics": {}}
    parent = "align-random"
    for stage in STAGES:  # as training.stages.train_all runs them
        cfg = configs[stage] if stage == "teacher" else dataclasses.replace(configs[stage], parent=parent)
        if stage == "dpo":
            path = samples_path(settings, parent, cfg)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({k: v for k, v in kept.items() if k not in sampled_here}))
        started = time.monotonic()
        name = run_stage(settings, stage, cfg)
        report["minutes"][stage] = round((time.monotonic() - started) / 60, 2)
        with session_scope(settings.db_url) as s:
            report["metrics"][stage] = registry.get(s, name).metrics
        if stage != "teacher":
            parent = name
        if args.device == "cuda":
            report["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
        args.out.write_text(json.dumps(report, indent=1, default=str))
        print(f"{stage}: {report['minutes'][stage]} min", flush=True)
    print(json.dumps({k: report[k] for k in ("device", "minutes")}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("lengths", help="write each training item's frame count from this machine's cache")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=lengths)
    p = sub.add_parser("run", help="run the stages on random-weight bases of the real shapes")
    p.add_argument("--configs", type=Path, required=True, help="whisper/config.json and lm/ (config + tokenizer)")
    p.add_argument("--data", type=Path, required=True, help="a dir with qmsum_dev.jsonl and qmsum_train_pool.jsonl")
    p.add_argument("--lengths", type=Path, required=True)
    p.add_argument("--samples", type=Path, required=True, help="the CPU run's kept DPO samples (dpo-samples/*.json)")
    p.add_argument("--sample-items", type=int, default=24, help="DPO items sampled here (the rest are read)")
    p.add_argument("--kd-minutes", type=float, default=KD_MINUTES)
    p.add_argument("--minutes", type=float, help="every stage's budget (a quick check of this script on a CPU)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=run)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
