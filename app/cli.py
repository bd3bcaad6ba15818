"""The `speechsum` command: parses arguments and calls the library; no logic of its own."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from storage.config import load_settings
from training.stages import STAGES  # a light import: the stages' code loads only when one runs

DEFAULT_SYSTEMS = "lead,cascade,teacher-on-reference"
# Errors whose message is meant for the user: printed as one line, exit status 1.
EXIT_BAD_INPUT = 1


def _user_errors() -> tuple[type[Exception], ...]:
    from app.pipeline import USER_ERRORS

    return USER_ERRORS


@contextmanager
def _progress_bar(label: str) -> Iterator:
    from tqdm import tqdm

    with tqdm(total=100, desc=label, unit="%", file=sys.stderr, leave=False, disable=None) as bar:

        def update(fraction: float, message: str) -> None:
            bar.set_description(message)
            bar.update(max(0, round(fraction * 100) - bar.n))

        yield update


def _print_transcript(result) -> None:
    for seg in result.transcript.segments:
        print(f"[{seg.start:8.2f} -> {seg.end:8.2f}] {seg.text}")


def cmd_transcribe(args: argparse.Namespace) -> None:
    from app.pipeline import transcribe_file

    settings = load_settings(asr_model=args.asr_model)
    with _progress_bar("transcribing") as progress:
        result = transcribe_file(settings, args.file, progress=progress)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        _print_transcript(result)


def cmd_summarize(args: argparse.Namespace) -> None:
    from app.pipeline import summarize_file

    settings = load_settings(asr_model=args.asr_model, llm_model=args.llm_model, student=args.student)
    with _progress_bar("working") as progress:
        result = summarize_file(settings, args.file, query=args.query, progress=progress, system=args.system)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return
    if result.summary.query:
        print(f"Question: {result.summary.query}\n")
    print(result.summary.markdown())
    print(f"\n({result.summary.system}, {result.summary.model_version}, summary #{result.summary_id})")


def cmd_db_upgrade(_args: argparse.Namespace) -> None:
    from storage.db import upgrade

    settings = load_settings()
    upgrade(settings.db_url)
    print(f"database at {settings.db_url} is up to date")


def cmd_models_prepare(_args: argparse.Namespace) -> None:
    from app.pipeline import prepare_models

    settings = load_settings()
    print(f"preparing models in {settings.models_dir} (the first run converts weights; later runs skip it)")
    for source in prepare_models(settings):
        print(f"ready: {source.version} -> {source.path}")


def cmd_serve(args: argparse.Namespace) -> None:
    from app.ui import serve
    from app.worker import start_worker

    settings = load_settings(host=args.host, port=args.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so the worker below is stopped too
    worker = start_worker() if settings.worker else None
    try:
        serve(settings)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)


def _eval_config(args: argparse.Namespace):
    from training.bench import BenchConfig

    cfg = BenchConfig(items=args.items, seed=args.seed, part=args.part)
    return dataclasses.replace(cfg, data=Path(args.data)) if args.data else cfg


def cmd_eval(args: argparse.Namespace) -> None:
    from training.bench import eval_subset, spoken
    from training.evaluate import evaluate

    settings = load_settings(judge=args.judge)
    items = eval_subset(_eval_config(args))
    result = evaluate(settings, args.system, items, spoken(settings, items))
    out = {"all": result.row(), "summarize": result.row(summarize_only=True),
           "items": [dataclasses.asdict(i) for i in result.items]}
    print(json.dumps(out, indent=2))


def cmd_bench(args: argparse.Namespace) -> None:
    from training.bench import run, run_stages

    if args.facts:
        from training.facts import run as run_facts

        report = run_facts(load_settings(), tuple(args.systems.split(",")) if args.systems != DEFAULT_SYSTEMS
                           else ("cascade", "student"))
        for row in report["rows"]:
            print(f"{row['system']}: facts right {100 * row['facts_right']:.0f}%, stated wrong "
                  f"{100 * row['stated_wrong']:.0f}%, focus answers right {100 * row['focus_right']:.0f}%")
        print(f"wrote bench/results/{report['date']}-facts.{{json,md}}")
        return
    if args.speakers:
        from training.speakers import bench_speakers

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
    from training.align import AlignConfig, align, write_report

    cfg = AlignConfig(items=args.items, held_out=args.held_out, max_minutes=args.minutes,
                      ctc_minutes=args.ctc_minutes, batch_size=args.batch_size, lr=args.lr)
    report = align(load_settings(), cfg)
    stem = write_report(report, Path(args.report_dir))
    print(f"checkpoint: {report['checkpoint']}\nheld-out WER: {100 * report['wer']:.1f}% "
          f"(best beam {100 * report['beam_wer']:.1f}%, greedy {100 * report['greedy_wer']:.1f}%)\n"
          f"report: {stem}.{{json,md,png}}")


NO_VOTES = "DPO on automatic pairs only, not on the votes in the database (e.g. simulated ones from `make loop`)"


def _stage_config(stage: str, args: argparse.Namespace):
    """The stage's config with what the command line set (the rest keeps the stage's defaults)."""
    from training.stages import stage_config

    return stage_config(stage, {"minutes": args.minutes, "items": args.items, "parent": getattr(args, "parent", None),
                                "model": getattr(args, "model", None), "teacher": getattr(args, "teacher", None),
                                "teacher_model": getattr(args, "model", None), "votes": getattr(args, "votes", None)})


def cmd_train_stage(args: argparse.Namespace) -> None:
    from training.stages import run_stage

    name = run_stage(load_settings(), args.train_command, _stage_config(args.train_command, args))
    print(f"registered candidate {name} (serve it with `speechsum models promote {name}`)")


def cmd_train_all(args: argparse.Namespace) -> None:
    from training.stages import train_all

    settings = load_settings()
    configs = {stage: _stage_config(stage, argparse.Namespace(minutes=None, items=args.items if stage in ("sft", "kd")
                                                              else None, votes=args.votes)) for stage in STAGES}
    if args.minutes:  # the stages' own budgets, scaled to sum to --minutes
        scale = args.minutes / sum(c.minutes for c in configs.values())
        configs = {k: dataclasses.replace(c, minutes=round(c.minutes * scale, 1)) for k, c in configs.items()}
    for stage, name in train_all(settings, configs, align_items=args.align_items).items():
        print(f"{stage}: {name}")


def cmd_models_list(args: argparse.Namespace) -> None:
    from app.pipeline import list_versions

    for v in list_versions(load_settings(), args.kind):
        metrics = ", ".join(f"{k} {v['metrics'][k]}" for k in ("rougeL", "hallucination", "final_loss")
                            if v["metrics"].get(k) is not None)
        print(f"{v['name']:<28} {v['kind']:<8} {v['stage']:<8} {v['status']:<10} from {v['parent'] or '-':<28} "
              f"{metrics}")


def cmd_models_promote(args: argparse.Namespace) -> None:
    from app.pipeline import promote_version

    print(promote_version(load_settings(), args.version, reason=args.reason or "by hand", actor="cli"))


def cmd_models_rollback(args: argparse.Namespace) -> None:
    from app.pipeline import rollback_version

    print(rollback_version(load_settings(), args.kind, reason=args.reason or "by hand", actor="cli"))


def cmd_models_import(args: argparse.Namespace) -> None:
    from app.pipeline import import_checkpoint

    print(f"registered candidate {import_checkpoint(load_settings(), Path(args.checkpoint), args.stage)}")


def cmd_worker(args: argparse.Namespace) -> None:
    from app.worker import celery_app, worker_argv

    celery_app.worker_main(worker_argv(beat=not args.no_beat))


def _job_params(pairs: list[str]) -> dict:
    """`key=value` arguments; values that read as JSON (numbers, true/false) become those."""
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"speechsum: error: a job parameter is key=value, not {pair!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def cmd_jobs_run(args: argparse.Namespace) -> None:
    from app.worker import execute, submit
    from storage import jobs
    from storage.db import ensure_schema, session_scope

    settings, params = load_settings(), _job_params(args.param)
    if not args.here:
        job_id = submit(settings, args.kind, params, actor="cli")
        print(f"queued job {job_id} ({args.kind}); follow it with `speechsum jobs list`")
        return
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        job_id = jobs.create(session, args.kind, params, actor="cli").id
    print(json.dumps(execute(job_id), indent=1, default=str))


def cmd_jobs_list(args: argparse.Namespace) -> None:
    from app.admin import list_jobs

    for job in list_jobs(load_settings(), args.limit):
        print(f"{job['id']:>5} {job['kind']:<10} {job['status']:<10} {100 * job['progress']:5.1f}%  "
              f"{job['created_at'][:19]}  {job['message'][:90]}")


def cmd_jobs_cancel(args: argparse.Namespace) -> None:
    from app.admin import cancel_job

    print(cancel_job(load_settings(), args.job_id))


def cmd_simulate(args: argparse.Namespace) -> None:
    from app.simulate import SimulateConfig, simulate
    from training.refresh import RefreshConfig

    refresh = RefreshConfig(minutes=args.minutes, eval_items=args.eval_items, auto_items=args.auto_items, force=True)
    cfg = SimulateConfig(votes=args.votes, candidates=args.candidates, max_words=args.max_words, refresh=refresh)
    report = simulate(load_settings(), cfg)
    print(f"{report['message']}\nserved before {report['served_before']}, after "
          f"{report['served_after']}\nwrote {cfg.out_dir}/{report['date']}-loop.{{json,md,png}}")


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="QMSum-style JSONL (default ../shared/data/qmsum_dev.jsonl)")
    p.add_argument("--part", choices=["dev", "held_out"], default="held_out", help="which side of the fixed split")
    p.add_argument("--items", type=int, default=50, help="how many items of that part")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and item order")
    p.add_argument("--judge", help='score 0-10 with an LLM judge: "https://host/v1#model" or a local model')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speechsum", description="Transcribe and summarize recordings, offline.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("transcribe", help="transcribe a recording and store the transcript")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--asr-model", help="base, tiny.en, a CTranslate2 dir or a hub id")
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("summarize", help="transcribe and summarize a recording; stores both")
    p.add_argument("file")
    p.add_argument("--query", help='a focus question, e.g. "What did we decide about the budget?"')
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--asr-model", help="base, tiny.en, a CTranslate2 dir or a hub id")
    p.add_argument("--llm-model", help="smollm2-135m-instruct, a local model dir or a hub id")
    p.add_argument("--system", choices=["cascade", "student"], default="cascade",
                   help="cascade: Whisper transcript -> LLM; student: the speech LLM hears the audio")
    p.add_argument("--student", help="student checkpoint dir (default: the newest one trained)")
    p.set_defaults(func=cmd_summarize)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="create or migrate the database schema").set_defaults(func=cmd_db_upgrade)

    models = sub.add_parser("models", help="model cache").add_subparsers(dest="models_command", required=True)
    models.add_parser("prepare", help="build the offline model cache").set_defaults(func=cmd_models_prepare)
    p = models.add_parser("list", help="the registered model versions")
    p.add_argument("--kind", choices=["student", "teacher"])
    p.set_defaults(func=cmd_models_list)
    p = models.add_parser("promote", help="serve a version (the served one of its kind is retired)")
    p.add_argument("version")
    p.add_argument("--reason")
    p.set_defaults(func=cmd_models_promote)
    p = models.add_parser("rollback", help="serve again the version the served one replaced")
    p.add_argument("--kind", choices=["student", "teacher"], default="student")
    p.add_argument("--reason")
    p.set_defaults(func=cmd_models_rollback)
    p = models.add_parser("import", help="register an existing student checkpoint folder as a candidate")
    p.add_argument("checkpoint")
    p.add_argument("--stage", default="align", choices=["align", "sft", "kd", "dpo"])
    p.set_defaults(func=cmd_models_import)

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
                   help="the facts benchmark: 12 written meetings, facts right / wrong, focus answers (cascade, student)")
    p.add_argument("--speakers", action="store_true",
                   help="diarization error on --items flite-voiced held-out meetings and one of real speech")
    _eval_arguments(p)
    p.set_defaults(func=cmd_bench)

    train = sub.add_parser("train", help="training stages").add_subparsers(dest="train_command", required=True)
    p = train.add_parser("align", help="stage 0: teach the student to hear by transcribing TTS speech")
    p.add_argument("--items", type=int, default=2000, help="training utterances")
    p.add_argument("--held-out", type=int, default=100, help="test utterances, of texts not trained on")
    p.add_argument("--minutes", type=float, default=45.0, help="training time budget")
    p.add_argument("--ctc-minutes", type=float, default=10.0, help="of which CTC pre-alignment of the projector")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--report-dir", default="bench/results", help="where the WER and loss curve go")
    p.set_defaults(func=cmd_train_align)
    helps = {"teacher": "fine-tune the text teacher (LoRA) on the training items' transcripts and answers",
             "sft": "stage 1: answers from the audio, on the spoken training items",
             "kd": "stage 2: on-policy distillation from the teacher reading the transcript",
             "dpo": "stage 3: preference pairs from votes and the hallucination check"}
    for stage in STAGES:
        p = train.add_parser(stage, help=helps[stage])
        if stage != "teacher":
            p.add_argument("--from", dest="parent", help="the student version to train from (default: the newest "
                                                         "of the stage before)")
        p.add_argument("--minutes", type=float, help="training time budget")
        p.add_argument("--items", type=int, help="at most this many training items")
        if stage in ("teacher", "kd"):
            p.add_argument("--model", help="the teacher's LM: smollm2-135m-instruct (packaged), a local dir or a "
                                           "hub id of the same tokenizer (e.g. SmolLM2-360M-Instruct)")
        if stage == "kd":
            p.add_argument("--teacher", help="a fine-tuned teacher version (default: the newest; none: the raw LM)")
        if stage == "dpo":
            p.add_argument("--no-votes", dest="votes", action="store_false", default=None, help=NO_VOTES)
        p.set_defaults(func=cmd_train_stage)
    p = train.add_parser("all", help="alignment if there is none yet, then teacher, SFT, KD and DPO")
    p.add_argument("--items", type=int, help="at most this many training items per stage")
    p.add_argument("--align-items", type=int, default=2000, help="alignment utterances, if alignment runs")
    p.add_argument("--no-votes", dest="votes", action="store_false", default=None, help=NO_VOTES)
    p.add_argument("--minutes", type=float, help="training budget of the four stages together (default: 64, "
                                                 "split as teacher 12, SFT 30, KD 16, DPO 6; DPO's sampling "
                                                 "has its own 20 on top)")
    p.set_defaults(func=cmd_train_all)

    p = sub.add_parser("worker", help="run a background worker (with the beat schedule of the refresh)")
    p.add_argument("--no-beat", action="store_true", help="no schedule in this worker (another one has it)")
    p.set_defaults(func=cmd_worker)
    jobs = sub.add_parser("jobs", help="background jobs").add_subparsers(dest="jobs_command", required=True)
    p = jobs.add_parser("list", help="the newest jobs, with status and progress")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=cmd_jobs_list)
    p = jobs.add_parser("run", help="queue a job for the workers (or run it here with --here)")
    p.add_argument("kind", help="summarize, build_data, train, evaluate or refresh")
    p.add_argument("param", nargs="*", help="key=value parameters, e.g. force=true, stage=kd minutes=10, "
                                            "version=dpo-...")
    p.add_argument("--here", action="store_true", help="run it in this process and wait")
    p.set_defaults(func=cmd_jobs_run)
    p = jobs.add_parser("cancel", help="cancel a queued job, or stop a running one at its next step")
    p.add_argument("job_id", type=int)
    p.set_defaults(func=cmd_jobs_cancel)

    p = sub.add_parser("simulate", help="simulated users upload and vote, then a refresh runs; writes the loop "
                                        "report bench/results/<date>-loop.{json,md,png}")
    p.add_argument("--votes", type=int, default=300)
    p.add_argument("--candidates", type=int, default=4, help="sampled summaries per upload (every pair is a vote)")
    p.add_argument("--max-words", type=int, default=250, help="longest training item uploaded, in words")
    p.add_argument("--minutes", type=float, default=20.0, help="the refresh's training budget (KD + DPO)")
    p.add_argument("--eval-items", type=int, default=20, help="held-out items of the refresh's gate")
    p.add_argument("--auto-items", type=int, default=20, help="training items sampled for automatic DPO pairs")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("serve", help="start the web app")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except _user_errors() as exc:
        print(f"speechsum: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
