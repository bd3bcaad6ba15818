"""The `speechsum` command: parses arguments and calls the library; no logic of its own."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app import training_cli
from storage.settings import load_settings

# Errors whose message is meant for the user: printed as one line, exit status 1.
EXIT_BAD_INPUT = 1


def _user_errors() -> tuple[type[Exception], ...]:
    from app.pipeline import USER_ERRORS
    from storage.backup import BackupError
    from storage.settings import SettingsError
    from storage.users import UserError
    from training.config import ConfigError

    return (*USER_ERRORS, SettingsError, ConfigError, BackupError, UserError)


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
    from models.shipped import install
    from storage.db import upgrade

    settings = load_settings()
    upgrade(settings.db_url)
    print(f"database at {settings.db_url} is up to date")
    for line in install(settings):  # the trained versions that ship in the repository
        print(line)


def cmd_models_prepare(_args: argparse.Namespace) -> None:
    from app.pipeline import prepare_models

    settings = load_settings()
    print(f"preparing models in {settings.models_dir} (the first run converts weights; later runs skip it)")
    for source in prepare_models(settings):
        print(f"ready: {source.version} -> {source.path}")


def cmd_serve(args: argparse.Namespace) -> None:
    from app.supervisor import Supervisor
    from app.web import serve

    settings = load_settings(host=args.host, port=args.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so the worker below is stopped too
    worker = Supervisor(settings.worker_count) if settings.worker else None  # each restarted when it dies
    if worker is not None:
        worker.start()
    try:
        serve(settings)
    finally:
        if worker is not None:
            worker.stop()


def cmd_models_list(args: argparse.Namespace) -> None:
    from app.versions import list_versions

    for v in list_versions(load_settings(), args.kind):
        metrics = ", ".join(f"{k} {v['metrics'][k]}" for k in ("rougeL", "hallucination", "final_loss")
                            if v["metrics"].get(k) is not None)
        print(f"{v['name']:<28} {v['kind']:<8} {v['stage']:<8} {v['status']:<10} from {v['parent'] or '-':<28} "
              f"{metrics}")


def cmd_models_promote(args: argparse.Namespace) -> None:
    from app.versions import promote_version

    print(promote_version(load_settings(), args.version, reason=args.reason or "by hand", actor="cli"))


def cmd_models_rollback(args: argparse.Namespace) -> None:
    from app.versions import rollback_version

    print(rollback_version(load_settings(), args.kind, reason=args.reason or "by hand", actor="cli"))


def cmd_models_import(args: argparse.Namespace) -> None:
    from app.versions import import_checkpoint

    print(f"registered candidate {import_checkpoint(load_settings(), Path(args.checkpoint), args.stage)}")


def cmd_backup(args: argparse.Namespace) -> None:
    from storage.backup import backup

    manifest = backup(load_settings(), Path(args.path))
    print(f"backed up the {manifest['database']} database and {len(manifest['files'])} files to {args.path}")


def cmd_restore(args: argparse.Namespace) -> None:
    from storage.backup import restore

    manifest = restore(load_settings(), Path(args.path))
    print(f"restored the backup of {manifest['created']} ({len(manifest['files'])} files checked)")


def cmd_users(args: argparse.Namespace) -> None:
    import getpass

    from storage import users
    from storage.db import ensure_schema, session_scope

    settings = load_settings()
    ensure_schema(settings.db_url)
    with session_scope(settings.db_url) as session:
        if args.users_command == "list":
            print("\n".join(users.names(session)) or "no users: the page asks for no login")
        elif args.users_command == "remove":
            users.remove(session, args.name)
            print(f"removed {args.name}")
        else:
            password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass(
                f"password for {args.name}: ")
            users.add(session, args.name, password)
            print(f"{args.name} can log in (password stored as a bcrypt hash)")


def cmd_recordings_delete(args: argparse.Namespace) -> None:
    from app.library import delete_recording

    print(delete_recording(load_settings(), args.recording_id, None))


def cmd_models_release(args: argparse.Namespace) -> None:
    from models.shipped import release

    for folder in release(load_settings(), args.versions):
        print(f"shipped {folder.name}: {folder} (commit it; `speechsum db upgrade` serves it on a fresh install)")


def cmd_worker(args: argparse.Namespace) -> None:
    from app.supervisor import worker_argv
    from app.worker import celery_app

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    celery_app.worker_main(worker_argv(beat=not args.no_beat, name=args.name))


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


def _store_parsers(sub) -> None:
    """backup, restore, users and recordings: what an operator does to the store."""
    p = sub.add_parser("backup", help="a consistent snapshot while the service runs: database, audio, "
                                      "checkpoints and a manifest of sha256 values, into a new folder")
    p.add_argument("path")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help="check a backup against its manifest and restore it into an empty store")
    p.add_argument("path")
    p.set_defaults(func=cmd_restore)
    people = sub.add_parser("users", help="logins (bcrypt-hashed passwords)").add_subparsers(dest="users_command",
                                                                                          required=True)
    p = people.add_parser("add", help="add a user, or set a user's password (asked for, or read from stdin)")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_users)
    p = people.add_parser("remove", help="remove a user")
    p.add_argument("name")
    p.set_defaults(func=cmd_users)
    people.add_parser("list", help="the users' names").set_defaults(func=cmd_users)
    recordings = sub.add_parser("recordings", help="stored recordings").add_subparsers(dest="recordings_command",
                                                                                      required=True)
    p = recordings.add_parser("delete", help="delete a recording (any owner's) with its audio, transcript, "
                                             "summaries, speaker names and the votes on them")
    p.add_argument("recording_id", type=int)
    p.set_defaults(func=cmd_recordings_delete)


def build_parser(stages: bool = True) -> argparse.ArgumentParser:
    """The `speechsum` command; `stages` adds the training stages' flags (their configs import torch)."""
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
    p = models.add_parser("release", help="copy versions into models/shipped/ (bf16, with release.json), so a "
                                          "fresh install serves them")
    p.add_argument("versions", nargs="+", help="e.g. teacher-20261127-005015 dpo-20261127-020732")
    p.set_defaults(func=cmd_models_release)
    _store_parsers(sub)
    training_cli.add_parsers(sub, stages)

    p = sub.add_parser("worker", help="run a background worker (with the beat schedule of the refresh)")
    p.add_argument("--no-beat", action="store_true", help="no schedule in this worker (another one has it)")
    p.add_argument("--name", default="speechsum", help="the worker's name (unique per host), shown on its jobs")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, all cores)")
    p.set_defaults(func=cmd_worker)
    jobs = sub.add_parser("jobs", help="background jobs").add_subparsers(dest="jobs_command", required=True)
    p = jobs.add_parser("list", help="the newest jobs, with status and progress")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=cmd_jobs_list)
    p = jobs.add_parser("run", help="queue a job for the workers (or run it here with --here)")
    p.add_argument("kind", help="summarize, build_data, train, train_all, evaluate or refresh")
    p.add_argument("param", nargs="*", help="key=value parameters, e.g. force=true, stage=kd minutes=10, "
                                            "version=dpo-...")
    p.add_argument("--here", action="store_true", help="run it in this process and wait")
    p.set_defaults(func=cmd_jobs_run)
    p = jobs.add_parser("cancel", help="cancel a queued job, or stop a running one at its next step")
    p.add_argument("job_id", type=int)
    p.set_defaults(func=cmd_jobs_cancel)

    p = sub.add_parser("serve", help="start the web app")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(stages=argv[:1] == ["train"]).parse_args(argv)
    try:
        args.func(args)
    except _user_errors() as exc:
        print(f"speechsum: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
