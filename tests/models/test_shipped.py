"""Shipped versions: released from the registry in bf16, registered and served by `db upgrade`, refused on other bases."""

from __future__ import annotations

import json

import pytest
import torch

from models.shipped import MANIFEST, install, release
from storage import registry
from storage.db import session_scope
from tests.helpers.tiny import registered_student


@pytest.fixture
def shipped(settings, tmp_path):
    """A tiny student registered, then released into a folder of its own."""
    student = registered_student(settings, tmp_path, name="sft-tiny", stage="sft", serve=False)
    (folder,) = release(settings, ["sft-tiny"], tmp_path / "shipped")
    return student, folder


def test_a_release_holds_bf16_trained_parts_and_a_manifest(shipped):
    student, folder = shipped
    manifest = json.loads((folder / MANIFEST).read_text())
    assert (manifest["version"], manifest["kind"], manifest["stage"]) == ("sft-tiny", "student", "sft")
    assert manifest["bases"] == student.bases and set(manifest["files"]) >= {"projector.safetensors", "manifest.json"}
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(folder / "projector.safetensors").values()} == {torch.bfloat16}


def test_a_fresh_install_registers_and_serves_the_shipped_version_once(settings, tmp_path, shipped):
    student, folder = shipped
    fresh = settings.model_copy(update={"data_dir": tmp_path / "fresh", "database_url": ""})
    said = install(fresh, folder.parent, bases=lambda kind: student.bases)
    assert said == ["serving shipped student sft-tiny"]
    assert install(fresh, folder.parent, bases=lambda kind: student.bases) == []  # a second upgrade changes nothing
    with session_scope(fresh.db_url) as session:
        served = registry.served(session, "student")
        (promotion,) = registry.history(session, "student")
        assert (served.name, promotion.reason, promotion.actor) == ("sft-tiny", "shipped", "db upgrade")
    loaded = student.load_weights(folder)  # the bf16 parts load into the fp32 student
    assert loaded.projector.state_dict().keys() == student.projector.state_dict().keys()


def test_shipped_versions_are_refused_on_other_base_weights_and_on_changed_files(settings, tmp_path, shipped):
    student, folder = shipped
    fresh = settings.model_copy(update={"data_dir": tmp_path / "fresh", "database_url": ""})
    key = sorted(student.bases)[-1]
    other = student.bases | {key: "f" * 64}
    (line,) = install(fresh, folder.parent, bases=lambda kind: other)
    assert line.startswith(f"shipped student sft-tiny refused: trained on other base weights ({key} ")
    assert line.endswith("the raw cascade serves") and "\n" not in line
    (folder / "projector.safetensors").write_bytes(b"changed")
    (line,) = install(fresh, folder.parent, bases=lambda kind: student.bases)
    assert "its files do not match" in line
    with session_scope(fresh.db_url) as session:
        assert registry.served(session, "student") is None and registry.versions(session) == []


def test_a_shipped_aligned_student_registers_for_training_and_is_never_served(settings, tmp_path):
    """Alignment only teaches the student to transcribe: shipped, it saves a fresh install's training
    that stage, and the chain finds it as the newest aligned student, but it writes no summary to serve."""
    student = registered_student(settings, tmp_path, name="align-tiny", stage="align", serve=False)
    (folder,) = release(settings, ["align-tiny"], tmp_path / "shipped")
    fresh = settings.model_copy(update={"data_dir": tmp_path / "fresh", "database_url": ""})
    said = install(fresh, folder.parent, bases=lambda kind: student.bases)
    assert said == ["registered shipped aligned student align-tiny: training starts from it"]
    assert install(fresh, folder.parent, bases=lambda kind: student.bases) == []
    with session_scope(fresh.db_url) as session:
        assert registry.served(session, "student") is None and registry.history(session, "student") == []
        assert registry.latest(session, "student", "align").name == "align-tiny"


