"""Does it render: defaults, custom answers, the option matrix, API and CLI."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import DEFAULT_NAMES, ZETA, files_of, render

LEFTOVER = re.compile(r"\{\{\s*cookiecutter|\{%-?\s*(if|for|raw|endraw)\b|\{\{ '")


def test_defaults_render_the_project_itself(template_repo: Path, tmp_path: Path) -> None:
    project = render(template_repo, tmp_path)
    assert project.name == "docs-assistant"
    assert (project / "src" / "docs_assistant" / "cli.py").is_file()
    original = (template_repo / "src" / "docs_assistant" / "config.py").read_text()
    assert (project / "src" / "docs_assistant" / "config.py").read_text() == original
    assert not (project / "hooks").exists()
    assert not (project / "cookiecutter.json").exists()


def test_custom_answers_leave_no_default_name_anywhere(template_repo: Path, tmp_path: Path) -> None:
    project = render(template_repo, tmp_path, **ZETA)
    assert project.name == "zeta-bot"
    assert (project / "src" / "zeta_bot" / "cli.py").is_file()
    texts = files_of(project)
    for rel, text in texts.items():
        for name in DEFAULT_NAMES:
            assert name.lower() not in text.lower(), f"{name!r} survived in {rel}"
            assert name.lower() not in rel.lower(), f"{name!r} survived in path {rel}"
        assert not LEFTOVER.search(text), f"template syntax left in {rel}"
    pyproject = texts["pyproject.toml"]
    assert 'name = "zeta-bot"' in pyproject
    assert 'description = "Answers questions about Zeta."' in pyproject
    assert "zed@zeta.example" in pyproject
    assert 'ENV_PREFIX = "ZETA_BOT_"' in texts["src/zeta_bot/config.py"]


def test_the_exact_set_of_files(template_repo: Path, tmp_path: Path) -> None:
    project = render(template_repo, tmp_path, **ZETA)
    generated = set(files_of(project))
    source = {
        p.relative_to(template_repo).as_posix().replace("docs_assistant", "zeta_bot")
        for p in template_repo.rglob("*")
        if p.is_file()
    }
    template_only = {
        s for s in source if s.startswith(("hooks/", "tests/template/", "tests/workflows/", ".github/actions/"))
    }
    template_only |= {"cookiecutter.json", ".github/workflows/README.md", "benchmarks/bench_template.py"}
    reusable = {
        s
        for s in source
        if s.startswith(".github/workflows/") and "workflow_call:" in (template_repo / s).read_text(encoding="utf-8")
    }
    # post_gen_project drops the Kubernetes target unless deploy_target=kubernetes (the default is docker)
    kubernetes = {s for s in source if s.startswith("deploy/kubernetes/")}
    assert generated == source - template_only - reusable - kubernetes


def test_workflow_callers_use_the_pinned_template_repository(template_repo: Path, tmp_path: Path) -> None:
    project = render(template_repo, tmp_path, **ZETA)
    workflows = sorted((project / ".github" / "workflows").glob("*.yml"))
    if not workflows:
        pytest.skip("no workflow callers in the tree yet")
    for path in workflows:
        text = path.read_text(encoding="utf-8")
        parsed = yaml.safe_load(text)
        assert "workflow_call" not in (parsed.get(True) or parsed.get("on") or {}), path.name
        for use in re.findall(r"uses:\s*(\S+)", text):
            assert not use.startswith("./.github/workflows/"), f"{path.name}: {use}"
            if "/.github/workflows/" in use:
                assert use.startswith("acme/llmops-template/.github/workflows/")
                assert use.endswith("@v3")
        assert "${{" in text  # GitHub expressions survive rendering verbatim


@pytest.fixture(scope="module")
def template_with_optional_parts(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template plus a file in each optional part, so dropping (or keeping) each one is observable."""
    copy = tmp_path_factory.mktemp("optional") / "template"
    shutil.copytree(template_repo, copy)
    for rel in OPTIONAL_PARTS.values():
        if not (copy / rel).exists():
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            (copy / rel).write_text("# optional part\n", encoding="utf-8")
    return copy


OPTIONAL_PARTS = {
    "finetuning": "src/docs_assistant/train/__init__.py",
    "kubernetes": "deploy/kubernetes/base/kustomization.yaml",
}


@pytest.mark.parametrize(
    ("deploy_target", "include_finetuning"), [("docker", "yes"), ("kubernetes", "no")], ids=["docker+ft", "k8s-noft"]
)
def test_option_matrix(
    template_with_optional_parts: Path, tmp_path: Path, deploy_target: str, include_finetuning: str
) -> None:
    project = render(
        template_with_optional_parts,
        tmp_path,
        **ZETA,
        deploy_target=deploy_target,
        include_finetuning=include_finetuning,
        base_model="Qwen/Qwen2.5-0.5B-Instruct",
        base_model_revision="7ae557604adf67be50417f59c2c2f167def9a775",
    )
    config = (project / "zeta-bot.toml").read_text()
    assert 'name = "Qwen/Qwen2.5-0.5B-Instruct"' in config
    assert 'revision = "7ae557604adf67be50417f59c2c2f167def9a775"' in config
    finetuning = OPTIONAL_PARTS["finetuning"].replace("docs_assistant", "zeta_bot")
    assert (project / finetuning).exists() == (include_finetuning == "yes")
    assert (project / OPTIONAL_PARTS["kubernetes"]).exists() == (deploy_target == "kubernetes")
    log = subprocess.run(["git", "log", "--format=%an <%ae>"], cwd=project, capture_output=True, text=True)
    assert log.stdout.strip() == "Zed Zeta <zed@zeta.example>"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True)
    assert status.stdout == ""  # the first commit holds everything


def test_cli_renders_and_rejects_bad_answers(template_repo: Path, tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "cookiecutter", "--no-input", str(template_repo)]
    ok = subprocess.run(
        [*cli, "-o", str(tmp_path / "ok"), "project_name=Zeta Bot", "workflows_repo=acme/llmops-template"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "ok" / "zeta-bot" / "src" / "zeta_bot").is_dir()

    bad = subprocess.run(
        [*cli, "-o", str(tmp_path / "bad"), "project_name=Zeta Bot", "package_name=zeta-bot"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0
    assert "package_name 'zeta-bot': must be a lowercase Python identifier" in bad.stderr
    assert not (tmp_path / "bad" / "zeta-bot").exists()
