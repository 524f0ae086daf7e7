"""Finish a generated project: drop what the answers turned off, write its config, `git init` it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

#: every answer, as JSON (see pre_gen_project.py: text arrives as data, whatever quotes it holds)
ANSWERS = json.loads(r"""{{ cookiecutter | jsonify }}""")
INCLUDE_FINETUNING = ANSWERS["include_finetuning"] == "yes"
DEPLOY_TARGET = ANSWERS["deploy_target"]
BASE_MODEL = ANSWERS["base_model"]
BASE_MODEL_REVISION = ANSWERS["base_model_revision"]
EMBEDDING_MODEL = ANSWERS["embedding_model"]
AUTHOR = (ANSWERS["author_name"], ANSWERS["author_email"])
PACKAGE = ANSWERS["package_name"]
#: cruft renders the template again to compute an update; it sets `_commit`, plain cookiecutter does not
RENDERED_BY_CRUFT = "_commit" in ANSWERS
CONFIG_FILE = f"{ANSWERS['project_slug']}.toml"

#: training only: serving and evals keep the registry (they load the champion through it when one exists)
FINETUNING_PATHS = (
    f"src/{PACKAGE}/train",
    "tests/unit/test_train.py",
    "tests/integration/test_finetune.py",
    "tests/integration/test_train_data.py",
    "tests/integration/test_retrain_due.py",
    "benchmarks/bench_finetune.py",
    "benchmarks/gpu_finetune.py",
    "deploy/accelerate",
    ".github/workflows/train.yml",
)
KUBERNETES_PATHS = ("deploy/kubernetes",)


def remove(root: Path, relpaths: tuple[str, ...]) -> None:
    for relpath in relpaths:
        path = root / relpath
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def drop_finetuning(root: Path) -> None:
    """Training goes; the noxfile sees no train/ package, the release pins no adapter, CD trains nothing."""
    if INCLUDE_FINETUNING:
        return
    remove(root, FINETUNING_PATHS)
    cd = root / ".github" / "workflows" / "cd.yml"
    cd.write_text(cd.read_text(encoding="utf-8").replace(" eval_prompts finetune", " eval_prompts"), encoding="utf-8")


def drop_kubernetes(root: Path) -> None:
    if DEPLOY_TARGET != "kubernetes":
        remove(root, KUBERNETES_PATHS)


def toml_string(value: str) -> str:
    """A TOML basic string: the answer as data, whatever quotes or backslashes it holds."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_model_config(root: Path) -> None:
    """Only answers that differ from the embedded defaults go into the project's config file."""
    lines = []
    if BASE_MODEL != "tiny-random-llama":
        lines += ["[model]", f"name = {toml_string(BASE_MODEL)}"]
        if BASE_MODEL_REVISION:
            lines.append(f"revision = {toml_string(BASE_MODEL_REVISION)}")
    if EMBEDDING_MODEL != "all-MiniLM-L6-v2":
        lines += ["", "[embedding]", f"model = {toml_string(EMBEDDING_MODEL)}"]
    if not INCLUDE_FINETUNING:  # no registry alias to ship: the image serves the base model
        lines += ["", "[image]", 'adapter_alias = ""']
    if lines:
        (root / CONFIG_FILE).write_text("\n".join(lines).lstrip() + "\n", encoding="utf-8")


def format_code(root: Path) -> None:
    """Names of other lengths move line breaks; format with the locked ruff so `nox -s lint` passes."""
    lock = (root / "uv.lock").read_text(encoding="utf-8") if (root / "uv.lock").is_file() else ""
    match = re.search(r'name = "ruff"\nversion = "([^"]+)"', lock)
    uv, ruff = shutil.which("uv"), shutil.which("ruff")
    if uv and match:
        command = [uv, "tool", "run", f"ruff@{match.group(1)}", "format", "--quiet", "--no-cache", "."]
    elif ruff:
        command = [ruff, "format", "--quiet", "--no-cache", "."]
    else:
        print("post_gen: neither uv nor ruff found; run `./noxw -s lint` and `ruff format` once", file=sys.stderr)
        return
    if subprocess.run(command, cwd=root, check=False).returncode != 0:
        print("post_gen: formatting failed; run `ruff format` in the new project", file=sys.stderr)


def git_init(root: Path) -> None:
    """One first commit holding everything; a failing git (a signer that cannot sign) never loses the project."""
    git = shutil.which("git")
    if git is None:
        print("post_gen: git not found; run `git init` yourself", file=sys.stderr)
        return

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([git, *args], cwd=root, capture_output=True, text=True, check=False)

    for args in (["init", "-q", "-b", "main"], ["add", "-A"]):
        if (done := run(*args)).returncode != 0:
            print(f"post_gen: `git {args[0]}` failed ({last_line(done)}); commit the project yourself", file=sys.stderr)
            return
    identity = ["-c", f"user.name={AUTHOR[0]}", "-c", f"user.email={AUTHOR[1]}"]
    commit = ["commit", "-q", "-m", "Initial commit"]
    if (signed := run(*identity, *commit)).returncode == 0:
        return
    if run(*identity, "-c", "commit.gpgsign=false", *commit).returncode == 0:
        print(
            f"post_gen: the initial commit could not be signed ({last_line(signed)}); it was committed unsigned: "
            "`git commit --amend -S --no-edit` signs it once your signer works",
            file=sys.stderr,
        )
        return
    print(
        f"post_gen: the initial commit failed ({last_line(signed)}); the files are staged: commit them", file=sys.stderr
    )


def last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit {done.returncode}"


def main() -> int:
    root = Path.cwd()
    drop_finetuning(root)
    drop_kubernetes(root)
    write_model_config(root)
    format_code(root)
    if not RENDERED_BY_CRUFT:  # its renders are diffed, not used; after `cruft create`, `git init` yourself
        git_init(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
