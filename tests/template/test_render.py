"""Does it render: defaults, custom answers, the option matrix, API and CLI."""

from __future__ import annotations

import os
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
    authors = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert 'authors = [{ name = "Your Name", email = "you@example.com" }]' in authors  # a placeholder, not ours
    # its docs site builds strictly without the template-only pages (no link or nav entry left dangling)
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    built = subprocess.run(command, cwd=project, capture_output=True, text=True, check=False, env=env)
    assert built.returncode == 0, built.stderr[-3000:]
    assert not (project / "docs" / "template").exists()


@pytest.fixture(scope="module")
def zeta(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The custom answers' project, rendered once for the tests that only read it."""
    return render(template_repo, tmp_path_factory.mktemp("zeta"), **ZETA)


def test_custom_answers_leave_no_default_name_anywhere(zeta: Path) -> None:
    project = zeta
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


def test_the_exact_set_of_files(template_repo: Path, zeta: Path) -> None:
    project = zeta
    generated = set(files_of(project))
    source = {
        p.relative_to(template_repo).as_posix().replace("docs_assistant", "zeta_bot")
        for p in template_repo.rglob("*")
        if p.is_file()
    }
    template_only = {
        s
        for s in source
        if s.startswith(("hooks/", "tests/template/", "tests/workflows/", ".github/actions/", "docs/template/"))
    }
    template_only |= {"cookiecutter.json", ".github/workflows/README.md", "benchmarks/bench_template.py"}
    template_only |= {".github/workflows/template.yml"}  # publishes the rendered template
    reusable = {
        s
        for s in source
        if s.startswith(".github/workflows/") and "workflow_call:" in (template_repo / s).read_text(encoding="utf-8")
    }
    # post_gen_project drops the Kubernetes target unless deploy_target=kubernetes (the default is docker)
    kubernetes = {s for s in source if s.startswith("deploy/kubernetes/")}
    assert generated == source - template_only - reusable - kubernetes


def test_workflow_callers_use_the_pinned_template_repository(zeta: Path) -> None:
    project = zeta
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
    trains = include_finetuning == "yes"
    assert (project / finetuning).exists() == trains
    assert (project / "src" / "zeta_bot" / "registry").is_dir()  # serving and evals load the champion through it
    assert ('adapter_alias = ""' in config) != trains  # without training the image ships the base model
    cd = (project / ".github" / "workflows" / "cd.yml").read_text(encoding="utf-8")
    assert ("upstream-sessions: validate_data index eval_prompts finetune" in cd) == trains
    nox_exe = shutil.which("nox")
    assert nox_exe, "nox must be installed in the test environment (dependency group 'test')"
    listed = subprocess.run([nox_exe, "-l", "-f", str(project / "noxfile.py")], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert ("- finetune ->" in listed.stdout) == trains
    assert "pipeline ->" in listed.stdout
    assert (project / OPTIONAL_PARTS["kubernetes"]).exists() == (deploy_target == "kubernetes")
    log = subprocess.run(["git", "log", "--format=%an <%ae>"], cwd=project, capture_output=True, text=True)
    assert log.stdout.strip() == "Zed Zeta <zed@zeta.example>"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True)
    assert status.stdout == ""  # the first commit holds everything


def cookiecutter_cli(template_repo: Path, output: Path, *answers: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "cookiecutter", "--no-input", str(template_repo), "-o", str(output), *answers]
    return subprocess.run(command, capture_output=True, text=True, check=False, env=os.environ | env)


def test_cli_renders(template_repo: Path, tmp_path: Path) -> None:
    ok = cookiecutter_cli(
        template_repo, tmp_path / "ok", "project_name=Zeta Bot", "workflows_repo=acme/llmops-template"
    )
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "ok" / "zeta-bot" / "src" / "zeta_bot").is_dir()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("package_name=zeta-bot", "package_name 'zeta-bot': must be a lowercase ASCII Python identifier"),
        ("package_name=zéta_bot", "package_name 'zéta_bot': must be a lowercase ASCII Python identifier"),
        ("package_name=json", "package_name 'json': shadows the standard library module 'json'"),
        ("package_name=test", "package_name 'test': shadows the standard library module 'test'"),
        ("package_name=typer", "package_name 'typer': shadows the dependency 'typer' in uv.lock"),
        (
            f"project_slug={'z' * 48}",
            f"project_slug '{'z' * 48}': 48 characters, at most 47 (the Docker secret '{'z' * 48}-staging-api-keys'",
        ),
    ],
    ids=lambda v: v.split("=")[0] + "=" + v.split("=")[1][:10] if "=" in v else None,
)
def test_an_answer_that_cannot_work_is_refused_in_one_line_and_nothing_is_written(
    template_repo: Path, tmp_path: Path, answer: str, message: str
) -> None:
    bad = cookiecutter_cli(template_repo, tmp_path, "project_name=Zeta Bot", answer)
    assert bad.returncode != 0
    ours = [line for line in bad.stderr.splitlines() if line.startswith("error: ")]
    assert len(ours) == 1, bad.stderr  # (cookiecutter itself then logs its hook exception)
    assert message in ours[0]
    assert list(tmp_path.iterdir()) == [], "a refused answer leaves nothing on disk"


