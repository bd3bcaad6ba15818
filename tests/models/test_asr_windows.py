import numpy as np

from models.asr import windows

SR = 1000  # a small rate keeps the arrays small; the logic is rate-independent


def blocks_of(signal: np.ndarray, size: int):
    for i in range(0, signal.size, size):
        yield signal[i : i + size]


def test_windows_cover_the_stream_exactly_once():
    signal = np.random.default_rng(0).normal(size=SR * 95).astype(np.float32)
    parts = list(windows(blocks_of(signal, 777), window_s=20, search_s=3, sr=SR))
    assert np.array_equal(np.concatenate([p for _, p in parts]), signal)
    offsets = [o for o, _ in parts]
    assert offsets == [sum(p.size for _, p in parts[:i]) / SR for i in range(len(parts))]
    assert all(17 <= p.size / SR <= 23 for _, p in parts[:-1])


def test_windows_cut_in_the_quiet_gap():
    loud = np.ones(SR * 30, dtype=np.float32)
    loud[int(21.5 * SR) : int(22.0 * SR)] = 0.0  # a pause 1.5 s after the nominal 20 s end
    (first_offset, first), (second_offset, _) = list(windows(blocks_of(loud, 1000), window_s=20, search_s=3, sr=SR))
    assert first_offset == 0.0
    assert 21.5 <= first.size / SR <= 22.0
    assert second_offset == first.size / SR


def test_short_audio_is_one_window():
    signal = np.ones(SR * 5, dtype=np.float32)
    assert [(o, p.size) for o, p in windows([signal], window_s=20, search_s=3, sr=SR)] == [(0.0, SR * 5)]
