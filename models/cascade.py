"""The cascade: a recording's ASR transcript in, a summary (or meeting notes) written by a text LM out.

- Summary mode (a small LM such as SmolLM2): the LM summarizes, with the user's focus question in the
  prompt when there is one; transcripts longer than `chunk_tokens` are summarized chunk by chunk,
  then the partial summaries again (map-reduce) until one summary remains.
- Notes mode (an LM that follows the form, Qwen2.5-Coder-1.5B by default): the LM writes decisions,
  action items and an overview per chapter (models.notes); the chapters' notes are merged, and a
  focus question gets its own call, on the transcript (of a long recording: the chapters that share
  the question's words).

Either way the result goes through models.summarizer.grounded_summary: unsupported sentences and
items are dropped, key points are quoted from the transcript.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from models.asr import Segment, Transcript
from models.chapters import Chapter, spans
from models.grounding import STOPWORDS, stem
from models.llm import ChatLM, Decoding
from models.notes import answer_prompt, merge_notes, notes_prompt, overview_of
from models.progress import Progress, scaled
from models.summarizer import (
    Summary,
    complete_sentences,
    grounded_chapter,
    grounded_summary,
    notes_decoding,
    notes_summary,
    summary_prompt,
    without_loops,
)


def chunk_segments(segments: list[Segment], max_tokens: int, count: Callable[[str], int]) -> list[str]:
    """Groups consecutive segments into texts of at most `max_tokens` (a long segment is split by words);
    speaker turns ("Speaker: ...") go one per line, as the teacher learned to read them."""
    chunks, current, used = [], [], 0
    sep = "\n" if any(seg.speaker for seg in segments) else " "
    for seg in segments:
        pieces = [seg.text]
        if count(seg.text) > max_tokens:
            words = seg.text.split()
            step = max(1, len(words) * max_tokens // (count(seg.text) + 1))
            pieces = [" ".join(words[i : i + step]) for i in range(0, len(words), step)]
        for piece in pieces:
            n = count(piece)
            if current and used + n > max_tokens:
                chunks.append(sep.join(current))
                current, used = [], 0
            current.append(piece)
            used += n
    if current:
        chunks.append(sep.join(current))
    return chunks


NOTES_KEPT = 16  # recordings whose notes a summarizer keeps for the next focus question
# The notes LM reads a chapter a window at a time. Given five minutes at once, the 1.5B teacher (trained
# on meetings of a minute or so) wrote five of fifteen decisions and three of twelve action items.
NOTES_WINDOW_TOKENS = 450
NOTES_OVERLAP_TURNS = 2  # a window starts with the last turns of the one before: a question and its answer


def notes_windows(turns: list[Segment], max_tokens: int, count: Callable[[str], int]) -> list[str]:
    """A chapter's speaker turns as texts of about `max_tokens` for the notes LM, one turn per line;
    each window after the first repeats the last `NOTES_OVERLAP_TURNS` turns of the one before, so
    a value asked for at the end of one window and given at the start of the next is read together."""
    windows: list[list[Segment]] = [[]]
    used = 0
    for turn in turns:
        n = count(turn.text)
        if len(windows[-1]) > NOTES_OVERLAP_TURNS and used + n > max_tokens:
            windows.append(windows[-1][-NOTES_OVERLAP_TURNS:])
            used = sum(count(t.text) for t in windows[-1])
        windows[-1].append(turn)
        used += n
    return ["\n".join(t.text for t in window) for window in windows if window]


@dataclass
class CascadeSummarizer:
    llm: ChatLM
    chunk_tokens: int = 1500
    n_key_points: int = 5
    system: str = "cascade"
    prompt: Callable[[str, str | None], str] = summary_prompt  # reading_prompt for a fine-tuned teacher
    model_version_id: int | None = None
    notes: bool = False  # the LM writes the notes itself (models.notes.notes_prompt): an LM that follows the form
    _notes_kept: OrderedDict = field(default_factory=OrderedDict, repr=False)

    def _summarize_text(self, text: str, query: str | None, decoding: Decoding) -> str:
        reply = self.llm.chat([{"role": "user", "content": self.prompt(text, query)}], without_loops(decoding))
        return complete_sentences(reply)

    def _map_reduce(self, segments: list[Segment], query: str | None, decoding: Decoding,
                    progress: Progress | None = None) -> str:
        """One summary of the segments: chunk by chunk, then the partial summaries again, until one is left."""
        texts = chunk_segments(segments, self.chunk_tokens, self.llm.count_tokens) or [""]
        calls_expected = len(texts) + (len(texts) > 1)
        calls = 0
        while True:
            partials = []
            for text in texts:
                if progress:
                    progress(min(calls / calls_expected, 0.99), "summarizing")
                partials.append(self._summarize_text(text, query, decoding))
                calls += 1
            if len(partials) == 1:
                return partials[0]
            merged = [Segment(0.0, 0.0, p) for p in partials if p]
            texts = chunk_segments(merged, self.chunk_tokens, self.llm.count_tokens) or [""]
            calls_expected = calls + len(texts)

    def summarize(
        self,
        transcript: Transcript,
        query: str | None = None,
        decoding: Decoding = Decoding(),
        progress: Progress | None = None,
    ) -> Summary:
        started = time.perf_counter()
        query = (query or "").strip() or None
        if self.notes:
            return self._write_notes(transcript, query, decoding, progress, started)
        sections = spans(transcript.segments)
        chapters = []
        if len(sections) > 1:  # a long recording: a grounded summary per section, then one of them
            for k, section in enumerate(sections):
                part = replace(transcript, segments=section, words=[])
                text = self._map_reduce(part.turns(), query, decoding,
                                        scaled(progress, k / (len(sections) + 1), (k + 1) / (len(sections) + 1)))
                chapters.append(grounded_chapter(text, part, self.n_key_points))
            segments = [Segment(c.start, c.end, c.summary) for c in chapters if c.summary]
        else:
            segments = transcript.turns()
        text = self._map_reduce(segments, query, decoding, scaled(progress, len(chapters) / (len(sections) + 1), 1.0))
        if progress:
            progress(1.0, "summarized")
        return grounded_summary(text, transcript, query, self.n_key_points, self.system, self.llm.version,
                                decoding, started, self.model_version_id, chapters)

    def _chapter_notes(self, transcript: Transcript, sections: list[list[Segment]], windows: list[list[str]],
                       decoding: Decoding, progress: Progress | None, calls: int) -> tuple[str, list[Chapter], str]:
        """The merged notes, the chapters and the overview the LM wrote. Kept for the last
        `NOTES_KEPT` recordings when decoding is greedy (the same every time), so another focus
        question on a recording costs one call, not all of them again."""
        key = hashlib.sha256(json.dumps([transcript.labelled_text(), [s.start for s in transcript.segments],
                                         decoding.as_dict()], sort_keys=True).encode()).hexdigest()
        if not decoding.do_sample and key in self._notes_kept:
            self._notes_kept.move_to_end(key)
            return self._notes_kept[key]
        parts, chapters, window_overviews, done = [], [], [], 0
        for section, texts in zip(sections, windows, strict=True):
            replies = []
            for window in texts:
                if progress:
                    progress(done / calls, "writing the notes")
                replies.append(self.llm.chat(notes_prompt(window), decoding))
                done += 1
            parts.append(merge_notes(replies))
            window_overviews += [overview_of(reply) for reply in replies]
            if len(sections) > 1:
                part = replace(transcript, segments=section, words=[])
                chapters.append(grounded_chapter(overview_of(parts[-1]), part, self.n_key_points))
        generated = merge_notes(parts)
        # What the overview call reads: the chapters' summaries, or for one chapter its windows' summaries.
        said = "\n".join(filter(None, [c.summary for c in chapters] if chapters else window_overviews))
        overview = overview_of(generated)
        if len(window_overviews) > 1 and said:
            if progress:
                progress(done / calls, "writing the overview")
            overview = self.llm.chat([{"role": "user", "content": summary_prompt(said, None)}], decoding)
        if not decoding.do_sample:
            self._notes_kept[key] = generated, chapters, overview
            while len(self._notes_kept) > NOTES_KEPT:
                self._notes_kept.popitem(last=False)
        return generated, chapters, overview

    def _write_notes(self, transcript: Transcript, query: str | None, decoding: Decoding,
                     progress: Progress | None, started: float) -> Summary:
        """Notes written by the LM: one call per window of a chapter (map), the items put together
        (reduce) and, when there was more than one window, one more call for the overview; a focus question gets its
        own call, on the transcript (of a long recording: the chapters that share the question's words,
        or its notes when none does)."""
        sections = spans(transcript.segments)
        windows = [notes_windows(replace(transcript, segments=section, words=[]).turns(), NOTES_WINDOW_TOKENS,
                                 self.llm.count_tokens) for section in sections]
        decoding = notes_decoding(decoding)
        n_windows = sum(map(len, windows))
        calls = n_windows + (n_windows > 1) + bool(query)
        generated, chapters, overview = self._chapter_notes(transcript, sections, windows, decoding, progress, calls)
        answer = None
        if query:
            if progress:
                progress((calls - 1) / calls, "answering the question")
            read = transcript.labelled_text() if len(sections) == 1 else relevant_text(
                transcript, sections, query, self.chunk_tokens, self.llm.count_tokens) or generated
            answer = complete_sentences(self.llm.chat(answer_prompt(read, query), decoding))
        if progress:
            progress(1.0, "summarized")
        return notes_summary(generated, overview, answer, transcript, query, self.n_key_points, self.system,
                             self.llm.version, decoding, started, self.model_version_id, chapters)


def relevant_text(transcript: Transcript, sections: list[list[Segment]], query: str, budget_tokens: int,
                  count: Callable[[str], int]) -> str:
    """What a focus question on a long recording is answered from: the sections that share the most
    words with the question (words found in fewer sections count more), in time order, as many as
    fit in `budget_tokens` (of two alike, the later: a correction comes after what it corrects).
    Empty when no section shares a word. The chapters' notes keep only
    what each chapter settled, and a value corrected in a later chapter is in neither note alone."""
    asked = {stem(w) for w in re.findall(r"[a-z0-9']+", query.lower()) if w not in STOPWORDS}
    texts = [replace(transcript, segments=part, words=[]).labelled_text() for part in sections]
    found = [asked & {stem(w) for w in re.findall(r"[a-z0-9']+", text.lower())} for text in texts]
    spread = Counter(w for words in found for w in words)
    scores = [sum(math.log(1 + len(sections) / spread[w]) for w in words) for words in found]
    chosen, used = [], 0
    for i in sorted(range(len(sections)), key=lambda i: (-scores[i], -i)):  # a tie: the later (a correction)
        n = count(texts[i])
        if scores[i] <= 0 or (chosen and used + n > budget_tokens):
            break
        chosen.append(i)
        used += n
    return "\n".join(texts[i] for i in sorted(chosen))
