"""The student on the real packaged bases: the converted encoder matches CTranslate2's, checkpoints load."""

from __future__ import annotations

import ctranslate2
import numpy as np
import pytest
import torch

from models.sources import resolve_asr, resolve_audio_encoder
from models.student import (
    StudentConfig,
    StudentError,
    build_student,
    feature_extractor,
    instruction,
    load_audio_encoder,
    load_student,
)
from storage.audio import read_samples
from tests.conftest import MODEL_CACHE
from training.data.tts import synthesize

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    wav = synthesize("The budget for the redesign is approved.", tmp_path_factory.mktemp("s") / "s.wav")
    return read_samples(wav)


def test_converted_encoder_reproduces_the_ctranslate2_encoder(speech):
    encoder = load_audio_encoder(resolve_audio_encoder("base", MODEL_CACHE).path)
    padded = feature_extractor(80)(speech, sampling_rate=16_000, return_tensors="np").input_features  # 30 s, as CTranslate2 wants
    reference = ctranslate2.models.Whisper(resolve_asr("base", MODEL_CACHE).path, compute_type="float32")
    expected = np.array(reference.encode(ctranslate2.StorageView.from_array(padded), to_cpu=True))[0]
    with torch.no_grad():
        ours = encoder(torch.from_numpy(padded[0])).numpy()
    assert ours.shape == expected.shape == (1500, 512)
    assert np.abs(ours - expected).max() < 5e-3


def test_real_student_saves_and_loads_onto_the_cached_bases(speech, tmp_path):
    student = build_student(StudentConfig(), MODEL_CACHE)
    assert student.bases["encoder"].startswith("whisper-encoder-base") and len(student.bases["llm_sha256"]) == 64
    trainable = sum(p.numel() for p in student.trainable_parameters())
    assert 4_000_000 < trainable < 7_000_000  # projector (~4.8M with 8 stacked frames) + LoRA on q,k,v,o (~0.9M)
    checkpoint = student.save(tmp_path / "ckpt")
    assert sum(f.stat().st_size for f in checkpoint.rglob("*") if f.is_file()) < 30_000_000  # no base weights
    restored = load_student(checkpoint, MODEL_CACHE)
    cont = [student.tokenizer("The budget is approved.")["input_ids"]]
    with torch.no_grad():
        a = student.eval().continuation_logprobs([student.audio_embeddings(speech)], [instruction(None)], cont)[0]
        b = restored.continuation_logprobs([restored.audio_embeddings(speech)], [instruction(None)], cont)[0]
    assert torch.equal(a, b)
    with pytest.raises(StudentError, match="not a student checkpoint"):
        load_student(tmp_path, MODEL_CACHE)
