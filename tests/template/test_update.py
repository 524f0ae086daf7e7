"""Template updates: a generated project takes the next template release as a three-way merge (cruft).

Two releases of the template are published by template.yml's own step (hooks/publish_template.py: the
rendered template on the `template` branch, tagged `template-vN`), pushed to a local remote; a project
created from the first with `cruft create`, then changed locally, takes the second with `cruft update`:
the template's changes arrive, the local ones stay, and where only the template changed nothing
conflicts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, ZETA

pytestmark = pytest.mark.integration

LOCAL_LINE = "Our team runs this for the Zeta product."
TEMPLATE_README_LINE = "A line the second template release adds."
TEMPLATE_NOX_LINE = "`nox -s pipeline` runs the stages in order; `nox -l` lists them (template release 2)."


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def publish_step() -> str:
    """The shell of template.yml's one `run:` step: it renders the template and pushes branch and tag."""
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "template.yml").read_text(encoding="utf-8"))
    (script,) = [step["run"] for step in workflow["jobs"]["publish"]["steps"] if "run" in step]
    return script


def release(source: Path, remote: Path, tag: str, scratch: Path) -> str:
    """Tag `source` and run template.yml's step for that tag, as GitHub would after the tag's push."""
    git(source, "add", "-A")
    git(source, "commit", "-qm", f"release {tag}", "--allow-empty")
    git(source, "tag", tag)
    git(source, "push", "-q", "origin", "HEAD:refs/heads/main", f"refs/tags/{tag}")
    scratch.mkdir()
    checkout = scratch / "checkout"  # a fresh runner: actions/checkout with fetch-depth 0 (origin/template too)
    git(scratch, "clone", "-q", "--branch", tag, str(remote), str(checkout))
    summary = scratch / "summary.md"
    env = os.environ | {"RUNNER_TEMP": str(scratch), "TOKEN": "unused-for-a-file-remote", "TAG": tag}
    env |= {"REMOTE": str(remote), "GITHUB_STEP_SUMMARY": str(summary)}
    env |= {"GIT_CONFIG_GLOBAL": str(scratch / "no-gitconfig"), "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["bash", "-e", "-c", publish_step()], cwd=checkout, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"cruft update --checkout template-{tag}" in summary.read_text(encoding="utf-8")
    return git(remote, "rev-parse", f"template-{tag}^{{commit}}").strip()


def cruft(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("cruft")
    assert exe.is_file(), "cruft must be installed in the test environment (dependency group 'test')"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=600)


def test_a_generated_project_takes_the_next_release_keeping_its_local_changes(
    template_repo: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "template-repo.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    source = Path(shutil.copytree(template_repo, tmp_path / "source"))
    git(source, "init", "-q", "-b", "main")
    git(source, "remote", "add", "origin", str(remote))
    release(source, remote, "v1", tmp_path / "runner-v1")

    answers = json.dumps({k: ZETA[k] for k in ("project_name", "author_name", "author_email", "github_owner")})
    created = cruft("create", str(remote), "--checkout", "template-v1", "--no-input", "--extra-context", answers,
                    "--output-dir", str(tmp_path / "out"), cwd=tmp_path)  # fmt: skip
    assert created.returncode == 0, created.stdout[-3000:] + created.stderr[-3000:]
    project = tmp_path / "out" / "zeta-bot"
    recorded = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    assert recorded["checkout"] == "template-v1"
    assert recorded["context"]["cookiecutter"]["project_name"] == "Zeta Bot"  # the answers, for every update
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "created from template-v1")
    lines = (project / "README.md").read_text(encoding="utf-8").splitlines()
    (project / "README.md").write_text("\n".join([lines[0], "", LOCAL_LINE, *lines[1:]]) + "\n", encoding="utf-8")
    git(project, "commit", "-qam", "a local change")

    readme = source / "hooks" / "project_README.md"  # the next release changes the generated README too
    readme.write_text(readme.read_text(encoding="utf-8") + f"\n{TEMPLATE_README_LINE}\n", encoding="utf-8")
    noxfile = source / "noxfile.py"
    old = "`nox -s pipeline` runs the stages in order; `nox -l` lists them."
    noxfile.write_text(noxfile.read_text(encoding="utf-8").replace(old, TEMPLATE_NOX_LINE), encoding="utf-8")
    (source / "deploy" / "NOTES.md").write_text("# Notes\n\nA file new in the second release.\n", encoding="utf-8")
    v2 = release(source, remote, "v2", tmp_path / "runner-v2")
    assert git(remote, "log", "--format=%s", "template").splitlines() == [
        "The rendered template of v2",
        "The rendered template of v1",
    ]

    updated = cruft("update", "--checkout", "template-v2", "--skip-apply-ask", cwd=project)
    assert updated.returncode == 0, updated.stdout[-3000:] + updated.stderr[-3000:]
    assert "conflict" not in (updated.stdout + updated.stderr).lower()
    text = (project / "README.md").read_text(encoding="utf-8")
    assert LOCAL_LINE in text  # kept
    assert TEMPLATE_README_LINE in text  # arrived, in the same file
    assert TEMPLATE_NOX_LINE in (project / "noxfile.py").read_text(encoding="utf-8")
    assert (project / "deploy" / "NOTES.md").read_text(encoding="utf-8").endswith("new in the second release.\n")
    assert json.loads((project / ".cruft.json").read_text(encoding="utf-8"))["commit"] == v2
    changed = set(git(project, "diff", "--name-only", "HEAD").split())
    assert changed == {".cruft.json", "README.md", "noxfile.py", "deploy/NOTES.md"}, changed  # nothing else moved
    files = [p for p in project.rglob("*") if p.is_file() and ".git" not in p.relative_to(project).parts]
    assert not [p for p in files if "<<<<<<<" in p.read_text(encoding="utf-8", errors="replace")]