def test_a_teacher_ships_with_the_hash_of_the_lm_it_adapts_and_is_refused_on_another(settings, tmp_path):
    """A teacher records only its LM's version; the release adds that LM's sha256 from the installed
    one, and a fresh install with other weights of the same name refuses it."""
    from safetensors.torch import save_file

    checkpoint = tmp_path / "teacher-tiny"
    checkpoint.mkdir()
    save_file({"lora_A": torch.ones(4, 2)}, checkpoint / "adapter_model.safetensors")
    with session_scope(settings.db_url) as session:
        registry.register(session, name="teacher-tiny", kind="teacher", stage="teacher", checkpoint=checkpoint,
                          bases={"llm": "qwen (part1 0.2.0)"})
    installed = {"llm": "qwen (part1 0.2.0)", "llm_sha256": "a" * 64}
    (folder,) = release(settings, ["teacher-tiny"], tmp_path / "shipped", hashes=lambda kind: installed)
    assert json.loads((folder / MANIFEST).read_text())["bases"] == installed

    fresh = settings.model_copy(update={"data_dir": tmp_path / "fresh", "database_url": ""})
    (line,) = install(fresh, folder.parent, bases=lambda kind: installed | {"llm_sha256": "b" * 64})
    assert line.startswith("shipped teacher teacher-tiny refused: trained on other base weights (llm_sha256 ")
    assert install(fresh, folder.parent, bases=lambda kind: installed) == ["serving shipped teacher teacher-tiny"]


@pytest.mark.real
def test_the_released_teacher_serves_a_fresh_install_of_the_packaged_lm_and_not_the_light_one(tmp_path):
    """The repository's own release: `db upgrade` on an empty data dir checks it against the
    installed packaged LM and serves it; configured with the light LM, the same upgrade refuses it."""
    import os
    import subprocess

    from models.shipped import SHIPPED
    from tests.conftest import SPEECHSUM, speechsum_env

    (teacher,) = [p.parent.name for p in SHIPPED.glob(f"teacher-*/{MANIFEST}")]
    upgrade = lambda env: subprocess.run([SPEECHSUM, "db", "upgrade"], env=os.environ | env, text=True,  # noqa: E731
                                         capture_output=True, check=True).stdout
    light = speechsum_env(tmp_path / "light")
    (refused,) = [line for line in upgrade(light).splitlines() if line.startswith(f"shipped teacher {teacher}")]
    assert refused.startswith(f"shipped teacher {teacher} refused: trained on other base weights (llm ")
    fresh = speechsum_env(tmp_path / "fresh")
    del fresh["SPEECHSUM_LLM_MODEL"]  # the default: the packaged Qwen2.5-Coder-1.5B
    assert f"serving shipped teacher {teacher}" in upgrade(fresh).splitlines()
    listed = subprocess.run([SPEECHSUM, "models", "list"], env=os.environ | fresh, text=True, capture_output=True,
                            check=True).stdout
    assert any(line.split()[:4] == [teacher, "teacher", "teacher", "served"] for line in listed.splitlines())


@pytest.mark.real
def test_the_shipped_aligned_student_loads_onto_the_packaged_bases_and_still_hears(tmp_path):
    """Its bf16 projector and adapter load onto the installed Whisper encoder and SmolLM2, and it
    transcribes meeting talk it never trained on, spoken by Piper: greedy, 17% WER on these three
    sentences on 2026-12-01 (the same words as its fp32 checkpoint); a projector that no longer
    fits gives no sentence back."""
    from models.llm import Decoding
    from models.shipped import SHIPPED
    from models.student import TRANSCRIBE, load_student
    from storage.audio import read_samples
    from tests.conftest import MODEL_CACHE
    from training.data.tts import synthesize
    from training.metrics import word_error_rate

    (folder,) = [p.parent for p in SHIPPED.glob(f"align-*/{MANIFEST}")]
    student = load_student(folder, MODEL_CACHE).eval()
    said = ["I think we should go with the rubber case because it is cheaper.",
            "So the remote control should have fewer buttons and a simple design.",
            "We need to decide on the budget before the next meeting."]
    heard = []
    for i, text in enumerate(said):
        samples = read_samples(synthesize(text, tmp_path / f"{i}.wav", "piper"))
        with torch.no_grad():
            heard += [g.text for g in student.generate([samples], [TRANSCRIBE], Decoding(max_new_tokens=48))]
    assert word_error_rate(said, heard) < 0.35, heard
