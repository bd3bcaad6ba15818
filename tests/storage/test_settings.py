from pathlib import Path

import pytest

from storage.settings import load_settings


def test_defaults_point_into_the_data_dir(tmp_path):
    s = load_settings({"SPEECHSUM_DATA_DIR": str(tmp_path)})
    assert s.db_url == f"sqlite:///{tmp_path / 'speechsum.db'}"
    assert s.models_dir == tmp_path / "models"
    assert (s.asr_model, s.llm_model) == ("base", "qwen2.5-coder-1.5b-instruct")


def test_environment_overrides_toml(tmp_path):
    config = tmp_path / "speechsum.toml"
    config.write_text('asr_model = "tiny.en"\nport = 9000\nmax_upload_mb = 12.5\n')
    s = load_settings({"SPEECHSUM_CONFIG": str(config), "SPEECHSUM_PORT": "9100",
                       "DATABASE_URL": "postgresql://db/speechsum"})
    assert (s.asr_model, s.port, s.max_upload_mb) == ("tiny.en", 9100, 12.5)
    assert s.max_upload_bytes == int(12.5 * 2**20)
    assert s.db_url == "postgresql://db/speechsum"


def test_keyword_overrides_win_and_none_is_ignored(tmp_path):
    s = load_settings({"SPEECHSUM_DATA_DIR": str(tmp_path), "SPEECHSUM_ASR_MODEL": "tiny.en"},
                      asr_model=None, port=1234)
    assert (s.asr_model, s.port, s.data_dir) == ("tiny.en", 1234, Path(tmp_path))


def test_unknown_toml_keys_are_an_error(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('asr_modle = "base"\n')
    with pytest.raises(ValueError, match="c.toml: asr_modle: unknown setting"):
        load_settings({"SPEECHSUM_CONFIG": str(config)})


@pytest.mark.parametrize("name, value", [("SPEECHSUM_WORKER", "maybe"), ("SPEECHSUM_LOCAL_ADMIN", "ja"),
                                         ("SPEECHSUM_PORT", "78x"), ("SPEECHSUM_MAX_UPLOAD_MB", "lots"),
                                         ("SPEECHSUM_REFRESH_MARGIN", "-1")])
def test_a_bad_value_is_refused_with_the_variables_name(name, value):
    with pytest.raises(ValueError, match=f"{name}: .*got '{value}'"):
        load_settings({name: value})


def test_booleans_read_the_usual_spellings():
    for off in ("0", "false", "no", "off", "False"):
        assert load_settings({"SPEECHSUM_WORKER": off}).worker is False
    for on in ("1", "true", "yes", "on"):
        assert load_settings({"SPEECHSUM_LOCAL_ADMIN": on}).local_admin is True
