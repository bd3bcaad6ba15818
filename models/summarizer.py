"""What every summarizer returns, and the checks it goes through: the Summary record, the prompts,
key points, grounding, and the student's summarizer.

The student (models.student) hears the audio and writes the summary itself; the cascade
(models.cascade) reads the ASR transcript with a text LM. For both:
- sentences whose numbers or names the transcript lacks are dropped (models.grounding): a small
  model sometimes invents a date or an amount, and a wrong fact is worse than a missing one;
- key points are the most salient transcript sentences themselves, with their timestamps, so every
  key point can be checked against the recording.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from models.asr import Segment, Transcript, sentence_units
from models.chapters import MIN_SUPPORT, Chapter
from models.grounding import STOPWORDS, drop_repeats, keep_supported, names, normalize, numbers, sentences, stem
from models.llm import Decoding
from models.notes import NOTES_QUERY, Notes, meeting_notes, merge_notes, overview_of, owners_agree
from models.notes import markdown as notes_markdown
from models.progress import Progress
from models.student import SAMPLE_RATE, Student, instruction

SUMMARY_PROMPT = "Summarize the following text in three sentences."
NO_REPEAT_NGRAM = 4  # a summary never repeats four words in a row: no "the team of the team of the team"
FOCUS_PROMPT = "Summarize the following text in three sentences, focusing on this question: {query}"
NOTES_TOKENS = 300  # decisions, action items and a summary: more than a summary's own limit
# Notes' items share their form ("22,000 dollars approved for the", "Nadia: the"), and each digit is a
# token: a 4-gram ban blocked a second amount ("22,00" then prose). A loop still repeats 16 tokens.
NOTES_NO_REPEAT_NGRAM = 16


def without_loops(decoding: Decoding) -> Decoding:
    """The decoding a summary is written with: no repeated n-gram (unless the caller chose a size)."""
    return decoding if decoding.no_repeat_ngram_size else replace(decoding, no_repeat_ngram_size=NO_REPEAT_NGRAM)


def notes_decoding(decoding: Decoding) -> Decoding:
    """The decoding notes are written with: room for every item, and the notes' n-gram ban (unless chosen)."""
    return replace(decoding, max_new_tokens=max(decoding.max_new_tokens, NOTES_TOKENS),
                   no_repeat_ngram_size=decoding.no_repeat_ngram_size or NOTES_NO_REPEAT_NGRAM)


def summary_prompt(text: str, query: str | None) -> str:
    """The raw instruct LM's prompt: the instruction first, then the text."""
    return f"{FOCUS_PROMPT.format(query=query) if query else SUMMARY_PROMPT}\n\n{text}"


def reading_prompt(text: str, query: str | None) -> str:
    """The teacher's prompt (it is fine-tuned on it): the transcript first, then the question to answer."""
    ask = query or "Summarize the discussion."
    return f"Meeting transcript:\n{text}\n\n{ask} Answer in two or three sentences, using only the transcript."


