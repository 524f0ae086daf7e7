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
    assert "{{ cookiecutter.project_name" + pre_prompt.QUOTED + " }}" in out  # free text inside Python: escaped
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


def test_retarget_points_every_setup_call_and_the_defaults_at_the_publishing_repository(tmp_path) -> None:
    import json
    import shutil

    from .conftest import REPO

    retarget = load_hook("retarget")
    shutil.copytree(REPO / ".github", tmp_path / ".github")
    shutil.copy2(REPO / "cookiecutter.json", tmp_path)
    old_repo, old_ref = retarget.current_target(tmp_path)
    setup = f"{old_repo}/.github/actions/setup@{old_ref}"
    before = sum(p.read_text(encoding="utf-8").count(setup) for p in (tmp_path / ".github" / "workflows").glob("*.yml"))
    assert before >= 9  # every reusable workflow that runs a nox session
    for repo, ref in (("acme/llmops-template", "v3"), ("acme/llmops-template", "v4")):  # again, from v3 to v4
        assert retarget.retarget(tmp_path, repo, ref)
        workflows = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / ".github" / "workflows").glob("*.yml")}
        calls = {name: text.count(f"{repo}/.github/actions/setup@{ref}") for name, text in workflows.items()}
        assert sum(calls.values()) == before, calls
        assert not [name for name, text in workflows.items() if old_repo in text], "a workflow still reaches back"
        answers = json.loads((tmp_path / "cookiecutter.json").read_text(encoding="utf-8"))
        assert (answers["workflows_repo"], answers["workflows_ref"]) == (repo, ref)
        assert f"{repo}/*: ref-pin" in (tmp_path / ".github" / "zizmor.yml").read_text(encoding="utf-8")
    assert old_ref == "v0"
    with pytest.raises(SystemExit, match="expected OWNER/REPO"):
        retarget.retarget(tmp_path, "no-slash", "v5")
