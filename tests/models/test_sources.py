import pytest

from models import sources
from models.sources import ModelSourceError, resolve_asr, resolve_llm


def test_local_dirs_and_hub_ids_pass_through(tmp_path):
    local = tmp_path / "my-whisper"
    local.mkdir()
    assert resolve_asr(str(local), tmp_path).path == str(local)
    assert resolve_llm("someorg/some-llm", tmp_path).path == "someorg/some-llm"
    assert resolve_llm("someorg/some-llm", tmp_path).version == "llm:someorg/some-llm"


def test_packaged_tiny_whisper_needs_no_conversion(tmp_path):
    source = resolve_asr("tiny.en", tmp_path)
    assert source.version.startswith("whisper-tiny.en")
    assert list(tmp_path.iterdir()) == []


def test_whisper_base_is_assembled_once_from_both_packages(tmp_path):
    source = resolve_asr("base", tmp_path)
    model = tmp_path / "whisper-base-ct2" / "model.bin"
    assert source.path == str(model.parent)
    assert model.stat().st_size == 2 * 72_608_766
    mtime = model.stat().st_mtime_ns
    resolve_asr("base", tmp_path)
    assert model.stat().st_mtime_ns == mtime  # second call reuses the cache


def test_a_crashed_conversion_leaves_nothing_behind(tmp_path):
    def crash(out):
        (out / "model.bin").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        sources._build_once(tmp_path / "model", crash)
    assert list(tmp_path.iterdir()) == []


def test_missing_package_gives_an_actionable_error():
    with pytest.raises(ModelSourceError, match="package no-such-dist is not installed"):
        sources._dist_file("no-such-dist", "x")
