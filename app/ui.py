"""The web page (Gradio Blocks): record or upload, optionally ask a focus question, read the result.

A thin shell over app.pipeline. Votes, history and exports come with the web-app issue.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402  (the analytics switch must be set before the import)

from app.config import Settings  # noqa: E402
from app.pipeline import ensure_database, summarize_file  # noqa: E402
from models.asr import NoSpeechError  # noqa: E402
from storage.files import AudioError  # noqa: E402


def _transcript_text(segments: list[dict]) -> str:
    return "\n".join(f"[{s['start']:7.2f} – {s['end']:7.2f}] {s['text']}" for s in segments)


def build(settings: Settings) -> gr.Blocks:
    def summarize(audio_path: str | None, query: str, request: gr.Request, progress=gr.Progress()):
        if not audio_path:
            raise gr.Error("Upload or record a recording first.")
        session = getattr(request, "session_hash", None) or "web"
        try:
            result = summarize_file(
                settings, audio_path, query=query, original_name=os.path.basename(audio_path),
                uploader=f"web:{session}", progress=lambda f, msg: progress(f, desc=msg),
            )
        except (AudioError, NoSpeechError) as exc:
            raise gr.Error(str(exc)) from exc
        s = result.summary
        footer = f"\n\n*{s.system} · {s.model_version} · {s.latency_s:.1f} s*"
        return s.markdown() + footer, _transcript_text(result.transcript.segment_dicts())

    with gr.Blocks(title="speechsum", analytics_enabled=False) as page:
        gr.Markdown("# speechsum\nTurn a recording into a transcript and a summary, on this machine.")
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Recording")
                query = gr.Textbox(label="Focus question (optional)", placeholder="What did we decide about the budget?")
                button = gr.Button("Summarize", variant="primary")
            with gr.Column():
                summary = gr.Markdown(label="Summary")
                transcript = gr.Textbox(label="Transcript", lines=12)
        button.click(summarize, [audio, query], [summary, transcript], api_name="summarize")
    return page


def serve(settings: Settings) -> None:
    ensure_database(settings.db_url)
    build(settings).launch(
        server_name=settings.host,
        server_port=settings.port,
        max_file_size=settings.max_upload_bytes,
        show_error=True,
    )
