"""Downloads: a transcript and its summary as plain text, Markdown, SubRip subtitles or JSON."""

from __future__ import annotations

import json
from pathlib import Path

from app.pipeline import Result
from models.summarizer import clock, point_text


def _srt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"


def to_srt(result: Result) -> str:
    """The transcript as subtitles, one cue per segment (SubRip numbers cues from 1)."""
    cues = [
        f"{i}\n{_srt_time(seg.start)} --> {_srt_time(seg.end)}\n{seg.said}\n"
        for i, seg in enumerate(result.named_transcript.segments, start=1)
    ]
    return "\n".join(cues)


def _made_by(result: Result) -> str:
    s = result.summary
    return f"{s.system} · {s.model_version}" + (f" · question: {s.query}" if s.query else "")


def _notes(result: Result) -> list[tuple[str, list[str]]]:
    """(title, "[mm:ss] ..." lines) of the decisions and the action items, with the speakers' names."""
    notes = result.named_notes
    due = lambda a: f" (due {a['due']})" if a.get("due") else ""  # noqa: E731
    return [(title, lines) for title, lines in (
        ("Decisions", [f"[{clock(d['start'])}] {d['text']}" for d in notes.get("decisions", [])]),
        ("Action items", [f"[{clock(a['start'])}] {a['owner'] + ': ' if a['owner'] else ''}{a['text']}{due(a)}"
                          for a in notes.get("action_items", [])]),
    ) if lines]


def to_txt(result: Result) -> str:
    s = result.summary
    lines = ["SUMMARY", s.lead(), "", f"({_made_by(result)})", ""]
    for title, items in _notes(result):
        lines += [title.upper(), *items, ""]
    if s.chapters:
        lines += ["CHAPTERS", *(f"[{clock(c['start'])}-{clock(c['end'])}] {c['summary']}" for c in s.chapters), ""]
    if points := s.points_shown():
        lines += ["KEY POINTS", *(f"[{clock(p['start'])}] {point_text(p, result.speakers)}" for p in points), ""]
    lines += ["TRANSCRIPT", *(f"[{clock(seg.start)}] {seg.said}" for seg in result.named_transcript.segments)]
    return "\n".join(lines) + "\n"


def to_markdown(result: Result) -> str:
    s = result.summary
    lines = ["# Summary", "", s.lead(), "", f"*{_made_by(result)}*", ""]
    for title, items in _notes(result):
        lines += [f"## {title}", "", *(f"- {item}" for item in items), ""]
    if s.chapters:
        lines += ["## Chapters", "",
                  *(f"- **{clock(c['start'])}–{clock(c['end'])}** {c['summary']}" for c in s.chapters), ""]
    if points := s.points_shown():
        lines += ["## Key points", "", *(f"- **{clock(p['start'])}** {point_text(p, result.speakers)}" for p in points),
                  ""]
    lines += ["## Transcript", "",
              *(f"**{clock(seg.start)}** {seg.said}  " for seg in result.named_transcript.segments)]
    return "\n".join(lines) + "\n"


def to_json(result: Result) -> str:
    return json.dumps(result.as_dict(), indent=2, ensure_ascii=False) + "\n"


RENDERERS = {"txt": to_txt, "md": to_markdown, "srt": to_srt, "json": to_json}
FORMATS = tuple(RENDERERS)


def write(result: Result, fmt: str, directory: Path) -> Path:
    """Writes one download to `directory` as speechsum-<summary id>.<fmt>."""
    if fmt not in RENDERERS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"speechsum-{result.summary_id}.{fmt}"
    path.write_text(RENDERERS[fmt](result), encoding="utf-8")
    return path
