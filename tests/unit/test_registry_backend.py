"""Where the registry lives, decided from settings alone (no MLflow import)."""

from __future__ import annotations

from pathlib import Path

from docs_assistant.config import load_settings
from docs_assistant.registry import mlflow_key
from docs_assistant.registry.backend import backend_of


def test_embedded_default_is_absolute_under_the_state_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    backend = backend_of(load_settings(paths={"state_dir": "var"}))
    database = tmp_path.resolve() / "var" / "mlflow" / "mlflow.db"
    assert backend.tracking_uri == f"sqlite:///{database}"
    assert backend.database == database
    assert backend.artifact_location == (tmp_path.resolve() / "var" / "mlflow" / "artifacts").as_uri()
    assert backend.embedded


def test_a_server_keeps_its_own_artifact_store_unless_one_is_named(tmp_path: Path) -> None:
    server = backend_of(load_settings(registry={"tracking_uri": "http://mlflow.internal:5000"}))
    assert server.tracking_uri == "http://mlflow.internal:5000"
    assert server.artifact_location is None
    assert not server.embedded
    named = backend_of(
        load_settings(registry={"tracking_uri": "http://mlflow.internal:5000", "artifact_dir": str(tmp_path)})
    )
    assert named.artifact_location == tmp_path.resolve().as_uri()


def test_mlflow_tracking_uri_names_the_server_unless_the_setting_does(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://from-env:5000")  # finetune.yml's tracking-uri secret
    assert backend_of(load_settings()).tracking_uri == "http://from-env:5000"
    setting = load_settings(registry={"tracking_uri": "http://mlflow.internal:5000"})
    assert backend_of(setting).tracking_uri == "http://mlflow.internal:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")  # an unset secret reaches the environment as ''
    assert backend_of(load_settings()).embedded


def test_keys_keep_to_what_mlflow_accepts() -> None:
    assert mlflow_key("prompt.rag-answer@1.hash") == "prompt.rag-answer_1.hash"
    assert mlflow_key("data.qa.version") == "data.qa.version"
    assert mlflow_key("a:b c/d") == "a_b c/d"
