"""The `speechsum` command: parses arguments and calls the library; no logic of its own."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from app.config import load_settings

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

    settings = load_settings(asr_model=args.asr_model, llm_model=args.llm_model)
    with _progress_bar("working") as progress:
        result = summarize_file(settings, args.file, query=args.query, progress=progress)
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

    serve(load_settings(host=args.host, port=args.port))


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
    p.set_defaults(func=cmd_summarize)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="create or migrate the database schema").set_defaults(func=cmd_db_upgrade)

    models = sub.add_parser("models", help="model cache").add_subparsers(dest="models_command", required=True)
    models.add_parser("prepare", help="build the offline model cache").set_defaults(func=cmd_models_prepare)

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