def test_a_signer_that_fails_does_not_lose_the_project(template_repo: Path, tmp_path: Path) -> None:
    config = tmp_path / "gitconfig"
    config.write_text("[commit]\n\tgpgsign = true\n[gpg]\n\tprogram = false\n", encoding="utf-8")
    done = cookiecutter_cli(template_repo, tmp_path / "out", "project_name=Zeta Bot", GIT_CONFIG_GLOBAL=str(config))
    assert done.returncode == 0, done.stderr
    assert "the initial commit could not be signed" in done.stderr
    assert "committed unsigned" in done.stderr
    project = tmp_path / "out" / "zeta-bot"
    log = subprocess.run(["git", "log", "--format=%s"], cwd=project, capture_output=True, text=True, check=True)
    assert log.stdout.strip() == "Initial commit"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True, check=True)
    assert status.stdout == ""


def parse_every_file(project: Path) -> None:
    """Each Python, TOML, JSON(L) and YAML file of the project still parses: no answer broke its syntax."""
    import json
    import tomllib

    for path in project.rglob("*"):
        if not path.is_file() or ".git" in path.relative_to(project).parts:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        where = path.relative_to(project)
        if path.suffix == ".py":
            compile(text, str(where), "exec")
        elif path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix == ".json":
            json.loads(text)
        elif path.suffix == ".jsonl":
            [json.loads(line) for line in text.splitlines() if line.strip()]
        elif path.suffix in (".yml", ".yaml"):
            list(yaml.safe_load_all(text))


QUOTED = {"project_name": 'Say "Hi" Bot', "author_name": 'Jane "JJ" Doe', "description": 'The "best" bot'}


@pytest.mark.parametrize(
    "answers",
    [QUOTED, {"project_name": "Back\\slash Bot"}, {"project_name": "Zéta Bøt", "author_name": "Zoë Ørsted"}],
    ids=["quotes", "backslash", "non-ascii"],
)
def test_answers_are_data_quotes_and_backslashes_render_into_valid_files(
    template_repo: Path, tmp_path: Path, answers: dict[str, str]
) -> None:
    import json
    import tomllib

    project = render(template_repo, tmp_path, **answers)
    name = answers["project_name"]
    package = project.name.replace("-", "_")
    slugs = {"Say": "say-hi-bot", "Back": "back-slash-bot", "Zéta": "zeta-bot"}  # slugify: ASCII, no punctuation
    assert project.name == slugs[name.split()[0].split("\\")[0]]
    parse_every_file(project)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert pyproject["description"] == answers.get("description", pyproject["description"])
    assert pyproject["authors"][0]["name"] == answers.get("author_name", "Your Name")
    prompt = tomllib.loads((project / "prompts" / "rag-answer.v1.toml").read_text(encoding="utf-8"))["template"]
    assert prompt.startswith(f"You are the {name}. ")
    safety = (project / "evals" / "datasets" / "safety.jsonl").read_text(encoding="utf-8").splitlines()
    assert f"You are the {name}" in json.loads(safety[10])["success_markers"]  # the marker matches the prompt
    shown = subprocess.run(
        [sys.executable, "-c", f"from {package}.cli import app; app(['--help'])"],
        cwd=project,
        env=os.environ | {"PYTHONPATH": str(project / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert f"{name}: a RAG service" in " ".join(shown.stdout.split()), shown.stderr[-2000:]
    lint = lint_command(project)
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        linted = subprocess.run([*lint, *command], cwd=project, capture_output=True, text=True, check=False)
        assert linted.returncode == 0, linted.stdout[-3000:] + linted.stderr[-2000:]


def lint_command(project: Path) -> list[str]:
    """The project's locked ruff, run as post_gen_project runs it (uv tool run ruff@VERSION)."""
    lock = (project / "uv.lock").read_text(encoding="utf-8")
    match = re.search(r'name = "ruff"\nversion = "([^"]+)"', lock)
    uv = shutil.which("uv")
    assert uv, "uv must be on PATH (./noxw puts it there)"
    assert match, "uv.lock pins ruff"
    return [uv, "tool", "run", f"ruff@{match.group(1)}"]


def test_the_generated_readme_is_the_projects_own_and_links_only_what_it_ships(zeta: Path) -> None:
    import json

    from .conftest import REPO, load_hook

    readme = (zeta / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# Zeta Bot\n\nAnswers questions about Zeta.\n")  # the name and the description
    for command in ("./noxw -s pipeline", "./noxw -s tests", "uvx cruft update --checkout template-v"):
        assert command in readme, command
    assert "zeta-bot.toml" in readme
    assert "acme/llmops-template" in readme  # where its CI's reusable workflows come from
    assert "Start your own project" not in readme  # not the template's README
    assert "hooks/" not in readme
    assert len(readme.splitlines()) <= 80
    for target in re.findall(r"\]\(([^)#]+)", readme):
        assert target.startswith("http") or (zeta / target).exists(), f"README links {target}, not shipped"
    default = json.loads((REPO / "cookiecutter.json").read_text(encoding="utf-8"))["description"]
    assert default == load_hook("pre_prompt").DEFAULT_DESCRIPTION