@dataclass
class Summary:
    text: str
    key_points: list[dict] = field(default_factory=list)
    query: str | None = None
    system: str = "cascade"
    model_version: str = ""
    decoding: dict = field(default_factory=dict)
    latency_s: float = 0.0
    dropped: list[str] = field(default_factory=list)
    raw: str = ""  # what the model generated, before the grounding check
    model_version_id: int | None = None  # the registry's id of the version that wrote it
    chapters: list[dict] = field(default_factory=list)  # long recordings: {start, end, summary, dropped}
    notes: dict = field(default_factory=dict)  # models.notes.Notes: overview, decisions, action items, dropped

    def fields(self) -> dict:
        """The record as stored: the summaries table has a column for each field, under the same name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_record(cls, record) -> Summary:
        """The summary a stored row (or any object with these attributes) holds; empty lists for NULLs."""
        values = {f.name: getattr(record, f.name) for f in dataclasses.fields(cls)}
        empty = (("dropped", []), ("raw", ""), ("chapters", []), ("notes", {}))
        return cls(**values | {k: values[k] or nothing for k, nothing in empty})

    def markdown(self, names: dict[str, str] | None = None, stamp: Callable[[float], str] | None = None,
                 key_points: bool = True) -> str:
        """The summary, its notes, chapters and key points (without them: what the model wrote, as the A/B
        tab compares it); `stamp` writes each item's time (default "[00:35]"; the page makes it a link
        that moves its player there)."""
        stamp = stamp or (lambda seconds: f"[{clock(seconds)}]")
        out = self.lead()
        notes = Notes.from_dict(self.notes)
        if notes and (notes.decisions or notes.action_items):
            out += "\n\n" + notes_markdown(notes, stamp)
        if self.chapters:
            out += "\n\n**Chapters**\n" + "\n".join(
                f"- **{clock(c['start'])}–{clock(c['end'])}** {c['summary']}" for c in self.chapters)
        shown = self.points_shown() if key_points else []
        points = "\n".join(f"- {stamp(p['start'])} {point_text(p, names)}" for p in shown)
        return f"{out}\n\n**Key points**\n{points}".lstrip() if points else out.lstrip()

    # Pages and exports say each sentence once. When a model wrote nothing supported, its text falls
    # back to quotes of the transcript that its notes or key points quote too; the stored summary
    # keeps every field whole (the API, and the benchmarks, read them).
    def lead(self) -> str:
        """The text as shown: without the sentences its notes quote below it."""
        quoted, said = self._quoted_by_notes(), sentences(self.text)
        kept = [s for s in said if normalize(s) not in quoted]
        return self.text if len(kept) == len(said) else " ".join(kept)

    def points_shown(self) -> list[dict]:
        """The key points as shown: those the text and the notes do not already quote."""
        shown = self._quoted_by_notes() | {normalize(s) for s in sentences(self.text)}
        return [p for p in self.key_points if not {normalize(s) for s in sentences(p["text"])} <= shown]

    def _quoted_by_notes(self) -> set[str]:
        notes = Notes.from_dict(self.notes)
        items = notes.decisions + notes.action_items if notes else []
        return {normalize(s) for item in items for s in sentences(item.text)}


def point_text(point: dict, names: dict[str, str] | None = None) -> str:
    """A key point as people read it: "Priya: We ship on the 15th." when its speaker is known."""
    who = point.get("speaker")
    return f"{(names or {}).get(who, who)}: {point['text']}" if who else point["text"]


def clock(seconds: float) -> str:
    """mm:ss, or h:mm:ss past an hour: how people quote a moment in a recording."""
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _content_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z][a-z'-]+|\d[\d,.]*", text.lower()) if w not in STOPWORDS]


# Words that mark decisions and actions, the points meeting notes exist for.
_CUES = frozenset(stem(w) for w in "decide decision agree approve will must deadline plan action assign "
                  "budget deliver conclude propose".split())


def key_points(segments: list[Segment], k: int, query: str | None = None) -> list[dict]:
    """The k most salient sentences, in time order.

    Salience: how often the sentence's content words recur in the whole transcript (topic words
    recur), plus bonuses for numbers, names, decision/action words and words of the focus question.
    Sentences under five content words are filler ("Second item is hiring.") and are skipped.
    """
    segments = sentence_units(segments)
    words = [{stem(w) for w in _content_words(s.text)} for s in segments]
    freq = Counter(w for ws in words for w in ws)
    query_words = {stem(w) for w in _content_words(query or "")}
    salience = {}
    for i, (seg, ws) in enumerate(zip(segments, words)):
        if len(ws) >= 5:
            score = sum(math.log1p(freq[w]) for w in ws) / math.sqrt(len(ws))
            raw = {stem(w) for w in re.findall(r"[a-z']+", seg.text.lower())}
            score += bool(numbers(seg.text)) + bool(names(seg.text)) + 0.5 * len(raw & _CUES)
            score += 2.0 * len(ws & query_words)
            salience[i] = score
    # Greedy pick with a penalty for repeating an already chosen sentence's words (MMR), so the
    # points spread over the meeting's topics instead of restating one of them.
    chosen: list[int] = []
    while salience and len(chosen) < k:
        def gain(i: int) -> float:
            overlap = max((len(words[i] & words[j]) / len(words[i] | words[j]) for j in chosen), default=0.0)
            return salience[i] - 4.0 * overlap

        best = max(salience, key=gain)
        chosen.append(best)
        del salience[best]
    return [{"text": _capitalized(segments[i].text), "start": segments[i].start, "end": segments[i].end}
            | ({"speaker": segments[i].speaker} if segments[i].speaker else {}) for i in sorted(chosen)]


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def complete_sentences(text: str) -> str:
    """Cuts a generation that stopped mid-sentence back to its last full stop."""
    text = text.strip()
    if text and text[-1] not in ".!?\"'":
        end = max(text.rfind(". "), text.rfind("! "), text.rfind("? "))
        if end > 0:
            text = text[: end + 1]
    return text


def grounded_chapter(generated: str, part: Transcript, n_key_points: int) -> Chapter:
    """A section's summary, checked against the section's own transcript (content words too)."""
    kept, dropped = keep_supported(drop_repeats(complete_sentences(generated))[0], part.labelled_text(), MIN_SUPPORT)
    if not kept:  # nothing held: the section's most salient sentence stands in
        kept = " ".join(p["text"] for p in key_points(part.segments, 1))
    return Chapter(part.segments[0].start, part.segments[-1].end, kept, dropped)


def grounded_summary(
    generated: str, transcript: Transcript, query: str | None, n_key_points: int, system: str, model_version: str,
    decoding: Decoding, started: float, model_version_id: int | None = None, chapters: list[Chapter] | None = None,
    notes: Notes | None = None,
) -> Summary:
    """What every system returns: its text minus sentences with unsupported numbers or names (and,
    for a summary of chapters, sentences about what the recording does not say), key points quoted
    from the transcript, and the chapters of a long recording. `notes` are the notes a notes model wrote
    (notes_summary); without them, the notes are the summary's items or the transcript's own."""
    # Speakers' names count as supported; a summary of summaries must also keep to the recording's words.
    once, _ = drop_repeats(generated)  # a sentence said twice is said once (it is no grounding failure)
    summary, dropped = keep_supported(once, transcript.labelled_text(), MIN_SUPPORT if chapters else 0.0)
    points = key_points(transcript.segments, n_key_points, query)
    notes = notes or meeting_notes(summary, generated, transcript.segments, transcript.labelled_text())
    if not summary:
        # Every generated sentence was unsupported: fall back to the transcript's own words, for a focus
        # question the notes' item about it ("When is the open day?": the sentence that settled the date).
        summary = (notes.answer(query) if query else "") or " ".join(p["text"] for p in points[:2])
        notes.overview = notes.overview or summary
    return Summary(
        text=summary,
        key_points=points,
        query=query,
        system=system,
        model_version=model_version,
        decoding=decoding.as_dict(),
        latency_s=round(time.perf_counter() - started, 3),
        dropped=dropped,
        raw=generated,
        model_version_id=model_version_id,
        chapters=[c.as_dict() for c in chapters or []],
        notes=notes.as_dict(),
    )


def notes_summary(
    generated: str, overview: str, answer: str | None, transcript: Transcript, query: str | None, n_key_points: int,
    system: str, model_version: str, decoding: Decoding, started: float, model_version_id: int | None = None,
    chapters: list[Chapter] | None = None,
) -> Summary:
    """The summary of notes a model wrote (`generated`, in the form `models.notes.notes_prompt` asks for):
    the items the transcript supports, the overview, and the text: a focus question's `answer`, else
    the overview. Both the cascade's notes LM and the student write notes; both go through this."""
    source = transcript.labelled_text()
    # Half of an overview sentence's words must be the meeting's: the untuned model sometimes writes
    # a made-up dialogue ("Let's start with the budget for the project.") under "Summary:".
    overview, dropped = keep_supported(drop_repeats(complete_sentences(overview))[0], source, MIN_SUPPORT)
    notes = meeting_notes("", generated, transcript.segments, source)
    overview, clashes = owners_agree(overview, generated, notes.action_items)
    # An overview with nothing supported: the first decisions say what the meeting settled.
    overview = overview or " ".join(d.text for d in notes.decisions[:2])
    text = answer if query else overview
    notes.overview = overview
    summary = grounded_summary(text or "", transcript, query, n_key_points, system, model_version, decoding, started,
                               model_version_id, chapters, notes)
    summary.dropped = dropped + clashes + summary.dropped
    summary.raw = generated if not query else f"{generated}\n\nAnswer: {text}"
    return summary


