"""Audio in: validation before anything is stored, streaming decode, and the container headers read directly.

Validation runs before anything is written, so a bad upload leaves no file and no row behind.
Decoding streams through PyAV (the FFmpeg that faster-whisper already ships), so hour-long
recordings never sit in memory whole.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from storage.files import sha256_file

if TYPE_CHECKING:
    import av

SAMPLE_RATE = 16_000
# Peak level below which a recording counts as silent (-50 dBFS).
SILENCE_PEAK = 10 ** (-50 / 20)


class AudioError(ValueError):
    """A recording we cannot accept. The message is one line, meant for the user."""


@dataclass(frozen=True)
class AudioInfo:
    path: Path
    sha256: str
    size_bytes: int
    duration_s: float


def _fmt_duration(seconds: float) -> str:
    minutes, s = divmod(int(round(seconds)), 60)
    h, m = divmod(minutes, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


def _open(path: Path) -> av.container.InputContainer:
    import av  # PyAV only where audio is decoded: the model code that shares SAMPLE_RATE runs without it

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioError(f"{path.name}: not a readable audio file (unsupported format or corrupt data)") from exc
    if not container.streams.audio:
        container.close()
        raise AudioError(f"{path.name}: the file has no audio track")
    return container


def clean(samples: np.ndarray) -> np.ndarray:
    """NaN and infinite samples (a broken float file) become silence: one bad sample must neither
    hide the speech around it nor reach a model. Nothing else changes: a resampler's overshoot past
    full scale is sound, and clipping it changed Whisper's punctuation and so the notes."""
    return np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)


def decode(path: str | os.PathLike, block_s: float = 30.0, raw: bool = False) -> Iterator[np.ndarray]:
    """Yields the recording as 16 kHz mono float32 blocks of about `block_s` seconds, `clean`ed
    unless `raw`."""
    path = Path(path)
    import av

    emit = (lambda samples: samples) if raw else clean
    block = int(block_s * SAMPLE_RATE)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    pending: list[np.ndarray] = []
    n_pending = 0
    with _open(path) as container:
        try:
            frames = container.decode(container.streams.audio[0])
            for frame in itertools.chain(frames, [None]):  # None flushes the resampler
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    pending.append(samples)
                    n_pending += samples.size
                    if n_pending >= block:
                        joined = np.concatenate(pending)
                        yield emit(joined[:block])
                        pending, n_pending = [joined[block:]], joined.size - block
        except av.error.FFmpegError as exc:
            if n_pending:  # what decoded before the damage, so a caller can say how much there was
                yield emit(np.concatenate(pending))
            raise AudioError(f"{path.name}: corrupt audio data ({exc.strerror or exc})") from exc
    if n_pending:
        yield emit(np.concatenate(pending))


def read_samples(path: str | os.PathLike) -> np.ndarray:
    """The whole recording as one 16 kHz mono float32 array, for models that take it at once."""
    blocks = list(decode(path))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def wav_declared_s(path: Path) -> float | None:
    """The duration a RIFF/WAVE header declares (data chunk size / byte rate), or None.

    FFmpeg estimates a WAV's duration from the bytes present, so a WAV cut short looks complete to
    it; its own header still says how long it was meant to be."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        byte_rate = None
        while chunk := fh.read(8):
            if len(chunk) < 8:
                return None
            name, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if name == b"fmt ":
                fmt = fh.read(size)
                byte_rate = int.from_bytes(fmt[8:12], "little") if len(fmt) >= 12 else None
                fh.seek(size % 2, os.SEEK_CUR)
            elif name == b"data":
                # 0 and 0xFFFFFFFF mark a stream whose length was not known when the header was written
                return size / byte_rate if byte_rate and 0 < size < 0xFFFFFFFF else None
            else:
                fh.seek(size + size % 2, os.SEEK_CUR)
    return None


def ogg_ends_properly(path: Path) -> bool | None:
    """Whether an Ogg file ends with a whole end-of-stream page; None if it is not Ogg.

    An Ogg stream declares no total length, and FFmpeg decodes a cut one without complaint, so
    the last page is checked: a complete file's is whole and carries the end-of-stream flag."""
    with open(path, "rb") as fh:
        if fh.read(4) != b"OggS":
            return None
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - 70_000))  # a page is at most 65,307 bytes
        tail_start = fh.tell()
        tail = fh.read()
    last = tail.rfind(b"OggS")
    while last >= 0:
        page = tail[last:]
        if len(page) >= 27 and page[4] == 0:  # stream structure version 0: a real page header
            segments = page[26]
            if len(page) < 27 + segments:
                return False
            length = 27 + segments + sum(page[27 : 27 + segments])
            return len(page) >= length and bool(page[5] & 0x04) and tail_start + last + length == size
        last = tail.rfind(b"OggS", 0, last)
    return False


def declared_s(path: Path) -> float | None:
    """The duration the file's headers declare (the container's, or a WAV's data size), without
    decoding it; None when they declare none. Raises AudioError if it is not readable audio."""
    import av

    with _open(path) as container:
        declared = container.duration / av.time_base if container.duration else None
    return max(filter(None, (declared, wav_declared_s(path))), default=None)


def inspect_audio(path: str | os.PathLike, max_bytes: int, max_duration_s: float) -> AudioInfo:
    """Checks that `path` is a complete, non-silent recording within the limits, or raises AudioError."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(f"{path.name}: the file is empty")
    if size > max_bytes:
        raise AudioError(
            f"{path.name}: the file is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:g} MB"
        )
    declared = declared_s(path)
    too_long = f"; the limit is {_fmt_duration(max_duration_s)}"
    if declared and declared > max_duration_s:
        raise AudioError(f"{path.name}: the recording is {_fmt_duration(declared)} long{too_long}")

    truncated = f"{path.name}: the file looks truncated: it declares {{:.1f}} s but only {{:.1f}} s could be decoded"
    n_samples, n_invalid, peak = 0, 0, 0.0
    try:
        for block in decode(path, raw=True):
            n_samples += block.size
            n_invalid += int(block.size - np.isfinite(block).sum())
            peak = max(peak, float(np.abs(clean(block)).max(initial=0.0)))
            if n_samples / SAMPLE_RATE > max_duration_s:
                raise AudioError(f"{path.name}: the recording is longer than allowed{too_long}")
    except AudioError as exc:
        if declared and n_samples and "corrupt audio data" in str(exc):  # a cut FLAC fails at its cut
            raise AudioError(truncated.format(declared, n_samples / SAMPLE_RATE)) from exc
        raise
    duration = n_samples / SAMPLE_RATE
    if n_samples == 0:
        raise AudioError(f"{path.name}: the file holds no audio samples")
    # Encoders pad a little and container durations are rounded: 3% and 0.3 s of slack.
    if declared and duration < 0.97 * declared - 0.3:
        raise AudioError(truncated.format(declared, duration))
    if ogg_ends_properly(path) is False:
        raise AudioError(f"{path.name}: the file looks truncated: it ends before its last page "
                         f"(only {duration:.1f} s could be decoded)")
    if n_invalid > n_samples // 2:
        raise AudioError(f"{path.name}: most samples are not numbers (NaN or infinite): the file is broken")
    if peak < SILENCE_PEAK:
        raise AudioError(f"{path.name}: the recording is silent (no sound above -50 dBFS)")
    return AudioInfo(path=path, sha256=sha256_file(path), size_bytes=size, duration_s=duration)
