from __future__ import annotations

from pathlib import Path

import pytest

from docs_assistant.config import CONFIG_FILE_ENV, load_settings
from docs_assistant.errors import ConfigError


def test_defaults_are_the_embedded_stack() -> None:
    settings = load_settings()
    assert settings.model.backend == "local"
    assert settings.model.name == "tiny-random-llama"
    assert settings.embedding.model == "all-MiniLM-L6-v2"
    assert settings.retrieval.top_k == 5
    assert settings.model.trust_remote_code is False


def test_environment_overrides_nested_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCS_ASSISTANT_RETRIEVAL__TOP_K", "8")
    monkeypatch.setenv("DOCS_ASSISTANT_RETRIEVAL__REFINE_FACTOR", "3")
    settings = load_settings()
    assert settings.retrieval.top_k == 8
    assert settings.retrieval.refine_factor == 3


def test_bad_value_names_setting_env_var_and_allowed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCS_ASSISTANT_RETRIEVAL__METRIC", "hamming")
    with pytest.raises(ConfigError) as err:
        load_settings()
    text = str(err.value)
    assert "retrieval.metric" in text
    assert "DOCS_ASSISTANT_RETRIEVAL__METRIC" in text
    assert "'cosine', 'l2' or 'dot'" in text
    assert "hamming" in text


def test_remote_code_cannot_be_switched_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCS_ASSISTANT_MODEL__TRUST_REMOTE_CODE", "true")
    with pytest.raises(ConfigError, match=r"model\.trust_remote_code"):
        load_settings()


def test_toml_file_is_read_and_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "conf.toml"
    config.write_text("[retrieval]\ntop_k = 3\nnprobes = 7\n", encoding="utf-8")
    monkeypatch.setenv(CONFIG_FILE_ENV, str(config))
    monkeypatch.setenv("DOCS_ASSISTANT_RETRIEVAL__TOP_K", "4")
    settings = load_settings()
    assert settings.retrieval.nprobes == 7
    assert settings.retrieval.top_k == 4


def test_unknown_key_in_file_names_file_and_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "conf.toml"
    config.write_text("[retrieval]\ntopk = 3\n", encoding="utf-8")
    monkeypatch.setenv(CONFIG_FILE_ENV, str(config))
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "retrieval.topk" in str(err.value)
    assert "unknown setting" in str(err.value)
    assert str(config) in str(err.value)


def test_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CONFIG_FILE_ENV, str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match=CONFIG_FILE_ENV):
        load_settings()


def test_chunk_overlap_must_be_smaller_than_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCS_ASSISTANT_CHUNKING__OVERLAP", "500")
    with pytest.raises(ConfigError, match="chunking"):
        load_settings()


def test_secret_files_are_read_below_environment_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # what a swarm deploy mounts: /run/secrets/<the environment variable the secret stands for>
    (tmp_path / "DOCS_ASSISTANT_SERVE__API_KEYS").write_text('["from-a-secret"]\n', encoding="utf-8")
    (tmp_path / "DOCS_ASSISTANT_RETRIEVAL__TOP_K").write_text("7", encoding="utf-8")
    (tmp_path / "unrelated").write_text("x", encoding="utf-8")
    monkeypatch.setenv("DOCS_ASSISTANT_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("DOCS_ASSISTANT_RETRIEVAL__TOP_K", "9")
    settings = load_settings()
    assert [key.get_secret_value() for key in settings.serve.api_keys] == ["from-a-secret"]
    assert settings.retrieval.top_k == 9  # a real environment variable wins
