"""Speech recognition with faster-whisper: timestamped segments and the spoken language.

Long recordings are transcribed window by window from a decoded stream, so memory stays flat
however long the recording is. Each window ends at the quietest moment near its nominal end,
so no word is cut in half.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np

from models.grounding import sentences
from models.progress import Progress
from models.sources import ModelSource
from storage.audio import SAMPLE_RATE


class NoSpeechError(ValueError):
    """The recording decoded fine but holds no speech."""


# Whisper's own rule for a segment that is not speech: likely silence and a poor decoding.
NO_SPEECH_PROB, LOW_LOGPROB = 0.6, -1.0
# A recording is judged to hold no speech when what was heard covers under MIN_SPEECH_SHARE of it
# and Whisper is unsure which language it is (noise decodes as a made-up word in some language).
MIN_SPEECH_SHARE, MIN_LANGUAGE_P = 0.1, 0.5


def holds_speech(segments: list[Segment], duration_s: float, language_p: float) -> bool:
    heard = sum(s.end - s.start for s in segments)
    return bool(segments) and (heard >= MIN_SPEECH_SHARE * duration_s or language_p >= MIN_LANGUAGE_P)


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    speaker: str = ""  # "Speaker 2" once diarization labelled it (models.diarize); empty without

    @property
    def said(self) -> str:
        """The text with its speaker in front ("Priya: ..."), when diarization found one."""
        return f"{self.speaker}: {self.text.strip()}" if self.speaker else self.text.strip()


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str  # as Whisper wrote it: with its leading space, or none inside a number ("$40", ",000")


@dataclass
class Transcript:
    segments: list[Segment]
    language: str
    language_probability: float
    duration_s: float
    model_version: str
    # Each segment's words with their times (not stored), to split segments at speaker turns.
    words: list[list[Word]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)

    @property
    def has_speakers(self) -> bool:
        return any(s.speaker for s in self.segments)

    def turns(self) -> list[Segment]:
        """One segment per speaker turn, its text "Speaker: ..." (what the teacher learned to read);
        the segments themselves when there are no speakers."""
        if not self.has_speakers:
            return self.segments
        turns: list[Segment] = []
        for seg in self.segments:
            if turns and turns[-1].speaker == seg.speaker:
                last = turns[-1]
                turns[-1] = Segment(last.start, seg.end, f"{last.text} {seg.text}", seg.speaker)
            else:
                turns.append(Segment(seg.start, seg.end, f"{seg.speaker or 'Unknown'}: {seg.text}", seg.speaker))
        return turns

    def labelled_text(self) -> str:
        """One "Speaker: text" line per turn, else the plain text."""
        return "\n".join(t.text for t in self.turns()) if self.has_speakers else self.text

    def segment_dicts(self) -> list[dict]:
        return [asdict(s) for s in self.segments]


def windows(
    blocks: Iterable[np.ndarray], window_s: float = 600.0, search_s: float = 15.0, sr: int = SAMPLE_RATE
) -> Iterator[tuple[float, np.ndarray]]:
    """Regroups a stream of sample blocks into (offset_s, samples) windows of about `window_s`.

    Every window but the last ends at the quietest 100 ms frame of its last `search_s` seconds.
    """
    window, search, frame = int(window_s * sr), int(search_s * sr), sr // 10
    buf = np.zeros(0, dtype=np.float32)
    offset = 0
    for block in blocks:
        buf = np.concatenate([buf, block.astype(np.float32, copy=False)])
        while buf.size >= window + search:
            tail = buf[window - search : window + search]
            n = tail.size // frame
            energy = (tail[: n * frame].reshape(n, frame) ** 2).sum(axis=1)
            cut = window - search + int(np.argmin(energy)) * frame + frame // 2
            yield offset / sr, buf[:cut]
            buf, offset = buf[cut:], offset + cut
    if buf.size:
        yield offset / sr, buf


class SpeechRecognizer:
    """A loaded Whisper model. Load once and reuse: loading takes about a second."""

    def __init__(self, source: ModelSource, device: str = "cpu", compute_type: str = "int8"):
        from faster_whisper import WhisperModel

        self.source = source
        self.model = WhisperModel(source.path, device=device, compute_type=compute_type)

    def transcribe(
        self,
        blocks: Iterable[np.ndarray],
        duration_s: float,
        progress: Progress | None = None,
        window_s: float = 600.0,
    ) -> Transcript:
        segments: list[Segment] = []
        words: list[list[Word]] = []
        language, language_p = None, 0.0
        for offset, samples in windows(blocks, window_s):
            pieces, info = self.model.transcribe(
                samples, language=language, vad_filter=True, beam_size=5, condition_on_previous_text=False,
                word_timestamps=True, temperature=0.0,  # no sampled fallback: the same file, the same verdict
            )
            if language is None:
                # The first window fixes the language, so one recording is not split across two.
                language, language_p = info.language, info.language_probability
            for piece in pieces:
                text = piece.text.strip()
                if piece.no_speech_prob > NO_SPEECH_PROB and piece.avg_logprob < LOW_LOGPROB:
                    text = ""
                if text:
                    segments.append(Segment(round(offset + piece.start, 2), round(offset + piece.end, 2), text))
                    words.append([Word(round(offset + w.start, 2), round(offset + w.end, 2), w.word)
                                  for w in piece.words or [] if w.word.strip()])
                if progress:
                    progress(min(1.0, (offset + piece.end) / duration_s), "transcribing")
        if not holds_speech(segments, duration_s, float(language_p)):
            raise NoSpeechError("no speech was found in the recording")
        if progress:
            progress(1.0, "transcribed")
        return Transcript(segments, language or "", float(language_p), duration_s, self.source.version, words)
def sentence_units(segments: list[Segment]) -> list[Segment]:
    """Regroups ASR segments into whole sentences; a sentence spans the segments it was spoken in.

    Whisper cuts segments by time, not grammar: one segment may hold three sentences, or half of one.
    """
    units, pending, pending_start = [], [], 0.0
    for i, seg in enumerate(segments):
        turn_ends = i + 1 < len(segments) and segments[i + 1].speaker != seg.speaker
        parts = sentences(seg.text)
        for j, part in enumerate(parts):
            if not pending:
                pending_start = seg.start
            pending.append(part)
            if part[-1] in ".!?" or (turn_ends and j == len(parts) - 1):  # no sentence runs into another's turn
                units.append(Segment(pending_start, seg.end, " ".join(pending), seg.speaker))
                pending = []
    if pending:
        units.append(Segment(pending_start, segments[-1].end, " ".join(pending), segments[-1].speaker))
    return units


