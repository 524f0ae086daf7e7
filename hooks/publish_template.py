"""Publish the rendered template: what cruft creates projects from and updates them to.

Cookiecutter runs hooks/pre_prompt.py to derive the template from this working tree; cruft, which brings
later template releases into generated projects, runs no pre_prompt hook. So each release publishes the
template as pre_prompt makes it (`.github/workflows/template.yml`: the `template` branch, tagged
`template-vX.Y.Z`):

    python hooks/publish_template.py OUT_DIR

OUT_DIR (its `.git`, if any, is kept) receives `cookiecutter.json`, the pre_gen/post_gen hooks,
`{{cookiecutter.project_slug}}/` and a README that names the source commit. Projects are created with
`cruft create URL --checkout template-vX.Y.Z` and take the next release with
`cruft update --checkout template-vX.Y.Z`: a three-way merge that keeps local changes.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

HOOKS = Path(__file__).resolve().parent
#: what a published template holds besides the project directory; pre_prompt has already run
PUBLISHED_HOOKS = ("pre_gen_project.py", "post_gen_project.py")


def _pre_prompt() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pre_prompt", HOOKS / "pre_prompt.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source_files(source: Path) -> list[str]:
    """The tree as a clone has it: tracked files plus untracked ones git does not ignore (outside a checkout,
    every file; pre_prompt leaves out .venv, .nox, var/ and the like either way)."""
    listing = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=source, capture_output=True, check=False
    )
    if listing.returncode != 0:
        return [p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file() and ".git" not in p.parts]
    return [rel for rel in listing.stdout.decode().split("\0") if rel and (source / rel).is_file()]


def source_commit(source: Path) -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def publish(source: Path, out: Path) -> Path:
    """Render `source`'s working tree into the template at `out`, replacing all but `out/.git`."""
    pre_prompt = _pre_prompt()
    with tempfile.TemporaryDirectory(prefix="template-") as scratch:
        work = Path(scratch)
        for rel in source_files(source):
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / rel, work / rel)
        pre_prompt.record_locked_names(work)
        pre_prompt.build_template(work)
        out.mkdir(parents=True, exist_ok=True)
        for old in out.iterdir():
            if old.name != ".git":
                shutil.rmtree(old) if old.is_dir() else old.unlink()
        shutil.copytree(work / pre_prompt.TEMPLATE_DIR, out / pre_prompt.TEMPLATE_DIR)
        shutil.copy2(work / "cookiecutter.json", out / "cookiecutter.json")
        (out / "hooks").mkdir()
        for name in PUBLISHED_HOOKS:
            shutil.copy2(work / "hooks" / name, out / "hooks" / name)
    commit = source_commit(source)
    (out / "README.md").write_text(
        f"# The rendered template\n\nBuilt by `hooks/publish_template.py` from commit {commit}: do not edit here.\n\n"
        "```bash\nuvx cruft create URL --checkout template-vX.Y.Z   # a new project, answers recorded\n"
        "uvx cruft update --checkout template-vX.Y.Z           # a later release, merged into yours\n```\n",
        encoding="utf-8",
    )
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python hooks/publish_template.py OUT_DIR", file=sys.stderr)
        return 2
    out = publish(HOOKS.parent, Path(argv[0]))
    print(f"publish_template: the rendered template is in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
