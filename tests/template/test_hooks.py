"""The hook helpers, unit by unit (cookiecutter-django's tests/test_hooks.py habit)."""

from __future__ import annotations

import pytest

from .conftest import load_hook


@pytest.fixture(scope="module")
def pre_prompt():
    return load_hook("pre_prompt")


@pytest.fixture(scope="module")
def pre_gen():
    return load_hook("pre_gen_project")


def test_existing_jinja_and_github_expressions_are_escaped(pre_prompt) -> None:
    from jinja2 import Environment

    text = 'run: echo ${{ github.sha }} {% raw %} {# c #} }} x = {"a": {}} {{{ y }}} f"{{{z}}}"'
    escaped = pre_prompt.escape_jinja(text)
    assert Environment().from_string(escaped).render() == text


def test_names_become_variables(pre_prompt) -> None:
    out = pre_prompt.templatize("import docs_assistant  # Docs Assistant, docs-assistant, DOCS_ASSISTANT_X", "a.py")
    assert "docs" not in out.lower().replace("cookiecutter", "")
    assert "{{ cookiecutter.package_name }}" in out
    assert "{{ cookiecutter.project_name | quoted }}" in out  # free text inside Python: escaped
    assert "{{ cookiecutter.project_name }}" in pre_prompt.templatize("# Docs Assistant", "README.md")  # as typed
    assert "{{ cookiecutter.project_slug }}" in out
    assert "{{ cookiecutter.package_name.upper() }}_X" in out


def test_local_workflow_calls_are_pointed_at_the_template_repository(pre_prompt) -> None:
    text = "jobs:\n  tests:\n    uses: ./.github/workflows/tests.yml\n    with:\n      x: ${{ inputs.x }}\n"
    out = pre_prompt.templatize(text, ".github/workflows/ci.yml")
    assert "uses: {{ cookiecutter.workflows_repo }}/.github/workflows/tests.yml@{{ cookiecutter.workflows_ref }}" in out
    assert "{{ '${{' }}" not in out  # escaping works per marker, not per '$'
    assert "{{ '{{' }} inputs.x {{ '}}' }}" in out


def test_paths_are_renamed_and_skipped(pre_prompt) -> None:
    assert pre_prompt.rename("src/docs_assistant/cli.py") == "src/{{cookiecutter.package_name}}/cli.py"
    for skipped in (".git/config", ".venv/bin/python", "hooks/pre_prompt.py", "tests/template/x.py", "a/__pycache__/b"):
        assert pre_prompt.skipped(skipped), skipped
    for kept in ("src/docs_assistant/cli.py", "tests/unit/test_config.py", ".github/workflows/ci.yml", "noxw"):
        assert not pre_prompt.skipped(kept), kept


def answers(**overrides: str) -> dict[str, str]:
    base = {
        "project_name": "Zeta Bot",
        "project_slug": "zeta-bot",
        "package_name": "zeta_bot",
        "author_email": "a@b.c",
        "github_owner": "zeta-org",
        "workflows_repo": "acme/llmops-template",
        "workflows_ref": "v1",
        "container_registry": "ghcr.io/zeta-org",
        "base_model": "tiny-random-llama",
        "base_model_revision": "",
    }
    return base | overrides


def test_good_answers_pass(pre_gen) -> None:
    assert pre_gen.problems(answers()) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("package_name", "zeta-bot", "must be a lowercase ASCII Python identifier"),
        ("package_name", "class", "must be a lowercase ASCII Python identifier"),
        ("package_name", "tests", "clashes with the project's tests/ directory"),
        ("project_slug", "z" * 48, "at most 47"),
        ("project_slug", "Zeta Bot", "project_slug"),
        ("workflows_repo", "no-slash", "expected OWNER/REPO"),
        ("container_registry", "GHCR.IO/Upper", "container_registry"),
        ("base_model_revision", "main", "commit hash"),
        ("author_email", "nobody", "not an email"),
    ],
)
def test_bad_answers_are_named(pre_gen, field: str, value: str, message: str) -> None:
    found = pre_gen.problems(answers(**{field: value}))
    assert len(found) == 1
    assert found[0].startswith(field)
    assert message in found[0]


def test_hub_model_needs_a_pinned_revision(pre_gen) -> None:
    found = pre_gen.problems(answers(base_model="Qwen/Qwen2.5-0.5B-Instruct"))
    assert found
    assert "pin" in found[0]
