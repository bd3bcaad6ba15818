"""The `speechsum` commands that train and measure: eval, bench, train (every stage), simulate.

Thin shells over training/ and bench/; `app/cli.py` adds them to the one `speechsum` parser.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from storage.settings import load_settings
from training.stages.chain import MINUTES, STAGES  # a light import: the stages' code loads only when one runs

DEFAULT_SYSTEMS = "lead,cascade,teacher-on-reference"
USUAL_MINUTES = {stage: MINUTES[stage] for stage in STAGES}  # the benched chain's, on this 2-core CPU


def _eval_config(args: argparse.Namespace):
    from bench.qmsum import BenchConfig

    cfg = BenchConfig(items=args.items, seed=args.seed, part=args.part)
    return dataclasses.replace(cfg, data=Path(args.data)) if args.data else cfg


def cmd_eval(args: argparse.Namespace) -> None:
    from bench.qmsum import eval_subset
    from training.data.speech import eval_wavs
    from training.evaluate import evaluate

    settings = load_settings(judge=args.judge)
    items = eval_subset(settings, _eval_config(args))
    result = evaluate(settings, args.system, items, eval_wavs(items, settings.data_dir))
    out = {"all": result.row(), "summarize": result.row(summarize_only=True),
           "items": [dataclasses.asdict(i) for i in result.items]}
    print(json.dumps(out, indent=2))


def cmd_bench(args: argparse.Namespace) -> None:
    from bench.qmsum import run, run_stages

    if args.facts:
        from bench.facts import default_systems
        from bench.facts import run as run_facts

        settings = load_settings()
        report = run_facts(settings, tuple(args.systems.split(",")) if args.systems != DEFAULT_SYSTEMS
                           else default_systems(settings))
        for row in report["rows"]:
            print(f"{row['system']}: facts right {100 * row['facts_right']:.0f}%, stated wrong "
                  f"{100 * row['stated_wrong']:.0f}%, focus answers right {100 * row['focus_right']:.0f}%")
        print(f"wrote bench/results/{report['date']}-facts.{{json,md}}")
        return
    if args.load or args.chaos:
        from bench import chaos, load

        bench = load if args.load else chaos
        report = bench.run()
        print(bench.markdown(report), end="")
        print(f"wrote bench/results/{report['date']}-{'load' if args.load else 'chaos'}.{{json,md}}")
        return
    if args.speakers:
        from bench.speakers import bench_speakers

        report = bench_speakers(load_settings(), meetings=args.items)
        print(f"mean DER (flite meetings) {100 * report['mean_der_flite']:.1f}%; wrote bench/results/"
              f"{report['date']}-speakers.{{json,md}}")
        return
    if args.stages:
        cfg = dataclasses.replace(_eval_config(args), name=args.name if args.name != "default" else "stages")
        report = run_stages(load_settings(judge=args.judge), cfg)
    else:
        cfg = dataclasses.replace(_eval_config(args), name=args.name, systems=tuple(args.systems.split(",")))
        report = run(load_settings(judge=args.judge), cfg)
    print(f"wrote {cfg.out_dir}/{report['date']}-{cfg.name}.{{json,md,png}}")


def cmd_train_align(args: argparse.Namespace) -> None:
    from bench.align import align_report
    from training.config import from_arguments
    from training.stages.align import AlignConfig, align

    report = align(load_settings(), from_arguments(AlignConfig, args))
    stem = align_report(report, Path(args.report_dir))
    print(f"{report['version']}: {report['checkpoint']}\nheld-out WER: {100 * report['wer']:.1f}% "
          f"(best beam {100 * report['beam_wer']:.1f}%, greedy {100 * report['greedy_wer']:.1f}%)\n"
          f"report: {stem}.{{json,md,png}}")


def cmd_train_stage(args: argparse.Namespace) -> None:
    from training.config import from_arguments
    from training.stages.chain import config_classes, run_stage

    cfg = from_arguments(config_classes()[args.train_command], args)
    name = run_stage(load_settings(), args.train_command, cfg)
    print(f"registered candidate {name} (serve it with `speechsum models promote {name}`)")


def chain_configs(args: argparse.Namespace) -> dict:
    """Each stage's config for `train all`: `--items` limits SFT and KD, `--no-votes` is DPO's, and
    `--minutes` caps the stages in proportion to their usual minutes here."""
    from training.stages.chain import stage_config

    changes = {"sft": {"items": args.items}, "kd": {"items": args.items}, "dpo": {"votes": args.votes}}
    configs = {stage: stage_config(stage, changes.get(stage, {})) for stage in STAGES}
    if args.minutes:  # DPO's share is mostly sampling
        scale = args.minutes / sum(USUAL_MINUTES.values())
        caps = {stage: round(minutes * scale, 1) for stage, minutes in USUAL_MINUTES.items()}
        configs = {k: dataclasses.replace(c, minutes=caps[k]) for k, c in configs.items()}
        configs["dpo"] = dataclasses.replace(configs["dpo"], minutes=round(caps["dpo"] / 4, 1),
                                             sample_minutes=round(caps["dpo"] * 3 / 4, 1))
    return configs


def cmd_train_all(args: argparse.Namespace) -> None:
    from training.stages.chain import train_all

    settings = load_settings()
    gate = None
    if args.serve:
        from training.refresh import RefreshConfig

        gate = RefreshConfig.from_settings(settings)
    for stage, name in train_all(settings, chain_configs(args), args.align_items, gate=gate).items():
        print(f"{stage}: {name}")


def cmd_simulate(args: argparse.Namespace) -> None:
    from app.simulate import SimulateConfig, simulate
    from training.refresh import RefreshConfig

    refresh = RefreshConfig(minutes=args.minutes, eval_items=args.eval_items, facts_meetings=args.facts_meetings,
                            auto_items=args.auto_items, auto_meetings=args.auto_meetings, force=True)
    cfg = SimulateConfig(votes=args.votes, candidates=args.candidates, refresh=refresh)
    report = simulate(load_settings(), cfg)
    print(f"{report['message']}\nserved before {report['served_before']}, after "
          f"{report['served_after']}\nwrote {cfg.out_dir}/{report['date']}-loop.{{json,md,png}}")


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="QMSum-style JSONL (default ../shared/data/qmsum_dev.jsonl)")
    p.add_argument("--part", choices=["dev", "held_out"], default="held_out", help="which side of the fixed split")
    p.add_argument("--items", type=int, default=50, help="how many items of that part")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and item order")
    p.add_argument("--judge", help='score 0-10 with an LLM judge: "https://host/v1#model" or a local model')


STAGE_HELP = {"align": "stage 0: teach the student to hear by transcribing TTS speech",
              "teacher": "fine-tune the text teacher (LoRA) on the training items' transcripts and answers",
              "sft": "stage 1: answers from the audio, on the spoken training items",
              "kd": "stage 2: on-policy distillation from the teacher reading the transcript",
              "dpo": "stage 3: preference pairs from votes and the hallucination check"}


def _stage_parsers(train) -> None:
    """`train align|teacher|sft|kd|dpo`: one flag per field of the stage's config, with its help and bounds."""
    from training.config import add_arguments
    from training.stages.chain import config_classes

    for stage, cls in config_classes().items():
        p = train.add_parser(stage, help=STAGE_HELP[stage], description=STAGE_HELP[stage])
        add_arguments(p, cls, rename={"parent": "--from"})
        if stage == "align":
            p.add_argument("--report-dir", default="bench/results", help="where the WER and loss curves go")
        p.set_defaults(func=cmd_train_align if stage == "align" else cmd_train_stage)


