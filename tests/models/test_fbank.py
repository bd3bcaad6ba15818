"""The diarizer's Kaldi features in torch, for CPUs senko's native extractor cannot run on."""

from __future__ import annotations

import math

import numpy as np
import torch

from models.fbank import BINS, KaldiFbank, native_extractor_runs


def kaldi_reference(wave: np.ndarray) -> np.ndarray:
    """Kaldi's fbank written out frame by frame, the way feature-fbank.cc reads (float64, loops)."""
    def mel(hz):
        return 1127.0 * math.log(1.0 + hz / 700.0)

    low, high = mel(20.0), mel(8000.0)
    delta = (high - low) / (BINS + 1)
    banks = np.zeros((BINS, 257))
    for b in range(BINS):
        left, center, right = low + b * delta, low + (b + 1) * delta, low + (b + 2) * delta
        for k in range(256):
            m = mel(k * 16000 / 512)
            if left < m < right:
                banks[b, k] = (m - left) / (center - left) if m <= center else (right - m) / (right - center)
    window = np.array([(0.5 - 0.5 * math.cos(2 * math.pi * i / 399)) ** 0.85 for i in range(400)])
    rows = []
    for start in range(0, len(wave) - 400 + 1, 160):
        frame = wave[start : start + 400].astype(np.float64)
        frame = frame - frame.mean()
        frame = np.array([frame[i] - 0.97 * frame[max(i - 1, 0)] for i in range(400)])
        spectrum = np.abs(np.fft.rfft(frame * window, 512)) ** 2
        rows.append(np.log(np.maximum(banks @ spectrum, np.finfo(np.float32).eps)))
    return np.array(rows)


def test_the_features_are_kaldis_fbank_with_senkos_options():
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(8000)).astype(np.float32)
    (found,) = KaldiFbank()([torch.from_numpy(wave)])
    expected = kaldi_reference(wave)
    assert found.shape == (1 + (8000 - 400) // 160, BINS) == expected.shape
    np.testing.assert_allclose(found.numpy(), expected, atol=2e-3)
    assert int(found.mean(0).argmax()) == int(expected.mean(0).argmax())  # the 440 Hz tone's bin
    assert KaldiFbank()([torch.zeros(399)])[0].shape == (0, BINS)  # shorter than a frame: no frame


def test_the_native_extractor_is_used_only_where_the_cpu_has_avx512(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu sse2 avx avx2 fma\n")
    assert not native_extractor_runs(info)
    info.write_text("processor : 0\nflags : fpu avx2 avx512f avx512dq avx512bw avx512vl avx512cd\n")
    assert native_extractor_runs(info)
    assert not native_extractor_runs(tmp_path / "missing")
