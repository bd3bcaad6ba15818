"""More than 100 bad recordings through the real `speechsum summarize`, on SQLite and PostgreSQL:
random bytes, wrong contents behind audio extensions, empty files, containers cut short, noise,
silence, tones, odd sample rates and channel counts. Each must end in a one-line error (exit 1, no
traceback) and leave no row and no stored file behind."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from app.cli import EXIT_BAD_INPUT, main
from tests.conftest import stored_files, table_counts
from tests.storage.conftest import postgres_server, postgres_url, settings  # noqa: F401 (fixtures)
from training.data.tts import synthesize

pytestmark = pytest.mark.real
SPEECH = ("We agreed to spend forty thousand dollars on the redesign. Tom will lead the interviews next "
          "Monday, and the launch moves to the fifteenth of May.")
CONTAINERS = {".wav": ("pcm_s16le", "wav", None), ".mp3": ("libmp3lame", "mp3", None),
              ".flac": ("flac", "flac", None), ".ogg": ("libopus", "ogg", 48_000),
              ".webm": ("libopus", "webm", 48_000), ".m4a": ("aac", "ipod", None)}


def encode(samples: np.ndarray, path: Path, rate: int = 16_000, channels: int = 1) -> Path:
    """`samples` (mono float32 at `rate`) in the container and codec of `path`'s suffix."""
    codec, fmt, codec_rate = CONTAINERS[path.suffix]
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels]
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=codec_rate or rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(np.tile(samples.astype(np.float32), (channels, 1)), format="fltp",
                                           layout=layout)
        frame.sample_rate = rate
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout,
                                      rate=codec_rate or rate)
        for f in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def noise(seconds: float, rate: int, kind: str, amplitude: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(int(seconds * rate))
    shaped = {"white": white, "brown": np.cumsum(white), "pink": np.convolve(white, np.ones(8) / 8, "same")}[kind]
    return (amplitude * shaped / (np.abs(shaped).max() + 1e-9)).astype(np.float32)


def bad_files(root: Path) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []

    def add(name: str, data: bytes) -> None:
        (root / name).write_bytes(data)
        files.append(root / name)

    rng = np.random.default_rng(0)
    for ext in CONTAINERS:
        add(f"empty{ext}", b"")
    for i, size in enumerate((1, 10, 100, 1_000, 10_000, 50_000, 200_000, 44, 4_096, 65_536, 123_457, 300)):
        add(f"random{i}{list(CONTAINERS)[i % 6]}", rng.bytes(size))
    add("notes.mp3", b"Meeting notes: the budget is approved.\n" * 50)
    add("data.ogg", b'{"not": "audio"}' * 100)
    add("picture.wav", b"\x89PNG\r\n\x1a\n" + rng.bytes(5_000))
    add("archive.m4a", b"PK\x03\x04" + rng.bytes(5_000))
    add("page.webm", b"<!doctype html><html><body>hello</body></html>" * 40)
    add("document.flac", b"%PDF-1.7\n" + rng.bytes(5_000))
    add("header-only.wav", _wav_header(0))
    for magic, ext in ((b"RIFF\x24\x00\x00\x00WAVE", ".wav"), (b"ID3\x04\x00\x00", ".mp3"), (b"fLaC", ".flac"),
                       (b"OggS\x00\x02", ".ogg"), (b"\x1aE\xdf\xa3", ".webm"), (b"\x00\x00\x00\x20ftypM4A ", ".m4a")):
        add(f"magic-then-garbage{ext}", magic + rng.bytes(20_000))
    add("header-then-garbage.wav", _wav_header(32_000) + rng.bytes(500))

    from storage.audio import read_samples

    speech = read_samples(synthesize(SPEECH, root / "speech-source.wav.tmp", "flite"))
    (root / "speech-source.wav.tmp").unlink()
    for ext in CONTAINERS:
        whole = encode(speech, root / f"whole{ext}").read_bytes()
        (root / f"whole{ext}").unlink()
        for fraction in (0.3, 0.6, 0.9):
            add(f"cut{int(fraction * 100)}{ext}", whole[: int(len(whole) * fraction)])

    made = [  # (name, samples, rate, channels)
        *[(f"silence{i}{ext}", np.zeros(rate * 3, np.float32), rate, ch) for i, (ext, rate, ch) in enumerate(
            [(".wav", 8_000, 1), (".mp3", 16_000, 2), (".flac", 44_100, 1), (".ogg", 48_000, 2), (".webm", 48_000, 1),
             (".m4a", 22_050, 2), (".wav", 96_000, 6), (".flac", 11_025, 2)])],
        *[(f"hiss{i}{ext}", noise(3, rate, "white", 10 ** (-70 / 20), i), rate, 1) for i, (ext, rate) in enumerate(
            [(".wav", 16_000), (".mp3", 44_100), (".flac", 8_000), (".m4a", 48_000)])],
        *[(f"{kind}-noise{i}{ext}", noise(4, rate, kind, amp, i), rate, ch)
          for i, (kind, amp, ext, rate, ch) in enumerate(
              [(k, a, e, r, c) for k in ("white", "pink", "brown") for a, e, r, c in
               [(0.05, ".wav", 16_000, 1), (0.3, ".mp3", 44_100, 2), (0.9, ".flac", 8_000, 1),
                (0.2, ".ogg", 48_000, 1), (0.5, ".webm", 48_000, 2), (0.1, ".m4a", 22_050, 1),
                (0.6, ".wav", 11_025, 6), (0.4, ".wav", 96_000, 2)]])],
        *[(f"tone{i}{ext}", (0.3 * np.sin(2 * np.pi * hz * np.arange(rate * 3) / rate)).astype(np.float32), rate, 1)
          for i, (hz, ext, rate) in enumerate([(50, ".wav", 16_000), (440, ".mp3", 44_100), (1_000, ".flac", 8_000),
                                               (3_000, ".ogg", 48_000)])],
        *[(f"blip{i}.wav", noise(0.05, 16_000, "white", 0.5, i), 16_000, 1) for i in range(4)],
    ]
    for name, samples, rate, channels in made:
        files.append(encode(samples, root / name, rate, channels))
    for i, (ext, wrong) in enumerate([(".mp3", ".wav"), (".flac", ".mp3"), (".ogg", ".m4a"), (".webm", ".ogg"),
                                      (".m4a", ".flac"), (".wav", ".webm"), (".mp3", ".txt"), (".wav", ".bin")]):
        made_as = encode(noise(3, 16_000, "white", 0.3, 100 + i), root / f"renamed{i}{ext}")
        files.append(made_as.rename(made_as.with_suffix(wrong)))  # a real container behind the wrong name
    return files


def _wav_header(data_bytes: int) -> bytes:
    fmt = (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (16_000).to_bytes(4, "little") + \
        (32_000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    return b"RIFF" + (36 + data_bytes).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little") + fmt + \
        b"data" + data_bytes.to_bytes(4, "little")


def test_over_a_hundred_bad_files_are_refused_in_one_line_and_store_nothing(settings, capsys, tmp_path):  # noqa: F811
    files = bad_files(tmp_path / "bad")
    assert len(files) >= 100
    accepted, noisy = [], []
    for path in files:
        with pytest.raises(SystemExit) as exit_info:
            main(["summarize", str(path), "--json"])
        out = capsys.readouterr()
        lines = out.err.strip().splitlines()
        if exit_info.value.code != EXIT_BAD_INPUT:
            accepted.append((path.name, out.out[:200]))
        elif not lines or not lines[-1].startswith("speechsum: error: ") or "Traceback" in out.err:
            noisy.append((path.name, out.err[-300:]))
    assert accepted == [] and noisy == []
    assert set(table_counts(settings).values()) == {0}
    assert stored_files(settings) == []
