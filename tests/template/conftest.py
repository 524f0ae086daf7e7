"""Fixtures for the template: a clean copy of this working tree (what `gh:OWNER/REPO` would clone)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from ..repo_copy import REPO, copy_repo  # noqa: TID252 - the one repository-copy helper

DEFAULT_NAMES = ("Docs Assistant", "docs-assistant", "docs_assistant", "DOCS_ASSISTANT", "docs assistant")
ZETA = {
    "project_name": "Zeta Bot",
    "description": "Answers questions about Zeta.",
    "author_name": "Zed Zeta",
    "author_email": "zed@zeta.example",
    "github_owner": "zeta-org",
    "workflows_repo": "acme/llmops-template",
    "workflows_ref": "v3",
    "container_registry": "registry.zeta.example/ml",
}


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_repo(tmp_path_factory.mktemp("template") / "docs-assistant-template")


def load_hook(name: str) -> ModuleType:
    path = REPO / "hooks" / f"{name}.py"
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def render(template: Path, output: Path, **answers: str) -> Path:
    from cookiecutter.main import cookiecutter

    return Path(cookiecutter(str(template), no_input=True, output_dir=str(output), extra_context=answers))


def files_of(project: Path) -> dict[str, str]:
    """Every text file of a generated project (git's own files excluded)."""
    texts = {}
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.relative_to(project).parts:
            try:
                texts[path.relative_to(project).as_posix()] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                texts[path.relative_to(project).as_posix()] = ""
    return texts