@dataclass
class StudentSummarizer:
    """The speech LLM: it hears the audio itself; the transcript only grounds it and gives key points."""

    student: Student
    version: str
    n_key_points: int = 5
    system: str = "student"
    # A recording longer than this is heard in pieces (6.25 LM positions a second: 5 minutes is
    # 1,875 positions; a 60-minute meeting in one pass would be 22,500, beyond SmolLM2's 8,192).
    piece_s: float = 300.0
    model_version_id: int | None = None

    def summarize(
        self, audio: np.ndarray, transcript: Transcript, query: str | None = None, decoding: Decoding = Decoding(),
        progress: Progress | None = None,
    ) -> Summary:
        """The notes, heard a piece at a time (each piece a chapter; their items merged), and a focus
        question answered from the audio too, as the cascade answers it from the transcript."""
        started = time.perf_counter()
        query = (query or "").strip() or None
        step = int(self.piece_s * SAMPLE_RATE)
        pieces = [audio[i : i + step] for i in range(0, max(len(audio), 1), step)]
        if len(pieces) > 1 and len(pieces[-1]) < step // 4:  # a short tail joins the piece before it
            pieces[-2:] = [np.concatenate(pieces[-2:])]
        calls, done = len(pieces) * (1 + bool(query)) + (len(pieces) > 1) * (1 + bool(query)), 0

        def hear(piece: np.ndarray, asked: str, how: Decoding, doing: str) -> str:
            nonlocal done
            if progress:
                progress(done / calls, doing)
            done += 1
            return self.student.generate([piece], [instruction(asked)], how)[0].text

        notes = notes_decoding(decoding)
        partials = [hear(piece, NOTES_QUERY, notes, "writing the notes from the audio") for piece in pieces]
        generated, chapters = merge_notes(partials), []
        if len(pieces) > 1:
            bounds = [(i * self.piece_s, i * self.piece_s + len(p) / SAMPLE_RATE) for i, p in enumerate(pieces)]
            for partial, (start, end) in zip(partials, bounds, strict=True):
                section = [s for s in transcript.segments if start <= (s.start + s.end) / 2 < end]
                if section:
                    chapters.append(grounded_chapter(overview_of(partial), replace(transcript, segments=section,
                                                                                   words=[]), self.n_key_points))
        overview = overview_of(generated)
        if len(pieces) > 1:  # the pieces' overviews in one short overview, as the cascade writes it
            if progress:
                progress(done / calls, "writing the overview")
            done += 1
            said = "\n".join(c.summary for c in chapters) or overview
            overview = self.student.chat(summary_prompt(said, None), without_loops(decoding))
        answer = None
        if query:
            answers = [complete_sentences(hear(piece, query, without_loops(decoding), "answering from the audio"))
                       for piece in pieces]
            answer = answers[0]
            if len(answers) > 1:  # each piece's answer, answered again as one
                if progress:
                    progress(done / calls, "answering from the audio")
                answer = complete_sentences(self.student.chat(summary_prompt("\n".join(answers), query),
                                                              without_loops(decoding)))
        if progress:
            progress(1.0, "summarized")
        return notes_summary(generated, overview, answer, transcript, query, self.n_key_points,
                             self.system, self.version, notes, started, self.model_version_id, chapters)
