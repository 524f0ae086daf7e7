"""Point the reusable workflows at the repository and tag they are published from.

A reusable workflow cannot reach its own repository's files through `./` (that is always the caller's
checkout), so each one calls its setup action as `OWNER/REPO/.github/actions/setup@REF`. A template
published anywhere but docs-assistant/docs-assistant runs this once per release, before tagging, so no
workflow reaches back to a hard-coded repository:

    python hooks/retarget.py acme/llmops-template v3

It rewrites the setup action's reference in `.github/workflows/`, zizmor's ref-pin policy for it, and
`cookiecutter.json`'s `workflows_repo` / `workflows_ref` defaults (so generated projects call the new
home). The current target is read from `cookiecutter.json`, so retargeting again (v3 -> v4) works.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")  # as hooks/pre_gen_project.py checks the answer
REF = re.compile(r"^[A-Za-z0-9._/-]+$")


def current_target(root: Path) -> tuple[str, str]:
    answers = json.loads((root / "cookiecutter.json").read_text(encoding="utf-8"))
    return answers["workflows_repo"], answers["workflows_ref"]


def retarget(root: Path, repo: str, ref: str) -> list[Path]:
    """Rewrite every reference to the published setup action and the defaults; returns the changed files."""
    if not REPO.match(repo):
        raise SystemExit(f"error: repository {repo!r}: expected OWNER/REPO")
    if not REF.match(ref):
        raise SystemExit(f"error: ref {ref!r}: expected a tag, branch or commit")
    old_repo, old_ref = current_target(root)
    action = re.compile(re.escape(old_repo) + r"(/\.github/actions/[\w.-]+)@" + re.escape(old_ref) + r"(?![\w.-])")

    def setup_refs(text: str) -> str:
        return action.sub(lambda m: f"{repo}{m.group(1)}@{ref}", text)

    def policy(text: str) -> str:
        return text.replace(f"{old_repo}/*:", f"{repo}/*:")

    def defaults(text: str) -> str:
        for key, old, new in (("workflows_repo", old_repo, repo), ("workflows_ref", old_ref, ref)):
            text = text.replace(f'"{key}": {json.dumps(old)}', f'"{key}": {json.dumps(new)}')
        return text

    workflows = root / ".github" / "workflows"
    edits = [(path, setup_refs) for path in [*sorted(workflows.glob("*.y*ml")), workflows / "README.md"]]
    edits += [(root / ".github" / "zizmor.yml", policy), (root / "cookiecutter.json", defaults)]
    changed = []
    for path, edit in edits:
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        if text and (new := edit(text)) != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python hooks/retarget.py OWNER/REPO REF", file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parents[1]
    changed = retarget(root, *argv)
    print(f"retarget: {len(changed)} files now point at {argv[0]}@{argv[1]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
