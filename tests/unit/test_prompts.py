from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from docs_assistant.errors import PromptError
from docs_assistant.rag.prompts import PromptRegistry, load_prompt

REPO = Path(__file__).resolve().parents[2]


def write_prompt(directory: Path, name: str, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(body, encoding="utf-8")
    return path


def test_shipped_prompts_load_and_render() -> None:
    registry = PromptRegistry.load(REPO / "prompts")
    prompt = registry.get("rag-answer", "1")
    text = prompt.render(context="CTX", question="Q?")
    assert "CTX" in text
    assert "Q?" in text
    assert len(prompt.hash) == 64
    assert {p.version for p in registry} >= {"1", "2"}


def test_hash_changes_with_template(tmp_path: Path) -> None:
    a = load_prompt(write_prompt(tmp_path, "a.toml", 'id="x"\nversion="1"\nparameters=["q"]\ntemplate="{q}"\n'))
    b = load_prompt(write_prompt(tmp_path, "b.toml", 'id="x"\nversion="1"\nparameters=["q"]\ntemplate="Q: {q}"\n'))
    assert a.hash != b.hash


def test_unknown_version_lists_available() -> None:
    registry = PromptRegistry.load(REPO / "prompts")
    with pytest.raises(PromptError) as err:
        registry.get("rag-answer", "99")
    assert "unknown prompt rag-answer v99" in str(err.value)
    assert "rag-answer v1" in str(err.value)
    assert "DOCS_ASSISTANT_PROMPT__VERSION" in str(err.value)


def test_template_variable_not_declared_names_the_file(tmp_path: Path) -> None:
    path = write_prompt(
        tmp_path, "p.toml", 'id="p"\nversion="1"\nparameters=["question"]\ntemplate="{context} {question}"\n'
    )
    with pytest.raises(PromptError) as err:
        load_prompt(path)
    assert "undeclared variables ['context']" in str(err.value)
    assert str(path) in str(err.value)


def test_declared_parameter_missing_from_template(tmp_path: Path) -> None:
    path = write_prompt(
        tmp_path, "p.toml", 'id="p"\nversion="1"\nparameters=["question","context"]\ntemplate="{question}"\n'
    )
    with pytest.raises(PromptError, match="not used by the template"):
        load_prompt(path)


def test_render_without_a_variable_is_an_error(tmp_path: Path) -> None:
    prompt = load_prompt(write_prompt(tmp_path, "p.toml", 'id="p"\nversion="1"\nparameters=["q"]\ntemplate="{q}"\n'))
    with pytest.raises(PromptError, match=r"missing values for \['q'\]"):
        prompt.render()


def test_missing_key_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="missing key 'template'"):
        load_prompt(write_prompt(tmp_path, "a.toml", 'id="p"\nversion="1"\nparameters=[]\n'))
    with pytest.raises(PromptError, match="not valid TOML"):
        load_prompt(write_prompt(tmp_path, "b.toml", "id = \n"))


def test_duplicate_versions_are_rejected(tmp_path: Path) -> None:
    shutil.copy(REPO / "prompts" / "rag-answer.v1.toml", tmp_path / "a.toml")
    shutil.copy(REPO / "prompts" / "rag-answer.v1.toml", tmp_path / "b.toml")
    with pytest.raises(PromptError, match="duplicate prompt"):
        PromptRegistry.load(tmp_path)


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="no prompt files"):
        PromptRegistry.load(tmp_path)