def add_parsers(sub, stages: bool = True) -> None:
    """eval, bench, train and simulate; `stages` adds each stage's flags (their configs import torch)."""
    p = sub.add_parser("eval", help="score one system on human-referenced items (ROUGE, hallucination, speed)")
    p.add_argument("--system", required=True, help="cascade, teacher-on-reference or student[:VERSION]")
    _eval_arguments(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="every system + ASR WER; writes bench/results/<date>-<name>.{json,md,png}")
    p.add_argument("--name", default="default")
    p.add_argument("--systems", default=DEFAULT_SYSTEMS,
                   help="comma-separated: lead[:N], cascade[:raw|:TEACHER], teacher-on-reference[:raw|:TEACHER], "
                        "student[:VERSION]")
    p.add_argument("--stages", action="store_true",
                   help="the stage table: lead, cascade and teacher (raw, fine-tuned), the student after each stage")
    p.add_argument("--facts", action="store_true",
                   help="the facts benchmark: 12 written meetings, facts right / wrong, focus answers (--systems: "
                        "cascade, cascade-raw (the LM without the served teacher adapter), cascade:TEACHER, "
                        "student[:VERSION], transcript (the notes read off the transcript alone, no model); by "
                        "default the cascade, the transcript and the served student, if any)")
    p.add_argument("--load", action="store_true",
                   help="20 users at once against `speechsum serve` (embedded broker, then Redis + PostgreSQL)")
    p.add_argument("--chaos", action="store_true",
                   help="faults under load: workers killed, Redis and PostgreSQL restarted; time to recover, losses")
    p.add_argument("--speakers", action="store_true",
                   help="diarization error on --items flite-voiced held-out meetings and one of real speech")
    _eval_arguments(p)
    p.set_defaults(func=cmd_bench)

    train = sub.add_parser("train", help="training stages").add_subparsers(dest="train_command", required=True)
    if stages:
        _stage_parsers(train)
    p = train.add_parser("all", help="alignment if there is none yet, then teacher, SFT, KD and DPO")
    p.add_argument("--items", type=int, help="at most this many training items per stage")
    p.add_argument("--align-items", type=int, default=2000, help="alignment utterances, if alignment runs")
    p.add_argument("--no-votes", dest="votes", action="store_false", default=None,
                   help="DPO on automatic pairs only, not on the votes in the database")
    p.add_argument("--minutes", type=float, help="a cap on the four stages together (default: none; their "
                                                 "budgets are steps, about 85 minutes here), shared as they "
                                                 "usually take: teacher 12, SFT 30, KD 17, DPO 25 of 84")
    p.add_argument("--serve", action="store_true", help="then the learning loop's gate: the last version serves "
                                                        "if it beats the served student (or, with none served, "
                                                        "the lead baseline)")
    p.set_defaults(func=cmd_train_all)

    p = sub.add_parser("simulate", help="simulated users upload and vote, then a refresh runs; writes the loop "
                                        "report bench/results/<date>-loop.{json,md,png}")
    p.add_argument("--votes", type=int, default=300)
    p.add_argument("--candidates", type=int, default=4, help="sampled summaries per upload (every pair is a vote)")
    p.add_argument("--facts-meetings", type=int, default=12, help="the gate's generated meetings: both versions' "
                                                                  "facts right and wrong")
    p.add_argument("--minutes", type=float, default=20.0, help="the refresh's training budget (KD + DPO)")
    p.add_argument("--eval-items", type=int, default=20, help="held-out items of the refresh's gate")
    p.add_argument("--auto-items", type=int, default=20, help="training items sampled for automatic DPO pairs")
    p.add_argument("--auto-meetings", type=int, default=8, help="generated meetings sampled for automatic DPO pairs")
    p.set_defaults(func=cmd_simulate)


